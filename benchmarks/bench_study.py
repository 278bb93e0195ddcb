"""A whole study as one benchmark: train a config with several seeds, evaluate every protocol
at the validation stage and (once, for the reported figures) at the test stage, against every
baseline and rival; record wall time and peak memory of each step.

    python benchmarks/bench_study.py --config configs/quickstart.yaml --out runs/ml100k \
        --name study_ml100k --stages valid,test
    python benchmarks/bench_study.py --config configs/games.yaml --out runs/games \
        --name study_games --stages valid,test --models pop,itemknn,ease,sasrec,score-mix,sasrec+filter

A run directory that already holds every seed is reused (its training time is read from the
manifests). Writes benchmarks/results/NAME.{json,md} (machine, versions, timings, tables)
and the evaluation reports under OUT/eval-STAGE/.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = "pop,itemknn,bpr,ease,sasrec,score-mix,sasrec+filter,bias,mf"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True, help="run directory (reused when complete)")
    ap.add_argument("--name", required=True, help="results file name")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--stages", default="valid", help="valid, test or valid,test")
    ap.add_argument("--protocols", default="all")
    ap.add_argument("--models", default=MODELS)
    ap.add_argument("--set", dest="sets", action="append", default=["ease.l2=100"],
                    help="evaluation options (MODEL.OPTION=VALUE), not training settings")  # fmt: skip
    ap.add_argument("--train-set", dest="train_sets", action="append", default=[],
                    help="SECTION.KEY=VALUE over --config for training (as `train --set`)")  # fmt: skip
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="read back protocols a seed already has in OUT/eval-STAGE (same split, stage and "
        "models) instead of scoring them again: seeds evaluated in separate runs combine here",
    )
    args = ap.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from instructrec.cli.common import parse_seeds
    from instructrec.cli.evaluate import _parse_sets
    from instructrec.config import RunConfig
    from instructrec.data import load_split
    from instructrec.data.spec import load_data_spec
    from instructrec.data.split_files import add_candidate_files
    from instructrec.evaluation.manifest import git_state, machine, package_versions
    from instructrec.evaluation.protocols import PROTOCOLS
    from instructrec.evaluation.run import _runnable
    from instructrec.evaluation.seeds import STACKED, headline, stacked_markdown, to_markdown
    from instructrec.evaluation.study import RIVALS, run_study
    from instructrec.runs import SEEDS_FILE, load_seed_models, train_seeds

    seeds = parse_seeds(args.seeds)
    out = Path(args.out)
    timings: dict[str, float] = {}
    cfg = RunConfig.from_yaml(args.config, args.train_sets)
    done = out / SEEDS_FILE
    if not (done.exists() and set(json.loads(done.read_text())["seeds"]) >= set(seeds)):
        t0 = time.perf_counter()
        train_seeds(cfg, out, seeds, echo=print, resume=True)
        timings["train_s"] = time.perf_counter() - t0
    for s in seeds:
        man = json.loads((out / f"seed-{s}" / "manifest.json").read_text())
        timings[f"train_s/seed{s}"] = man.get("total_seconds")
    t0 = time.perf_counter()
    dataset = load_data_spec(cfg.data.source)
    split = load_split(out / "split", dataset)
    run_models = load_seed_models(out)
    timings["load_s"] = time.perf_counter() - t0
    wanted = [m for m in args.models.split(",") if m]
    rivals = [m for m in wanted if m in (*RIVALS, STACKED)]
    baselines = [m for m in wanted if m not in rivals]
    names = list(PROTOCOLS) if args.protocols == "all" else args.protocols.split(",")
    probe = {b: None for b in baselines}
    names = [n for n in names if _runnable(n, split, probe, dataset)]
    tables, commits = {}, {}
    for stage in args.stages.split(","):
        t0 = time.perf_counter()
        study, combined = run_study(
            dataset,
            split,
            names,
            seeds,
            stage=stage,
            run_models=run_models,
            baselines=baselines,
            rivals=rivals,
            out_dir=out / f"eval-{stage}",
            n_boot=args.n_boot,
            options=_parse_sets(tuple(args.sets)),
            reuse=args.reuse,
        )
        commits[stage] = {
            s: sorted(
                {str(r.manifest.get("git", {}).get("commit", "?"))[:7] for r in reps.values()}
            )
            for s, reps in study.items()
        }
        timings[f"evaluate_s/{stage}"] = time.perf_counter() - t0
        # candidate files built here (hard negatives from the first seed's SASRec, search-hard)
        # are kept with the split, so seeds evaluated later score the same candidates
        added = add_candidate_files(split, out / "split")
        if added:
            print(f"saved {', '.join(added)} into {out / 'split'}")
        tables[stage] = {
            "headline": headline(combined),
            "markdown": to_markdown(combined),
            "stacked": stacked_markdown(study, n_boot=args.n_boot),
            "means": combined.means.to_dict(orient="records"),
            "tests": combined.tests.to_dict(orient="records"),
        }
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "config": cfg.to_dict(),
        "seeds": seeds,
        "protocols": names,
        "models": wanted,
        "timings_s": timings,
        "peak_rss_mib": peak_rss_mib(),
        "machine": machine(),
        "packages": package_versions(),
        "git": git_state(),
        "dataset": {"name": dataset.name, "users": dataset.n_users, "items": dataset.n_items},
        "evaluated_rows": {"valid": len(split.valid), "test": len(split.test)},
        "tables": tables,
        "evaluated_at": commits,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1, default=str))
    md = [
        f"# {args.name}",
        "",
        f"`{result['command']}`",
        "",
        f"Machine: {result['machine']}; git {result['git']}; peak RSS "
        f"{result['peak_rss_mib']:.0f} MiB; timings (s): "
        + ", ".join(f"{k} {v:.0f}" for k, v in timings.items() if v is not None),
        "",
    ]
    for stage, t in tables.items():
        at = "; ".join(f"seed {s}: {', '.join(c)}" for s, c in commits[stage].items())
        md += [f"## Stage: {stage}", "", f"Scored at commit ({stage}): {at}", ""]
        md += [t["headline"], ""]
        if t["stacked"]:
            md += [f"### {STACKED}: score-mix with the reranker's score as one more feature", ""]
            md += [t["stacked"], ""]
        md += [t["markdown"], ""]
    (RESULTS / f"{args.name}.md").write_text("\n".join(md))
    print("\n".join(md))
    return result


if __name__ == "__main__":
    main()
