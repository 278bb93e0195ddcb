"""`instructrec runs`: maintenance of saved runs.

instructrec runs convert OLD_MODEL_DIR NEW_MODEL_DIR
"""

from __future__ import annotations

import shutil
from pathlib import Path

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
    files that load without running code; a feedback-tuned run's satisfaction_head.pt
    (read as tensors only) becomes satisfaction_head.safetensors. SRC is not changed.
    """
    from instructrec.data.errors import DataError
    from instructrec.feedback.tuning import OLD_HEAD_FILE, convert_satisfaction_head
    from instructrec.legacy import convert_run
    from instructrec.training.rundir import staged_output

    if Path(dst).exists() and any(Path(dst).iterdir()):
        raise DataError("the destination exists and is not empty", source=str(dst))
    old_head = Path(src) / OLD_HEAD_FILE
    with staged_output(dst) as work:
        if old_head.exists() and _current_format(Path(src)):
            shutil.copytree(src, work, dirs_exist_ok=True)  # only the head is old
        else:
            convert_run(src, work)
        if old_head.exists():
            shutil.copy2(old_head, work / OLD_HEAD_FILE)
            convert_satisfaction_head(work)
    click.echo(f"converted {src} -> {dst}")


def _current_format(folder: Path) -> bool:
    """True when ``folder`` is a Recommender saved in today's format."""
    import json

    from instructrec.data.runfiles import FORMAT

    try:
        meta = json.loads((folder / "recommender.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT
