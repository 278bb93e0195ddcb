"""docs/data.md's books walk-through, run as written: data info -> train (config `data`
section with column maps, item table, genre separator, domain words) -> recommend ->
evaluate (reusing the run) -> serve. A small generated log and a tiny training budget."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from instructrec.cli import main
from instructrec.testing.books import write_books

DOC = Path(__file__).resolve().parents[2] / "docs" / "data.md"
SECTION = "## Your own data, end to end: a books example"


def doc_walk() -> tuple[str, list[list[str]]]:
    """The section's YAML config and its `instructrec` command lines (as argument lists)."""
    part = DOC.read_text().split(SECTION)[1].split("\n## ")[0]
    blocks = re.findall(r"```(\w*)\n(.*?)```", part, re.S)
    config = next(text for lang, text in blocks if lang == "yaml")
    commands = [
        shlex.split(line)[1:]
        for lang, text in blocks
        if lang == "bash"
        for line in text.splitlines()
        if line.startswith("instructrec ")
    ]
    return config, commands


def tiny_budget(config_text: str) -> str:
    """The doc's config with a smoke-test budget (the data section is left as written)."""
    cfg = yaml.safe_load(config_text)
    fast = {"max_epochs": 2, "patience": 1}
    cfg["retriever"]["options"] = fast
    cfg["priors"] = [
        {"name": "sasrec", "options": fast}
        if (p if isinstance(p, str) else p["name"]) == "sasrec"
        else p
        for p in cfg["priors"]
    ]
    cfg["backbone"] = {"lora_r": 2}
    cfg["reranker"] = {"max_instances": 64, "valid_rows": 16}
    cfg["training"] = {"max_steps": 2, "eval_every": 1, "batch_size": 16, "progress": False}
    return yaml.safe_dump(cfg)


def test_the_walk_is_in_the_doc():
    config, commands = doc_walk()
    assert [c[0] for c in commands] == ["data", "train", "recommend", "evaluate", "serve"]
    data = yaml.safe_load(config)["data"]
    assert data["genre_sep"] == "|" and data["noun"] == "book" and data["items"] == "books.csv"


@pytest.mark.slow
def test_books_walk_runs_as_written(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from instructrec.cli.common import model_path
    from instructrec.feedback.store import Store
    from instructrec.recommender import Recommender
    from instructrec.serving.app import ServeSettings, create_app

    monkeypatch.chdir(tmp_path)
    write_books(tmp_path)
    config, commands = doc_walk()
    Path("books.yaml").write_text(tiny_budget(config))
    runner = CliRunner()
    for args in commands:
        if args[0] == "serve":
            continue  # below: the same app, in-process
        if args[0] == "evaluate":
            args = [*args, "--n-boot", "50"]
        res = runner.invoke(main, args)
        assert res.exit_code == 0, f"{shlex.join(args)}\n{res.output}"
        if args[0] == "data":
            assert "books" in res.output and "genres" in res.output
        if args[0] == "recommend":
            rows = [ln for ln in res.output.splitlines() if re.match(r"\s*\d+\. ", ln)]
            assert len(rows) == 5 and all("The " in r for r in rows), res.output
        if args[0] == "evaluate":
            assert "split: reused from runs/books" in res.output
            assert "baselines: reused from runs/books" in res.output
            assert Path("runs/books/eval/combined.md").exists()
    rec = Recommender.load(model_path("runs/books"))
    assert rec.dataset.name == "books"
    assert any("Historical Fiction" in g for g in rec.dataset.items["genres"])
    words = rec.reranker.text.fields()
    assert words["noun"] == "book" and words["consumed"] == "read"
    # serve: the command's options parse; the app it builds answers
    serve = main.get_command(None, "serve")
    serve.make_context("serve", commands[-1][1:])
    app = create_app(rec, Store(f"sqlite:///{tmp_path / 'fb.db'}"), ServeSettings(api_key="k"))
    with TestClient(app) as client:
        info = client.get("/v1/model").json()
        assert info["dataset"] == "books" and info["items"] == 64
        r = client.post(
            "/v1/recommendations",
            json={"user_id": "r1", "instruction": "a historical fiction book", "n": 5},
            headers={"X-API-Key": "k"},
        )
        assert r.status_code == 200 and len(r.json()["items"]) == 5
