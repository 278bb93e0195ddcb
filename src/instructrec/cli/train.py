"""`instructrec train` and `instructrec recommend`: thin faces over `instructrec.runs`.

instructrec train --config configs/quickstart.yaml --out runs/NAME
instructrec recommend --model runs/NAME --user 42 "a light comedy from the 90s" -n 10
"""

from __future__ import annotations

import click


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    required=True,
    help="run config (YAML): data, retriever, priors, backbone, reranker, training",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="run directory to write (model, split, config.yaml, manifest.json)",
)
@click.option("--max-steps", type=int, default=None, help="override training.max_steps")
@click.option(
    "--seeds",
    default=None,
    help="comma-separated seeds (e.g. 0,1,2): one model per seed on one shared split, in "
    "OUT/seed-N with OUT/seeds.json; `evaluate --model-dir OUT --seeds ...` reads them all",
)
def train(config_path: str, out: str, max_steps: int | None, seeds: str | None) -> None:
    """Fit the retriever, the priors and the instruction reranker; save a run directory."""
    from instructrec.config import RunConfig
    from instructrec.runs import train_run, train_seeds

    from .common import parse_seeds
    from .progress import is_quiet

    cfg = RunConfig.from_yaml(config_path)
    if max_steps is not None:
        cfg.training.max_steps = max_steps
    if is_quiet():
        cfg.training.progress = False  # no tqdm bar under --quiet
    if seeds is not None:
        manifests = train_seeds(cfg, out, parse_seeds(seeds), echo=click.echo)
        for s, m in manifests.items():
            best = m.get("training", {}).get("best_metric")
            if best is not None:
                click.echo(f"seed {s}: best validation {cfg.training.metric}: {best:.4f}")
        click.echo(f"saved {out} (seeds {', '.join(map(str, manifests))})")
        from instructrec.training.loop import end_distributed

        end_distributed()
        return
    rec, manifest = train_run(cfg, out)
    click.echo(
        f"saved {out} ({rec.dataset.name}: {rec.dataset.n_users} users, "
        f"{rec.dataset.n_items} items; reranker: "
        f"{'yes' if rec.reranker is not None else 'no'})"
    )
    best = manifest.get("training", {}).get("best_metric")
    if best is not None:
        click.echo(f"best validation {cfg.training.metric}: {best:.4f}")
    from instructrec.training.loop import end_distributed

    end_distributed()  # a clean exit under accelerate launch / torchrun


@click.command()
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="a run folder written by `instructrec train` or `quickstart`, or its model/",
)
@click.option("--user", default=None, help="raw user id (omit with --history)")
@click.option("-n", "n", default=10, show_default=True, type=int, help="how many items")
@click.option(
    "--history",
    default=None,
    help="comma-separated raw item ids, oldest first (for users unknown to the model)",
)
@click.option("--candidates", default=None, help="comma-separated raw item ids to rank (only)")
@click.argument("instruction", required=False, default=None)
def recommend(
    model_dir: str,
    user: str | None,
    n: int,
    history: str | None,
    candidates: str | None,
    instruction: str | None,
) -> None:
    """Top-N items for a user (or an explicit history), following INSTRUCTION if given."""
    from instructrec.recommender import Recommender

    from .common import model_path

    rec = Recommender.load(model_path(model_dir))
    hist = [h.strip() for h in history.split(",") if h.strip()] if history is not None else None
    cands = [c.strip() for c in candidates.split(",") if c.strip()] if candidates else None
    df = rec.recommend(user=user, instruction=instruction, n=n, history=hist, candidates=cands)
    click.echo(df.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
