"""A reranker variant inside the SHIPPED configuration, against the shipped model.

`bench_rr_ablation.py` compares heads in a bare setting (no intention-match channel, short
budget). This one asks the question that decides the default: in a finished quickstart run
(configs/quickstart.yaml: stacked priors, CF vectors, intention-match channel, calibration),
does swapping the head help? It loads the run's model, split and fitted retrievers, trains a
second reranker that differs only in ``backbone.head`` / ``head_options`` (same priors, same
instances, same seed, same budget), and evaluates both with the baselines on every ranking
protocol in one `instructrec.evaluation.run` per protocol, so the head variant is paired
against the shipped model on the same users.

    python benchmarks/bench_head_shipped.py --run runs/quickstart \
        --head rr --option T=2 --option direct_init=1.0      # "rr2p" of the ablation
    python benchmarks/bench_head_shipped.py --run runs/quickstart --head linear \
        --set reranker.copies=4 --label copies4 --name copies4_shipped   # any other setting

Writes benchmarks/results/head_shipped.{json,md} (``--name`` to change).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTOCOLS = (
    ("cand10", None),
    ("full", None),
    ("search", None),
    ("vague", None),
    ("cand10", "held_out"),
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a quickstart / train run directory")
    ap.add_argument("--head", default="rr")
    ap.add_argument("--option", action="append", default=[], help="head option KEY=VALUE")
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="any other config change SECTION.KEY=VALUE, e.g. reranker.copies=4",
    )
    ap.add_argument("--label", default=None, help="display name of the variant")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--name", default="head_shipped")
    args = ap.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(HERE.parent / "src"))
    from instructrec.cli.evaluate import _parse_sets
    from instructrec.config import RunConfig
    from instructrec.data import load_split
    from instructrec.evaluation import run
    from instructrec.recommender import Recommender

    run_dir = Path(args.run)
    base = Recommender.load(run_dir / "model")
    dataset = base.dataset
    split = load_split(run_dir / "split", dataset)
    cfg = RunConfig.from_yaml(run_dir / "config.yaml")
    variant_cfg = copy.deepcopy(cfg)
    variant_cfg.backbone.head = args.head
    # KEY=VALUE head options and SECTION.KEY=VALUE settings, parsed as the CLI's --set is
    variant_cfg.backbone.head_options = _parse_sets(tuple(f"head.{o}" for o in args.option)).get(
        "head", {}
    )
    for section, values in _parse_sets(tuple(args.overrides)).items():
        part = getattr(variant_cfg, section)
        for name, value in values.items():
            if not hasattr(part, name):
                raise SystemExit(f"--set {section}.{name}: {section} has no setting {name!r}")
            setattr(part, name, value)
    label = args.label or f"{args.head}({','.join(args.option + args.overrides)})"

    # the same fitted retrievers: only the head differs
    variant = Recommender(
        dataset,
        base.retriever,
        priors=base.priors,
        config=variant_cfg,
        rerank_depth=base.rerank_depth,
    )
    variant.sequences = base.sequences
    t0 = time.perf_counter()
    variant.reranker = variant._train_reranker(split, output_dir=None)
    train_s = time.perf_counter() - t0

    models = {p.name: p for p in base.priors}
    models["instructrec"] = base
    models[label] = variant
    baselines = [*(p.name for p in base.priors), "instructrec"]
    results, md = {}, []
    for proto, templates in PROTOCOLS:
        key = proto + ("-heldout" if templates else "")
        rep = run(
            proto,
            dataset,
            split,
            models,
            seed=cfg.data.seed,
            templates=templates,
            baselines=baselines + (["sasrec+filter"] if proto == "search" else []),
        )
        cmp = rep.comparisons
        row = cmp[(cmp["model"] == label) & (cmp["baseline"] == "instructrec")]
        results[key] = {
            "table": {m: {k: float(v) for k, v in r.items()} for m, r in rep.table.iterrows()},
            "variant_vs_linear": row.to_dict(orient="records"),
        }
        md.append(f"## {key}\n\n" + rep.to_markdown())
        print(key, rep.table.loc[["instructrec", label]].to_dict(orient="index"), flush=True)
    head = variant.reranker.scorer.model.head
    meta = {
        "command": "python benchmarks/bench_head_shipped.py " + " ".join(argv or sys.argv[1:]),
        "base_run": str(run_dir),
        "variant": {"head": args.head, "head_options": variant_cfg.backbone.head_options},
        "train_s": train_s,
        "head_params": sum(p.numel() for p in head.parameters()),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_avg": os.getloadavg(),
        },
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=2, default=str)
    )
    (out / f"{args.name}.md").write_text(
        f"# Head variant in the shipped configuration: {label} vs the linear head\n\n"
        f"Command: `{meta['command']}`; base run `{run_dir}`; variant training {train_s:.0f} s; "
        f"head parameters {meta['head_params']:,}.\nMachine: {meta['machine']}\n\n" + "\n".join(md)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
