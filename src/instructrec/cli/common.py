"""Options shared by several commands: how to name a dataset on the command line.

``--data`` plus ``--map``, ``--items``, ``--item-map``, ``--users``, ``--user-map``, ``--meta``,
``--genre-sep``, ``--noun``, ``--nouns`` and ``--verbs`` are the fields of
`instructrec.data.spec.DataSpec`, the same spec a run config's ``data`` section holds; both go
through `parse_data_spec` and `load_data_spec`.
"""

from __future__ import annotations

import functools

import click

from instructrec.data.spec import SOURCE_HELP

DATA_OPTION_HELP = f"dataset: {SOURCE_HELP}"
# option name -> (DataSpec field, help)
SPEC_OPTIONS = {
    "name": ("name", "the data set's name in reports and on the page (default: from the file)"),
    "map": (
        "columns",
        "column mapping ours=theirs, e.g. user_id=userId,item_id=movieId,timestamp=ts",
    ),
    "items": ("items", "item table (CSV/Parquet) for a CSV/Parquet log"),
    "item_map": ("item_columns", "column mapping for --items, e.g. item_id=book_id,genres=tags"),
    "users": ("users", "user table (CSV/Parquet) for a CSV/Parquet log"),
    "user_map": ("user_columns", "column mapping for --users"),
    "meta": ("meta", "Amazon metadata file (JSON lines, .gz ok) for a reviews file"),
    "genre_sep": ("genre_sep", "genre separator, e.g. '|' (default: '|', else ',', else a space)"),
    "noun": ("noun", "what an item is called in instructions, e.g. book (default: guessed)"),
    "nouns": ("nouns", "its plural (default: noun + s)"),
    "verbs": ("verbs", "past,base of using one, e.g. read,read (default: from the noun)"),
}


def data_option(f):
    """``--data`` and the other `DataSpec` options; the command receives ``data``, a `DataSpec`."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        from instructrec.data.spec import parse_data_spec

        spec = {"source": kwargs.pop("data")}
        for opt, (key, _) in SPEC_OPTIONS.items():
            spec[key] = kwargs.pop(f"data_{opt}")
        kwargs["data"] = parse_data_spec(spec, "--data")
        return f(*args, **kwargs)

    for opt, (_, help_) in reversed(SPEC_OPTIONS.items()):
        wrapper = click.option(
            f"--{opt.replace('_', '-')}", f"data_{opt}", default=None, help=help_
        )(wrapper)
    return click.option(
        "--data", "data", default="ml-100k", show_default=True, help=DATA_OPTION_HELP
    )(wrapper)


SET_HELP = (
    "change one setting of the config, SECTION.KEY=VALUE (VALUE read as YAML; repeatable), "
    "e.g. --set training.lr=5e-4 --set reranker.copies=1 --set priors.0.name=pop"
)


def set_option(f):
    """``--set SECTION.KEY=VALUE`` (repeatable): the one way to override a config from the
    command line (`instructrec.data.settings.apply_overrides`); the command receives ``sets``."""
    return click.option("--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE", help=SET_HELP)(
        f
    )


def retired_option(flag: str, key: str, value: str | None = None):
    """A hidden ``flag`` of an older release: using it is a one-line usage error (exit 2)
    pointing to ``--set KEY=VALUE`` (``value`` given: ``flag`` was an on/off flag)."""

    def refuse(ctx, param, given):
        if given is not None and given is not False:
            shown = value if value is not None else given
            raise click.UsageError(f"{flag} is gone: use --set {key}={shown}", ctx=ctx)

    if value is not None:
        return click.option(
            flag, is_flag=True, default=False, hidden=True, expose_value=False, callback=refuse
        )
    return click.option(flag, default=None, hidden=True, expose_value=False, callback=refuse)


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]; a one-line DataError for anything else."""
    from instructrec.data.errors import DataError

    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise DataError(
            f"--seeds expects comma-separated integers (e.g. 0,1,2), got {text!r}"
        ) from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise DataError(f"--seeds expects distinct non-negative integers, got {text!r}")
    return seeds


def model_path(path) -> str:
    """The saved `Recommender` folder for ``--model``: the folder itself, or the ``model/`` of
    a run folder; a multi-seed run is a `DataError` naming a seed folder to pass."""
    from pathlib import Path

    from instructrec.data.errors import DataError

    p = Path(path)
    if (p / "recommender.json").is_file():
        return str(p)
    if (p / "model" / "recommender.json").is_file():
        return str(p / "model")
    if (p / "seeds.json").is_file():
        seeds = sorted(d.name for d in p.glob("seed-*") if (d / "model").is_dir())
        raise DataError(
            f"a multi-seed run: pass one seed's folder, e.g. {p / (seeds[0] if seeds else 'seed-0')}",
            source=str(p),
        )
    return str(p)  # Recommender.load says what is wrong (missing files, old pickles, ...)
