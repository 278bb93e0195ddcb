"""`instructrec recommend` end to end: wall time of the whole command, before vs after, one run.

Each repeat starts a fresh interpreter running `instructrec -q recommend --model RUN --user U
-n 10 INSTRUCTION` (what a person types), once with the code of a base commit (a `git worktree`
of it on PYTHONPATH) and once with this checkout, alternating so both see the same load on a
shared machine. Reports the median wall and CPU (user + system) seconds, whether both printed
the same recommendations, and an import-time breakdown (`python -X importtime`, cumulative
microseconds of the packages imported at top level) of one extra run of each.

    python benchmarks/bench_cli_load.py --model runs/quickstart           # base 7ae519f
    python benchmarks/bench_cli_load.py --model RUN --base-commit HEAD~3 --repeats 9

Variants: the base commit, this checkout with ``--runtime torch`` (the torch models) and with
its default (``--runtime auto``: NumPy, torch never imported).

Writes benchmarks/results/cli_load.json and cli_load.md (with the machine and load average).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results"
CMD = "from instructrec.cli import main; main()"


def base_tree(commit: str, where: Path) -> Path:
    """``where``: a detached worktree of ``commit`` (made when missing); returns its src/."""
    if not (where / "src" / "instructrec").exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(where), commit],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    return where / "src"


def run_once(src: Path, args: list[str], importtime: bool = False) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    extra = ["-X", "importtime"] if importtime else []
    p = subprocess.run(
        [sys.executable, *extra, "-c", CMD, *args], capture_output=True, text=True, env=env
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"{src}: exit {p.returncode}\n{p.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "stdout": p.stdout, "stderr": p.stderr}


def import_breakdown(stderr: str, top: int = 8) -> dict[str, float]:
    """Seconds per top-level package: the largest cumulative time among that package's
    imports that nothing else imported first (importtime's least-indented lines)."""
    per: dict[str, float] = {}
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if not m or len(m.group(2)) > 3:
            continue
        pkg = m.group(3).split(".")[0]
        if pkg == "instructrec":
            pkg = ".".join(m.group(3).split(".")[:2])
        per[pkg] = max(per.get(pkg, 0.0), int(m.group(1)) / 1e6)
    best = sorted(per.items(), key=lambda kv: -kv[1])[:top]
    return {k: round(v, 3) for k, v in best}


def items_of(stdout: str) -> list[str]:
    """The ranked titles a run printed (score digits may differ in the last place)."""
    return [ln.split("  ")[0].strip() for ln in stdout.splitlines() if re.match(r"\s+\d+\. ", ln)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a run folder (with a reranker)")
    ap.add_argument("--base-commit", default="7ae519f")
    ap.add_argument("--base-tree", default="/tmp/fastcli-base")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--user", default="1")
    ap.add_argument("--instruction", default="a light comedy from the 90s")
    ap.add_argument("--name", default="cli_load")
    ap.add_argument(
        "--serve",
        action="store_true",
        help="also time `recommend --server URL` against an `instructrec serve` of the same "
        "model started here (the persistent path: no model load in the command)",
    )
    a = ap.parse_args()

    sys.path.insert(0, str(ROOT / "src"))

    args = ["-q", "recommend", "--model", a.model, "--user", a.user, "-n", "10", a.instruction]
    variants = {
        f"before ({a.base_commit})": (base_tree(a.base_commit, Path(a.base_tree)), args),
        "after, --runtime torch": (ROOT / "src", [*args[:-1], "--runtime", "torch", args[-1]]),
        "after (default --runtime auto: NumPy, no torch import)": (ROOT / "src", args),
    }
    proc = None
    if a.serve:
        import tempfile

        from instructrec.testing.server import start_serve

        db = Path(tempfile.mkdtemp()) / "bench.db"
        os.environ["PYTHONPATH"] = str(ROOT / "src")  # the service runs this checkout
        key = ["--api-key", "bench-key"]
        proc, url = start_serve(
            ["--model", a.model, "--db", f"sqlite:///{db}", "--seed", "0", *key]
        )
        remote = [
            "-q",
            "recommend",
            "--server",
            url,
            *key,
            "--user",
            a.user,
            "-n",
            "10",
            a.instruction,
        ]
        variants["after, --server (a running service)"] = (ROOT / "src", remote)
    try:
        measure(a, variants, args)
    finally:
        if proc is not None:  # the service never outlives the benchmark, even on a failure
            proc.kill()
            proc.wait(10)


def measure(a, variants: dict, args: list[str]) -> None:

    load0 = os.getloadavg()
    runs: dict[str, list[dict]] = {k: [] for k in variants}
    for i in range(a.repeats):
        for name, (src, argv) in variants.items():
            r = run_once(src, argv)
            runs[name].append(r)
            print(f"repeat {i}: {name}: {r['wall']:.2f} s wall, {r['cpu']:.2f} s cpu", flush=True)
    load1 = os.getloadavg()
    ref = items_of(runs[next(iter(variants))][0]["stdout"])
    rows = {}
    for name, (src, argv) in variants.items():
        imp = run_once(src, argv, importtime=True)
        rows[name] = {
            "wall_median_s": round(statistics.median(r["wall"] for r in runs[name]), 2),
            "wall_min_s": round(min(r["wall"] for r in runs[name]), 2),
            "cpu_median_s": round(statistics.median(r["cpu"] for r in runs[name]), 2),
            "walls_s": [round(r["wall"], 2) for r in runs[name]],
            "same_items_as_before": items_of(runs[name][0]["stdout"]) == ref,
            "imports_s": import_breakdown(imp["stderr"]),
        }
    result = {
        "command": "instructrec " + " ".join(args),
        **run_facts(a.repeats, load0, load1),
        "results": rows,
        "printed_items": ref,
    }
    lines = [
        f"# `instructrec recommend` end to end ({a.repeats} repeats, alternating)",
        "",
        f"`{result['command']}`; machine: {result['machine']}; load average "
        f"{load0[0]:.1f} at start, {load1[0]:.1f} at end (a shared box: read ratios).",
        "",
        "| variant | wall median (s) | wall min (s) | CPU median (s) | same items | top imports "
        "(cumulative s) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        imps = ", ".join(f"{k} {v}" for k, v in r["imports_s"].items())
        cells = [r["wall_median_s"], r["wall_min_s"], r["cpu_median_s"]]
        lines.append(table_row(name, cells, r["same_items_as_before"], imps))
    write_results(a.name, result, lines)


def run_facts(repeats: int, load0, load1) -> dict:
    """What every results file of these A/B benchmarks records about the run and the box."""
    from instructrec.evaluation.manifest import git_state, machine, package_versions

    return {
        "repeats": repeats,
        "loadavg_start": [round(x, 2) for x in load0],
        "loadavg_end": [round(x, 2) for x in load1],
        "machine": machine(),
        "versions": package_versions(),
        "git": git_state(),
    }


def table_row(name: str, cells: list, same: bool, *rest: str) -> str:
    """One markdown row: the variant, its figures, whether it printed the same items."""
    return "| " + " | ".join([name, *map(str, cells), "yes" if same else "NO", *rest]) + " |"


def write_results(name: str, result: dict, lines: list[str]) -> None:
    """benchmarks/results/NAME.json (``result``) and NAME.md (``lines``); prints the table."""
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (OUT / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
