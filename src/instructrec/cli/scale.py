"""`instructrec scale`: work on every user at once.

    instructrec scale topk --model runs/NAME --k 100 --out top100.parquet
    instructrec scale topk --model runs/NAME --k 100 --out top100/ --backend ray --workers 8

Multi-process training needs no command of its own: launch any command with
``accelerate launch --config_file configs/accelerate/<config>.yaml -m instructrec.cli ...``.
"""

from __future__ import annotations

import click


@click.group()
def scale() -> None:
    """Batch work over all users (see docs/scale.md)."""


@scale.command("topk")
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="a run directory written by `instructrec train` or `quickstart`",
)
@click.option("--k", default=100, show_default=True, type=int, help="items per user")
@click.option(
    "--out",
    required=True,
    type=click.Path(),
    help="Parquet file to write (a directory with --backend ray)",
)
@click.option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="ray needs the extra: pip install 'instructrec[ray]'",
)
@click.option("--workers", default=2, show_default=True, type=int, help="Ray actors")
@click.option(
    "--user-block",
    default=256,
    show_default=True,
    type=int,
    help="users scored together (memory: user_block x items scores)",
)
def topk(model_dir: str, k: int, out: str, backend: str, workers: int, user_block: int) -> None:
    """The first stage's top-K unseen items for every user of a saved run (raw ids)."""
    import numpy as np

    from instructrec.recommender import Recommender
    from instructrec.scale.retriever_scoring import retriever_topk

    rec = Recommender.load(model_dir)
    users = np.arange(rec.dataset.n_users)
    empty = np.empty(0, np.int64)
    histories = [rec.sequences.get(int(u), empty) for u in users]  # everything known
    from instructrec.training.rundir import staged_file

    with staged_file(out) as tmp:  # renamed to --out when complete
        retriever_topk(
            rec.retriever,
            users,
            k,
            histories,
            user_block=user_block,
            backend=backend,
            num_workers=workers,
            user_ids=rec.dataset.user_ids,
            item_ids=rec.dataset.item_ids,
            output=tmp,
        )
    click.echo(f"wrote top-{k} of {len(users):,} users to {out}")
