"""What a second weight on a cold candidate's text score could do (docs/reranker.md, "A
second weight for a cold candidate's text"): inference only, on one trained run's seed, at
the validation stage. For each hand-set weight a, every cold candidate (no training
interaction) gets a x (its z-scored content prior channel, titleknn) added to its reranker
score; the `cold` rows and the warm protocols (cand10: ~5% of its random negatives are cold)
are scored again. a = 0 is the run as trained. This is the trade `reranker.cold_content`
leaves to training; it is not a model to report.

    python benchmarks/bench_cold_weight.py --run runs/games --seed 0 --weights 0,0.3,1,2 \
        --protocols cold,cand10 --name cold_weight_games_valid

Writes benchmarks/results/NAME.{json,md}. Validation only (development).
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def sweep(run_dir: str, seed: int, weights: list[float], protocols: list[str]) -> dict:
    """Per weight, per protocol, the reranker's mean metrics (module docstring)."""
    from instructrec.data import load_split
    from instructrec.rerank.cold import content_channels
    from instructrec.rerank.reranker import InstructionReranker
    from instructrec.runs import load_seed_models, run_split_dir

    runmod = importlib.import_module("instructrec.evaluation.run")
    rec = load_seed_models(run_dir)[seed]
    rr = rec.reranker
    if rr is None or rr.cold_items is None:
        raise SystemExit(f"{run_dir}: seed {seed} has no reranker with a cold channel")
    content = [i for i, c in enumerate(content_channels(rr.prior_names)) if c]
    if not content:
        raise SystemExit(f"{run_dir}: the reranker has no content-based prior")
    ds = rec.dataset
    split = load_split(run_split_dir(run_dir), ds)
    orig = InstructionReranker.score_candidates
    state = {"a": 0.0}

    def patched(self, users, candidates, histories, intentions=None, templates=None,
                prior=None, batch_size=256):  # fmt: skip
        s = orig(self, users, candidates, histories, intentions, templates, prior, batch_size)
        if state["a"]:
            z = self.prior_features(candidates, intentions, prior)
            cold = self.cold_items[np.asarray(candidates, np.int64)]
            s = s + state["a"] * cold * z[..., content].sum(-1)
        return s

    out: dict = {}
    InstructionReranker.score_candidates = patched
    try:
        for a in weights:
            state["a"] = a
            out[str(a)] = {}
            for p in protocols:
                rep = runmod.run(
                    p, ds, split, {"instructrec": rec}, seed=seed, stage="valid", n_boot=10
                )
                out[str(a)][p] = {m: float(rep.mean("instructrec", m)) for m in rep.metrics}
    finally:
        InstructionReranker.score_candidates = orig
    head = rr.scorer.model.head
    return {
        "run": str(run_dir),
        "seed": seed,
        "prior_names": list(rr.prior_names),
        "prior_w": [float(x) for x in np.asarray(head.prior_w.detach().cpu())],
        "content_channels": content,
        "by_weight": out,
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights", default="0,0.3,1,2")
    ap.add_argument("--protocols", default="cold,cand10")
    ap.add_argument("--name", required=True)
    ap.add_argument("--note", default="")
    a = ap.parse_args(argv)
    from instructrec.evaluation.manifest import git_commit, machine

    weights = [float(x) for x in a.weights.split(",")]
    protocols = a.protocols.split(",")
    t0 = time.perf_counter()
    res = sweep(a.run, a.seed, weights, protocols)
    out = {
        "machine": machine("torch", "numpy"),
        "seconds": time.perf_counter() - t0,
        "note": a.note,
        "commit": git_commit(),
        **res,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{a.name}.json").write_text(json.dumps(out, indent=2))
    head = {"full": "NDCG@10", "search-full": "NDCG@10"}
    md = [
        f"# A hand-set weight on cold candidates' content score (validation, seed {a.seed})",
        "",
        f"Run {a.run}; priors {res['prior_names']} with trained weights "
        f"{[round(w, 3) for w in res['prior_w']]} (then intent and cold channels); machine "
        f"{json.dumps(out['machine'])}; code at {out['commit']}; {out['seconds']:.0f} s. "
        f"{a.note}",
        "",
        "| weight a | " + " | ".join(f"{p} {head.get(p, 'HR@1')}" for p in protocols) + " |",
        "|---|" + "---|" * len(protocols),
    ]
    for w, row in res["by_weight"].items():
        cells = [f"{row[p][head.get(p, 'HR@1')]:.4f}" for p in protocols]
        md.append(f"| {w} | " + " | ".join(cells) + " |")
    (RESULTS / f"{a.name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return out


if __name__ == "__main__":
    main()
