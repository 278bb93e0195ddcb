"""`instructrec train` and `instructrec recommend`: thin faces over `instructrec.runs`.

instructrec train --config configs/quickstart.yaml --out runs/NAME
instructrec train --out runs/NAME --set training.max_steps=100 --set reranker.copies=1
instructrec recommend --model runs/NAME --user 42 "a light comedy from the 90s" -n 10
instructrec recommend --model runs/NAME "a light comedy"          # a new visitor
"""

from __future__ import annotations

import click

from .common import retired_option, set_option


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="run config (YAML): data, retriever, priors, backbone, reranker, training "
    "(default: the packaged configs/quickstart.yaml, i.e. RunConfig())",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="run directory to write (model, split, config.yaml, manifest.json)",
)
@set_option
@retired_option("--max-steps", "training.max_steps")
@click.option(
    "--seeds",
    default=None,
    help="comma-separated seeds (e.g. 0,1,2): one model per seed on one shared split, in "
    "OUT/seed-N with OUT/seeds.json; `evaluate --model-dir OUT --seeds ...` reads them all",
)
@click.option("--overwrite", is_flag=True, help="replace the run already in --out")
@click.option(
    "--resume",
    is_flag=True,
    help="continue the run in --out (or the one a killed command left) from its newest checkpoint",
)
def train(
    config_path: str | None,
    out: str,
    sets: tuple[str, ...],
    seeds: str | None,
    overwrite: bool,
    resume: bool,
) -> None:
    """Fit the retriever, the priors and the instruction reranker; save a run directory
    (built beside --out and renamed when it is complete)."""
    from instructrec.config import RunConfig, packaged_config
    from instructrec.runs import train_run, train_seeds

    from .common import parse_seeds
    from .progress import is_quiet

    quiet = ("training.progress=false",) if is_quiet() else ()  # no tqdm bar under --quiet
    cfg = RunConfig.from_yaml(config_path or packaged_config(), [*sets, *quiet])
    if cfg.rerank:  # a backbone that cannot load fails now, not after the retrievers trained
        from instructrec.models.offline import check_available

        check_available(cfg.backbone.backbone)
    if seeds is not None:
        manifests = train_seeds(
            cfg, out, parse_seeds(seeds), echo=click.echo, resume=resume, overwrite=overwrite
        )
        for s, m in manifests.items():
            best = m.get("training", {}).get("best_metric")
            if best is not None:
                click.echo(f"seed {s}: best validation {cfg.training.metric}: {best:.4f}")
        click.echo(f"saved {out} (seeds {', '.join(map(str, manifests))})")
        from instructrec.training.distributed import end_distributed

        end_distributed()
        return
    rec, manifest = train_run(cfg, out, resume=resume, overwrite=overwrite)
    click.echo(
        f"saved {out} ({rec.dataset.name}: {rec.dataset.n_users} users, "
        f"{rec.dataset.n_items} items; reranker: "
        f"{'yes' if rec.reranker is not None else 'no'})"
    )
    best = manifest.get("training", {}).get("best_metric")
    if best is not None:
        click.echo(f"best validation {cfg.training.metric}: {best:.4f}")
    from instructrec.training.distributed import end_distributed

    end_distributed()  # a clean exit under accelerate launch / torchrun


@click.command()
@click.option(
    "--model",
    "model_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="a run folder written by `instructrec train` or `quickstart`, or its model/",
)
@click.option(
    "--server",
    default=None,
    envvar="INSTRUCTREC_SERVER",
    help="ask a running `instructrec serve` at this address instead of loading --model "
    "(no model load: the answer is one HTTP round trip; the request is recorded there)",
)
@click.option(
    "--api-key", default=None, envvar="INSTRUCTREC_API_KEY", help="X-API-Key for --server"
)
@click.option("--user", default=None, help="raw user id (omit with --history)")
@click.option("-n", "n", default=10, show_default=True, type=int, help="how many items")
@click.option(
    "--history",
    default=None,
    help="comma-separated raw item ids, oldest first (for users unknown to the model)",
)
@click.option("--candidates", default=None, help="comma-separated raw item ids to rank (only)")
@click.option("--json", "as_json", is_flag=True, help="print the explained answer as JSON")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="torch CPU threads with --runtime torch (one request is too small to share: on a busy 2-core box 2 "
    "threads made load + answer 4.6 s instead of 0.8 s)",
)
@click.option(
    "--runtime",
    type=click.Choice(["auto", "numpy", "torch"]),
    default="auto",
    show_default=True,
    help="what scores the models: numpy (no torch import: SASRec and the MiniLM reranker "
    "with the linear head, same items), torch, or auto (numpy where the run allows it)",
)
@click.argument("instruction", required=False, default=None)
def recommend(
    model_dir: str | None,
    server: str | None,
    api_key: str | None,
    user: str | None,
    n: int,
    history: str | None,
    candidates: str | None,
    as_json: bool,
    threads: int,
    runtime: str,
    instruction: str | None,
) -> None:
    """Top-N items for a user, an explicit history, or nobody (INSTRUCTION alone: a new
    visitor), following INSTRUCTION if given; each with its reason. Loads the model for
    inference only (by default in NumPy, without importing torch: docs/speed.md), or asks a
    running service (--server)."""
    hist = [h.strip() for h in history.split(",") if h.strip()] if history is not None else None
    cands = [c.strip() for c in candidates.split(",") if c.strip()] if candidates else None
    if (model_dir is None) == (server is None):
        raise click.UsageError("give --model DIR (load it here) or --server URL (ask a service)")
    if server is not None:
        from .remote import ask

        body = {"user_id": user, "history": hist, "instruction": instruction, "n": n}
        if cands:
            body["candidates"] = cands
        answer = ask(server, {k: v for k, v in body.items() if v is not None}, api_key)
        if as_json:
            import json

            click.echo(json.dumps(answer.raw, indent=1))
            return
        click.echo(format_answer(answer))
        click.echo(f"request: {answer.request_id}")
        return
    from instructrec.recommender import Recommender

    from .common import model_path

    rec = Recommender.load(model_path(model_dir), inference_only=True, runtime=runtime)
    if rec.runtime == "numpy":
        answer = rec.answer(user=user, instruction=instruction, n=n, history=hist, candidates=cands)
    else:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            answer = rec.answer(
                user=user, instruction=instruction, n=n, history=hist, candidates=cands
            )
        finally:
            torch.set_num_threads(before)  # (a caller's process, e.g. tests, keeps its setting)
    if as_json:
        import json

        click.echo(json.dumps(answer.to_dict(), indent=1))
        return
    click.echo(format_answer(answer))


def format_answer(answer) -> str:
    """The answer as a person reads it: what was understood, a note, then one line per item
    (rank, title with year, genres, calibrated score) with its reason underneath."""
    lines = []
    if answer.understood is not None:
        match = f" ({answer.n_matching} unseen match)" if answer.n_matching is not None else ""
        lines.append(f"understood: {answer.understood}{match}")
    if answer.message:
        lines.append(f"note: {answer.message}")
    width = max([len(r.title) for r in answer.items] + [5])
    for r in answer.items:
        facts = ", ".join(r.genres) or ", ".join(f"{k} {v}" for k, v in r.attributes.items())
        lines.append(f"{r.rank:>3}. {r.title:<{width}}  {r.score:.2f}  {facts}")
        lines.append(f"     {r.reason}")
    return "\n".join(lines)
