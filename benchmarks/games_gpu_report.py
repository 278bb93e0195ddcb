"""The Games reranker trained without its instance cap (configs/games-gpu.yaml, on a GPU) next to
the capped CPU runs (configs/games.yaml): one table per stage, mean over seeds, per-seed values.

    python benchmarks/games_gpu_report.py   # reads benchmarks/results/, writes games_gpu.{json,md}

Inputs: ``games_gpu_seed{S}_{stage}.json`` (one `bench_study.py` run per seed and stage, written
on the device machine) and, for the capped runs, ``stacked_games.json`` (validation and test,
seeds 0-2) and ``study_games_test.json`` (test, seeds 0-2, every protocol). The two sets of runs
are different models on different hardware, so the comparison between them is unpaired: their
mean difference is given with the spread of the seeds, not a paired CI. Within each GPU run, the
paired tests against the rivals are in its own file.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
PROTOCOLS = ("cand10", "cand20", "hard", "cold", "full", "vague", "search", "search-hard")
MODELS = ("instructrec", "sasrec", "ease", "score-mix", "sasrec+filter")
HEADLINE = {"full": "NDCG@10"}  # every other protocol: HR@1


def means(path: Path, stage: str) -> dict[tuple[str, str], list[float]]:
    """(protocol, model) -> per-seed values of the protocol's headline metric."""
    data = json.loads(path.read_text())
    out = {}
    for row in data["tables"][stage]["means"]:
        if row["metric"] != HEADLINE.get(row["protocol"], "HR@1"):
            continue
        seeds = sorted(k for k in row if k.startswith("seed") and k[4:].isdigit())
        out[(row["protocol"], row["model"])] = [float(row[k]) for k in seeds]
    return out


def gpu_runs(stage: str) -> tuple[list[int], dict[tuple[str, str], list[float]]]:
    files = sorted(RESULTS.glob(f"games_gpu_seed*_{stage}.json"))
    seeds = [int(f.name.split("_seed")[1].split("_")[0]) for f in files]
    merged: dict[tuple[str, str], list[float]] = {}
    for f in files:
        for key, vals in means(f, stage).items():
            merged.setdefault(key, []).extend(vals)
    return seeds, merged


def capped_runs(stage: str) -> dict[tuple[str, str], list[float]]:
    out = means(RESULTS / "stacked_games.json", stage)
    if stage == "test":
        out.update(means(RESULTS / "study_games_test.json", "test"))  # every protocol and rival
    return out


def fmt(vals: list[float] | None) -> str:
    if not vals:
        return ""
    return f"{statistics.fmean(vals):.4f} ({'/'.join(f'{v:.4f}'[1:] for v in vals)})"


def report() -> dict:
    result: dict = {"stages": {}}
    md = [
        "# Amazon Games: the reranker without its instance cap (GPU) vs the capped CPU runs",
        "",
        "`python benchmarks/games_gpu_report.py` (from the files named in its docstring). GPU runs:",
        "`configs/games-gpu.yaml` (games.yaml with every one of the 65,000 training instances",
        "instead of 8,000, SASRec on the GPU), one NVIDIA H200, one `bench_study.py` run per seed",
        "and stage. Capped runs: `configs/games.yaml` on the 2-core CPU box, seeds 0-2. Headline",
        "metric per protocol (HR@1; full: NDCG@10), mean over seeds (per-seed values). The hard and",
        "search-hard candidates are built from a SASRec: each GPU seed's own (the seeds ran as",
        "separate invocations), seed 0's for the three capped seeds; so those rows differ in their",
        "candidates between the two sets as well as in the models (see score-mix on hard).",
        "",
    ]
    for stage in ("valid", "test"):
        seeds, gpu = gpu_runs(stage)
        cpu = capped_runs(stage)
        rows = []
        md += [
            f"## Stage: {stage} (GPU seeds {', '.join(map(str, seeds))}; capped seeds 0, 1, 2)",
            "",
            "| protocol | model | uncapped (GPU) | capped (CPU) | uncapped - capped |",
            "|---|---|---|---|---|",
        ]
        for p in PROTOCOLS:
            for m in MODELS:
                g, c = gpu.get((p, m)), cpu.get((p, m))
                if not g and not c:
                    continue
                diff = statistics.fmean(g) - statistics.fmean(c) if g and c else None
                rows.append({"protocol": p, "model": m, "uncapped": g, "capped": c, "diff": diff})
                name = f"**{m}**" if m == "instructrec" else m
                d = "" if diff is None else f"{diff:+.4f}"
                md.append(f"| {p} | {name} | {fmt(g)} | {fmt(c)} | {d} |")
        md.append("")
        result["stages"][stage] = {"gpu_seeds": seeds, "rows": rows}
    (RESULTS / "games_gpu.json").write_text(json.dumps(result, indent=1))
    (RESULTS / "games_gpu.md").write_text("\n".join(md))
    return result


if __name__ == "__main__":
    report()
    print((RESULTS / "games_gpu.md").read_text())
