"""What the linear head's text term ranks alone (docs/reranker.md, "New items"): inference
only, validation stage, on a trained run's seeds. The head scores
``s_i = w . prior_i + <W q, v_i> + <U mean(h), v_i>``; the text term is s minus the prior
part. Per protocol it reports HR@1 of the full score, of the prior part, of the text term as
trained, and of the text term with the head's two matrices replaced: W alone (U = 0), U alone
(W = 0), W = (mean diagonal) x I with U = 0 (the query vector's plain similarity), and
W = 0, U = I (the mean history vector's plain similarity: no training at all). On
``cold-only`` every candidate is new: the text is all there is to rank by.

    python benchmarks/bench_text_part.py --run runs/games_tk3 --seeds 0,1,2 \
        --protocols cold-only,cand10 --name text_part_games_valid

Writes benchmarks/results/NAME.{json,md}. Validation only (development).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ("trained", "W only", "U only", "W=I, U=0", "W=0, U=I")


def _hr1(s: np.ndarray) -> float:
    return float(((s[:, 1:] >= s[:, :1]).sum(1) == 0).mean())


def text_parts(rec, split, protocol: str, max_rows: int) -> dict:
    """HR@1 of the score, its prior part and the text-term variants on ``protocol``'s
    validation rows (the first ``max_rows``)."""
    import torch

    from instructrec.evaluation.hard_negatives import protocol_candidates
    from instructrec.evaluation.protocols import get_protocol, select_rows, stage_rows

    rr, ds = rec.reranker, rec.dataset
    head = rr.scorer.model.head
    if not hasattr(head, "text_scores"):
        raise SystemExit("the run's head has no separate text term (the linear head has)")
    proto = get_protocol(protocol)
    rows = select_rows(proto, split, stage_rows(split, "valid"))
    if len(rows.users) > max_rows:
        rows = rows.take(np.arange(len(rows.users)) < max_rows)
    cands = protocol_candidates(proto, ds, split, {}, rows, 0, [])
    prior = rec.prior_scores(rows.users, cands, rows.histories)
    z = np.asarray(rr.prior_features(cands, None, prior), np.float64)
    w = head.prior_w.detach().cpu().numpy().astype(np.float64)
    part = z @ w
    if getattr(head, "cold_content", None):
        from instructrec.models.encoder_config import cold_content_features

        cw = head.cold_w.detach().cpu().numpy().astype(np.float64)
        part = part + cold_content_features(z, head.cold_content) @ cw
    W0, U0 = head.q_proj.weight.detach().clone(), head.h_proj.weight.detach().clone()
    eye = torch.eye(W0.shape[0], dtype=W0.dtype)
    mats = {
        "trained": (W0, U0),
        "W only": (W0, U0 * 0),
        "U only": (W0 * 0, U0),
        "W=I, U=0": (eye * W0.diagonal().mean(), U0 * 0),
        "W=0, U=I": (W0 * 0, eye),
    }
    out = {"rows": len(rows.users), "prior part": _hr1(part)}
    try:
        for name, (Wm, Um) in mats.items():
            with torch.no_grad():
                head.q_proj.weight.copy_(Wm)
                head.h_proj.weight.copy_(Um)
            total = np.asarray(rec.score_candidates(rows.users, cands, rows.histories), np.float64)
            if name == "trained":
                out["score"] = _hr1(total)
            out[f"text: {name}"] = _hr1(total - part)
    finally:
        with torch.no_grad():
            head.q_proj.weight.copy_(W0)
            head.h_proj.weight.copy_(U0)
    names = list(rr.prior_names)
    if "titleknn" in names:
        out["titleknn channel"] = _hr1(z[..., names.index("titleknn")])
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--protocols", default="cold-only,cand10")
    ap.add_argument("--max-rows", type=int, default=1500)
    ap.add_argument("--name", required=True)
    ap.add_argument("--note", default="")
    a = ap.parse_args(argv)
    from instructrec.data import load_split
    from instructrec.evaluation.manifest import git_commit, machine
    from instructrec.runs import load_seed_models, run_split_dir

    t0 = time.perf_counter()
    models = load_seed_models(a.run)
    seeds = [int(s) for s in a.seeds.split(",")]
    protocols = a.protocols.split(",")
    by: dict = {}
    for seed in seeds:
        rec = models[seed]
        split = load_split(run_split_dir(a.run), rec.dataset)
        by[str(seed)] = {p: text_parts(rec, split, p, a.max_rows) for p in protocols}
        head = rec.reranker.scorer.model.head
        W, U = head.q_proj.weight.detach(), head.h_proj.weight.detach()
        off = W - W.diagonal().diag()
        by[str(seed)]["head"] = {
            "W diagonal mean": float(W.diagonal().mean()),
            "W off-diagonal rms": float(off.pow(2).mean().sqrt()),
            "U Frobenius": float(U.norm()),
            "I Frobenius": float(W.shape[0] ** 0.5),
        }
    out = {
        "machine": machine("torch", "numpy"),
        "seconds": time.perf_counter() - t0,
        "commit": git_commit(),
        "run": a.run,
        "note": a.note,
        "by_seed": by,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{a.name}.json").write_text(json.dumps(out, indent=2))
    keys = ["score", "prior part", *[f"text: {v}" for v in VARIANTS], "titleknn channel"]
    md = [
        f"# The linear head's text term alone (validation; run {a.run})",
        "",
        f"Machine {json.dumps(out['machine'])}; code at {out['commit']}; "
        f"{out['seconds']:.0f} s. HR@1, mean over seeds {seeds} (per seed in the JSON). "
        f"{a.note}",
        "",
        "| protocol | rows | " + " | ".join(keys) + " |",
        "|---|---|" + "---|" * len(keys),
    ]
    for p in protocols:
        vals = [f"{np.mean([by[str(s)][p].get(k, np.nan) for s in seeds]):.4f}" for k in keys]
        md.append(f"| {p} | {by[str(seeds[0])][p]['rows']} | " + " | ".join(vals) + " |")
    md += ["", "The head's matrices per seed: " + "; ".join(
        f"seed {s}: " + ", ".join(f"{k} {v:.3f}" for k, v in by[str(s)]["head"].items())
        for s in seeds
    )]  # fmt: skip
    (RESULTS / f"{a.name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return out


if __name__ == "__main__":
    main()
