import json

import pytest
from click.testing import CliRunner

from instructrec.cli import main
from instructrec.data import write_atomic
from instructrec.testing.datasets import synthetic_dataset


@pytest.fixture()
def atomic_dir(tmp_path):
    d = tmp_path / "syn"
    write_atomic(synthetic_dataset(n_users=50, n_items=40), d, name="syn")
    return d


def test_evaluate_cli_writes_report_and_reuses_split(tmp_path, atomic_dir):
    out = tmp_path / "ev"
    r = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--protocol",
            "cand10,cand20",
            "--models",
            "pop,itemknn",
            "--data",
            str(atomic_dir),
            "--out",
            str(out),
            "--n-boot",
            "100",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "| itemknn |" in r.output and "HR@1" in r.output
    assert (out / "split" / "split.json").exists()
    assert (out / "seed-0" / "cand10" / "manifest.json").exists()
    first = json.loads((out / "seed-0" / "summary.json").read_text())
    r2 = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--protocol",
            "cand10",
            "--models",
            "pop",
            "--data",
            str(atomic_dir),
            "--split-dir",
            str(out / "split"),
            "--out",
            str(tmp_path / "ev2"),
            "--n-boot",
            "100",
        ],
    )
    assert r2.exit_code == 0, r2.output
    assert "hashes verified" in r2.output
    second = json.loads((tmp_path / "ev2" / "seed-0" / "summary.json").read_text())
    assert second["cand10"]["pop"] == first["cand10"]["pop"]


def test_evaluate_cli_stage_and_built_files_saved_with_the_split(tmp_path, atomic_dir):
    from instructrec.data import load_split

    def invoke(out, *extra):
        args = ["evaluate", "--protocol", "search-hard", "--models", "pop", "--n-boot", "20"]
        args += ["--data", str(atomic_dir), "--out", str(out), *extra]
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 0, r.output
        return json.loads((out / "seed-0" / "search-hard" / "manifest.json").read_text())

    first = invoke(tmp_path / "a")  # default stage: valid
    assert first["config"]["stage"] == "valid"
    split = load_split(tmp_path / "a" / "split")
    assert set(split.candidates["search-hard"]) == {"valid", "test"}
    assert split.notes["search-hard"]["valid"]["intention_seed"] == 0
    second = invoke(tmp_path / "b", "--stage", "test", "--split-dir", str(tmp_path / "a" / "split"))
    assert second["config"]["stage"] == "test"
    assert second["split_files"]["search-hard.test.npy"] == split.hashes["search-hard.test.npy"]
    assert not (tmp_path / "b" / "split").exists()  # nothing new to save


def test_evaluate_cli_bad_input_exits_2(tmp_path, atomic_dir):
    runner = CliRunner()
    r = runner.invoke(
        main, ["evaluate", "--protocol", "cand7", "--data", str(atomic_dir), "--out", str(tmp_path)]
    )
    assert r.exit_code == 2 and "unknown protocol" in r.output
    r = runner.invoke(
        main,
        [
            "evaluate",
            "--models",
            "pop",
            "--set",
            "pop.nope=1",
            "--data",
            str(atomic_dir),
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert r.exit_code == 2 and "unknown option" in r.output
    r = runner.invoke(
        main,
        [
            "evaluate",
            "--models",
            "pop",
            "--set",
            "nodot=1",
            "--data",
            str(atomic_dir),
            "--out",
            str(tmp_path / "z"),
        ],
    )
    assert r.exit_code == 2 and "MODEL.OPTION=VALUE" in r.output
    r = runner.invoke(
        main,
        [
            "evaluate",
            "--split-dir",
            str(tmp_path / "missing"),
            "--data",
            str(atomic_dir),
            "--out",
            str(tmp_path / "y"),
        ],
    )
    assert r.exit_code == 2 and "split.json" in r.output


@pytest.mark.slow
def test_evaluate_cli_all_protocols_on_ml100k(tmp_path):
    out = tmp_path / "ml"
    r = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--protocol",
            "all",
            "--models",
            "pop,itemknn,sasrec",
            "--set",
            "sasrec.max_epochs=2",
            "--out",
            str(out),
            "--n-boot",
            "200",
        ],
    )
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "seed-0" / "summary.json").read_text())
    from instructrec.evaluation import PROTOCOLS

    assert set(summary) == set(PROTOCOLS)  # sasrec present: hard is built, the split has cold
    assert "sasrec+oracle-filter" in summary["search"]  # not asked for: the oracle, named so
    assert "sasrec+filter" not in summary["search"]
    # learned models beat popularity on the candidate protocol
    assert summary["cand10"]["sasrec"]["HR@1"] > summary["cand10"]["pop"]["HR@1"]


def test_evaluate_cli_model_dir_uses_its_split(tmp_path, atomic_dir):
    from instructrec.data import make_split, read_atomic, save_split
    from instructrec.recommender import Recommender
    from instructrec.retrieval import ItemKNN

    ds = read_atomic(atomic_dir, "syn")
    split = make_split(ds, seed=3)
    rec = Recommender(ds, ItemKNN()).fit(split)
    run_dir = tmp_path / "run"
    rec.save(run_dir)
    save_split(split, run_dir / "split", ds)
    out = tmp_path / "ev"
    r = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--protocol",
            "cand10,full",
            "--models",
            "itemknn",
            "--data",
            str(atomic_dir),
            "--model-dir",
            str(run_dir),
            "--out",
            str(out),
            "--n-boot",
            "50",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "split: reused from" in r.output and str(run_dir / "split") in r.output
    summary = json.loads((out / "seed-0" / "summary.json").read_text())
    # without a reranker the saved model ranks exactly like its retriever
    assert summary["cand10"]["instructrec"] == summary["cand10"]["itemknn"]
    assert summary["full"]["instructrec"] == summary["full"]["itemknn"]


def test_evaluate_cli_rejects_model_from_other_data(tmp_path, atomic_dir):
    from instructrec.data import make_split
    from instructrec.recommender import Recommender
    from instructrec.retrieval import Pop

    other = synthetic_dataset(n_users=30, n_items=40, seed=5)
    rec = Recommender(other, Pop()).fit(make_split(other, seed=0))
    rec.save(tmp_path / "run")
    r = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--models",
            "pop",
            "--data",
            str(atomic_dir),
            "--model-dir",
            str(tmp_path / "run"),
            "--out",
            str(tmp_path / "ev"),
        ],
    )
    assert r.exit_code == 2 and "trained on" in r.output


def test_evaluate_cli_seeds_both_stages_and_rivals(tmp_path, atomic_dir):
    out = tmp_path / "ev"
    args = ["evaluate", "--protocol", "cand10", "--data", str(atomic_dir), "--out", str(out)]
    r = CliRunner().invoke(
        main,
        [
            *args,
            "--models",
            "pop,itemknn,score-mix",
            "--seeds",
            "0,1",
            "--stage",
            "valid,test",
            "--n-boot",
            "50",
        ],
    )
    assert r.exit_code == 0, r.output
    for stage in ("valid", "test"):
        combined = json.loads((out / stage / "combined.json").read_text())
        assert combined["stage"] == stage and combined["seeds"] == [0, 1]
        models = {m["model"] for m in combined["means"]}
        assert {"pop", "itemknn", "score-mix"} <= models
        man = json.loads((out / stage / "seed-1" / "cand10" / "manifest.json").read_text())
        assert man["config"]["stage"] == stage
        mix = next(m for m in man["models"] if m["name"] == "score-mix")
        assert mix["fit"].get("cross_fitted", False) is (stage == "valid")  # not its own rows
    bad = CliRunner().invoke(main, [*args, "--seeds", "0,x"])
    assert bad.exit_code == 2 and "--seeds" in bad.output
