"""`instructrec runs`: maintenance of saved runs.

instructrec runs convert OLD_MODEL_DIR NEW_MODEL_DIR
"""

from __future__ import annotations

import click


@click.group()
def runs() -> None:
    """Maintain saved runs (model folders)."""


@runs.command()
@click.argument("src", type=click.Path(file_okay=False))
@click.argument("dst", type=click.Path(file_okay=False))
def convert(src: str, dst: str) -> None:
    """Rewrite a model folder saved by an older instructrec (pickles) as data.

    SRC is READ WITH PICKLE, which runs any code the files name: only convert a folder you
    trust (one you trained yourself). DST (new or empty) gets JSON, safetensors and Parquet
    files that load without running code. SRC is not changed.
    """
    from instructrec.legacy import convert_run

    out = convert_run(src, dst)
    click.echo(f"converted {src} -> {out}")
