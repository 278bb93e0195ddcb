"""`instructrec instructions`: build an InstructionSet file, or show rendered examples.

instructrec instructions build --data ml-100k --set stage=train --out train.jsonl
instructrec instructions show --data ml-100k --n 2
"""

from __future__ import annotations

import click

from .common import data_option, set_option


def _split(dataset, split_dir: str | None, seed: int):
    from instructrec.data import load_split, make_split

    return load_split(split_dir, dataset) if split_dir else make_split(dataset, seed=seed)


def _templates(spec: str) -> str | list[str]:
    return spec if spec in ("seen", "held_out", "all") else [s.strip() for s in spec.split(",")]


@click.group()
def instructions() -> None:
    """Instruction templates and the InstructionSet builder (InstructRec P/I/T slots)."""


def _out_options(default_format: str):
    """``--out FILE`` and ``--format`` (jsonl | alpaca | tsv) of a command that writes a file."""

    def wrap(f):
        f = click.option("--format", "fmt", type=click.Choice(["jsonl", "alpaca", "tsv"]),
                         default=default_format, show_default=True)(f)  # fmt: skip
        return click.option("--out", required=True, type=click.Path(dir_okay=False),
                            help="file to write")(f)  # fmt: skip

    return wrap


@instructions.command("build")
@data_option
@_out_options("jsonl")
@click.option(
    "--split-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="a saved split (default: a fresh leave-one-out split with the config's seed)",
)
@click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="an InstructionConfig YAML (stage, slots, candidates, templates, seed, per_user, "
    "context, teacher; default: the InstructionConfig defaults)",
)
@click.option(
    "--teacher/--no-teacher",
    default=False,
    help="rewrite P2/I1 texts with the teacher LLM (INSTRUCTREC_TEACHER_URL, _MODEL, _KEY)",
)
@set_option
def build_cmd(
    data: str,
    out: str,
    fmt: str,
    split_dir: str | None,
    config_path: str | None,
    teacher: bool,
    sets: tuple[str, ...],
) -> None:
    """Build the InstructionSet of a stage and write it as JSONL, Alpaca JSON or TSV.
    Settings: --config FILE and --set KEY=VALUE (e.g. --set stage=test --set per_user=2
    --set templates=held_out --set 'slots=[[P1,I0,T3],[P1,I2,T3]]')."""
    import time

    from instructrec.data.settings import apply_overrides
    from instructrec.instructions import export
    from instructrec.instructions.config import InstructionConfig
    from instructrec.instructions.teacher import TeacherConfig

    cfg = InstructionConfig.from_yaml(config_path) if config_path else InstructionConfig()
    if teacher:
        cfg.teacher = TeacherConfig.from_env()
    cfg = apply_overrides(cfg, sets)
    from instructrec.data.spec import load_data_spec

    ds = load_data_spec(data)
    split = _split(ds, split_dir, cfg.seed)
    start = time.perf_counter()
    frame = cfg.build(ds, split)
    took = time.perf_counter() - start
    from instructrec.training.rundir import staged_file

    with staged_file(out) as tmp:  # renamed to --out when complete
        export(frame, tmp, fmt)
    counts = frame.groupby(["P", "I", "T"]).size()
    click.echo(
        f"wrote {len(frame):,} instructions ({len(counts)} slots, "
        f"{frame['template_id'].nunique()} templates) to {out} "
        f"in {took:.2f}s ({len(frame) / max(took, 1e-9):,.0f}/s)"
    )


@instructions.command("yesno")
@data_option
@_out_options("alpaca")
@click.option("--n", "n", default=None, type=click.IntRange(min=1),
              help="questions to write (default: every eligible position)")  # fmt: skip
@click.option("--history", default=10, show_default=True, type=click.IntRange(min=1),
              help="rated items shown before each target")  # fmt: skip
@click.option("--liked", default=4.0, show_default=True, type=float,
              help="ratings at or above this count as liked (and answer Yes)")  # fmt: skip
@click.option("--seed", default=0, show_default=True, type=int, help="split and order")
@click.option(
    "--split-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="a saved split (default: a fresh leave-one-out split with --seed)",
)
def yesno(data, out: str, fmt: str, n, history: int, liked: float, seed: int, split_dir) -> None:
    """Write Yes/No questions with a liked/disliked-marked history from the ratings of the
    training split (TALLRec's task; the benchmark's "log questions"), for `instructrec tune`."""
    from instructrec.data.spec import load_data_spec
    from instructrec.instructions import export
    from instructrec.instructions.yesno import rated_questions
    from instructrec.training.rundir import staged_file

    ds = load_data_spec(data)
    frame = rated_questions(ds, _split(ds, split_dir, seed), n=n, history=history,
                            liked=liked, seed=seed)  # fmt: skip
    with staged_file(out) as tmp:  # renamed to --out when complete
        export(frame, tmp, fmt)
    click.echo(
        f"wrote {len(frame):,} Yes/No questions ({(frame['answer'] == 'Yes').mean():.1%} Yes, "
        f"history {history}) to {out}"
    )


@instructions.command("show")
@data_option
@click.option("--n", "n", default=2, show_default=True, type=int, help="examples per slot")
@click.option(
    "--stage", type=click.Choice(["train", "valid", "test"]), default="train", show_default=True
)
@click.option(
    "--templates",
    default="seen",
    show_default=True,
    help="seen | held_out | all | comma-separated template ids",
)
@click.option("--seed", default=0, show_default=True, type=int)
def show(data: str, n: int, stage: str, templates: str, seed: int) -> None:
    """Print N rendered examples for every (P, I, T) slot: what the model reads."""
    from instructrec.data.spec import load_data_spec
    from instructrec.instructions import build

    ds = load_data_spec(data)
    split = _split(ds, None, seed)
    if stage == "train" and templates in ("held_out", "all"):
        stage = "valid"  # held-out templates are never rendered for training
    frame = build(ds, split, stage=stage, templates=_templates(templates), seed=seed)
    for (p, i, task), group in frame.groupby(["P", "I", "T"], sort=True):
        click.echo(f"=== {p} {i} {task} ({len(group):,} rows) ===")
        for _, row in group.head(n).iterrows():
            click.echo(
                f"[{row['template_id']}{' held-out' if row['held_out'] else ''}] "
                f"{row['instruction']}"
            )
            click.echo(f"  -> {row['answer']}")
        click.echo("")
