"""`instructrec data info|convert|split`: inspect, convert and split datasets.

A thin face over `instructrec.data`: every command resolves ``--data`` with
`data.spec.load_data_spec` (the `DataSpec` options of `cli.common.data_option`), calls the public API and prints. Bad input is a `DataError`,
which the top-level group turns into one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import data_option


@click.group()
def data() -> None:
    """Inspect, convert and split datasets."""


@data.command()
@data_option
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def info(data, as_json) -> None:
    """Counts, ranges and attributes of a dataset."""
    from instructrec.data.spec import load_data_spec

    ds = load_data_spec(data)
    summary = ds.summary()
    summary["fingerprint"] = ds.fingerprint()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(format_summary(summary))


def format_summary(s: dict) -> str:
    """The summary as aligned ``key: value`` lines."""
    per = s["interactions_per_user"]
    rating = s["rating"]
    lines = [
        ("name", s["name"]),
        ("users", f"{s['users']:,}"),
        ("items", f"{s['items']:,}"),
        ("interactions", f"{s['interactions']:,}"),
        ("density", f"{s['density']:.5f}"),
        ("per user", f"min {per['min']}, median {per['median']:g}, max {per['max']}"),
        (
            "ratings",
            "none"
            if rating is None
            else f"{rating['min']:g} to {rating['max']:g}, mean {rating['mean']:.3f}",
        ),
        ("time range", " to ".join(_when(t) for t in s["time_range"])),
        ("reviews", "yes" if s["has_reviews"] else "no"),
        ("item attributes", ", ".join(s["item_attributes"]) or "none"),
        ("user attributes", ", ".join(s["user_attributes"]) or "none"),
        ("fingerprint", s.get("fingerprint", "")),
    ]
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in lines)


def _when(t: float) -> str:
    import datetime as dt

    if 0 < t < 4e9:  # plausibly unix seconds
        return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d")
    return f"{t:g}"


@data.command()
@data_option
@click.option(
    "--to",
    "fmt",
    type=click.Choice(["atomic", "parquet"]),
    required=True,
    help="atomic: RecBole .inter/.item/.user; parquet: interactions/items/users",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="output directory")
@click.option("--overwrite", is_flag=True, help="replace what --out already holds")
def convert(data, fmt, out, overwrite) -> None:
    """Convert a dataset to RecBole atomic files or a Parquet directory."""
    from instructrec.data import write_atomic, write_parquet
    from instructrec.training.rundir import check_output, staged_output

    check_output(out, overwrite=overwrite)
    from instructrec.data.spec import load_data_spec

    ds = load_data_spec(data)
    with staged_output(out, overwrite=overwrite) as work:  # renamed to --out on success
        paths = write_atomic(ds, work) if fmt == "atomic" else write_parquet(ds, work)
    for p in paths:
        click.echo(f"wrote {Path(out) / Path(p).relative_to(work)}")


@data.command()
@data_option
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="directory for train/valid/test Parquet, candidate .npy files, split.json",
)
@click.option("--seed", default=0, show_default=True, help="seed for the negative samples")
@click.option("--overwrite", is_flag=True, help="replace what --out already holds")
def split(data, out, seed, overwrite) -> None:
    """Leave-one-out split plus cand10/cand20 candidate files, with SHA-256 hashes."""
    from tqdm.auto import tqdm

    from instructrec.data.spec import load_data_spec
    from instructrec.data.split import add_candidates, leave_one_out
    from instructrec.data.split_files import save_split
    from instructrec.training.rundir import check_output, staged_output

    check_output(out, overwrite=overwrite)

    steps = ["load", "leave-one-out", "candidates", "save"]
    # disable=None: no bar when stderr is not a terminal (logs keep only the one error line)
    with tqdm(total=len(steps), desc="split", unit="step", leave=False, disable=None) as bar:
        bar.set_postfix_str(steps[0])
        ds = load_data_spec(data)
        bar.update()
        bar.set_postfix_str(steps[1])
        sp = leave_one_out(ds, seed=seed)
        bar.update()
        bar.set_postfix_str(steps[2])
        add_candidates(ds, sp)
        bar.update()
        bar.set_postfix_str(steps[3])
        with staged_output(out, overwrite=overwrite) as work:  # renamed to --out on success
            save_split(sp, work, ds)
        bar.update()
    click.echo(
        f"{ds.name}: {ds.n_users:,} users, {ds.n_items:,} items -> "
        f"train {len(sp.train):,}, valid {len(sp.valid):,}, test {len(sp.test):,} rows "
        f"(seed {seed})"
    )
    for name, digest in sorted(sp.hashes.items()):
        click.echo(f"  {name:<22} sha256 {digest[:16]}")
    click.echo(f"wrote {Path(out) / 'split.json'}")
