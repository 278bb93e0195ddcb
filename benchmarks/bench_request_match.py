"""How much of a request a frozen text encoder reads, with no training: each candidate scored by
the cosine between the request's frozen MiniLM vector and the candidate's item text (the texts
the reranker and titleknn embed), alone and mixed with SASRec.

A diagnostic for issue 14/15 (session 25): on Amazon Games the trained reranker does worse with
a request in a person's words (`vague-para`) than with no request. If the frozen encoder reads
those requests as well as the generator's, the signal is there and the trained tower loses it.

    python benchmarks/bench_request_match.py --run runs/games_tk3/seed-0 \
        --data ../shared/data/amazon-games --name request_match_games_valid

Validation rows only (development). Per protocol: HR@1 of the frozen cosine alone, of SASRec
alone, and of SASRec z-score + a x cosine z-score with ``a`` chosen by 2-fold cross-fitting
(the grid below, picked on one half of the rows, scored on the other). `vague` is scored on
the rows `vague-para` keeps, so the two wordings are compared on the same rows and
candidates. Writes benchmarks/results/NAME.{json,md} with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
PROTOCOLS = ("vague", "vague-para", "search", "search-para")


def zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-9)


def hr1(scores: np.ndarray, target_col: np.ndarray) -> np.ndarray:
    """Per row: 1 when the target has the strictly highest score (ties count as misses)."""
    t = scores[np.arange(len(scores)), target_col]
    return ((scores >= t[:, None]).sum(1) == 1).astype(float)


def cross_fit(base: np.ndarray, text: np.ndarray, target_col: np.ndarray, seed: int = 0):
    """Per-row HR@1 of base + a * text, ``a`` chosen on the other half of the rows."""
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(base)) % 2
    out, chosen = np.zeros(len(base)), []
    for f in (0, 1):
        fit, use = fold != f, fold == f
        best = max(GRID, key=lambda a: hr1(base[fit] + a * text[fit], target_col[fit]).mean())
        chosen.append(best)
        out[use] = hr1(base[use] + best * text[use], target_col[use])
    return out, chosen


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="one seed's run folder (model/ and split/)")
    ap.add_argument("--data", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--backbone",
        default=None,
        help="encoder: registry key or local directory (default: the shipped MiniLM)",
    )
    ap.add_argument(
        "--prefixes",
        default="",
        help="QUERY|DOCUMENT text prefixes the encoder was trained with, e.g. "
        "'search_query: |search_document: ' for nomic-embed-text-v1.5",
    )
    a = ap.parse_args(argv)
    import torch

    from instructrec.data import load_split
    from instructrec.data.spec import load_data_spec
    from instructrec.evaluation.hard_negatives import protocol_candidates
    from instructrec.evaluation.intentions import protocol_intentions
    from instructrec.evaluation.manifest import machine
    from instructrec.evaluation.protocols import get_protocol, select_rows, stage_rows
    from instructrec.models.text_encoder import encode_texts, load_encoder
    from instructrec.recommender import Recommender
    from instructrec.rerank.rerank_features import item_texts

    torch.set_num_threads(a.threads)
    t0 = time.time()
    run = Path(a.run)
    ds = load_data_spec(a.data)
    split = load_split(run / "split", ds)
    rec = Recommender.load(run / "model")
    q_pre, d_pre = (a.prefixes.split("|") + [""])[:2] if a.prefixes else ("", "")
    tok, enc = load_encoder(a.backbone)
    item_vecs = encode_texts(tok, enc, [d_pre + t for t in item_texts(ds)])  # every item once
    out = {
        "run": str(run),
        "data": a.data,
        "backbone": a.backbone or "all-minilm-l6-v2",
        "prefixes": a.prefixes,
        "stage": "valid",
        "grid": list(GRID),
        "protocols": {},
    }
    for name in PROTOCOLS:
        proto = get_protocol(name)
        keep_as = get_protocol(name + "-para" if not name.endswith("-para") else name)
        rows = select_rows(keep_as, split, stage_rows(split, "valid"), ds)
        cands = protocol_candidates(proto, ds, split, {}, rows, 0, [])
        made = split.notes.get(proto.candidates, {}).get("valid", {})
        seed = int(made.get("intention_seed", 0))
        requests, _, _ = protocol_intentions(proto, ds, rows.targets, seed)
        q = encode_texts(tok, enc, [q_pre + str(t) for t in requests])
        cos = np.einsum("nkd,nd->nk", item_vecs[cands], q)
        sas = rec.retriever.score(rows.users, cands, rows.histories)
        col = (cands == rows.targets[:, None]).argmax(1)
        mixed, chosen = cross_fit(zscore(sas), zscore(cos), col)
        res = {
            "rows": int(len(rows.users)),
            "cosine_alone": float(hr1(cos, col).mean()),
            "sasrec": float(hr1(sas, col).mean()),
            "sasrec_plus_cosine": float(mixed.mean()),
            "weight_chosen_per_fold": chosen,
        }
        out["protocols"][name] = res
        print(name, res, flush=True)
    out["seconds"] = round(time.time() - t0, 1)
    out["machine"] = machine("torch", "transformers", device="cpu")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{a.name}.json").write_text(json.dumps(out, indent=1) + "\n")
    m = out["machine"]
    opts = (f" --backbone {a.backbone}" if a.backbone else "") + (
        f" --prefixes '{a.prefixes}'" if a.prefixes else ""
    )
    lines = [
        f"# {a.name}: a frozen encoder's reading of the request (validation)",
        "",
        f"`python benchmarks/bench_request_match.py --run {a.run} --data {a.data} --name "
        f"{a.name}{opts}`; {out['seconds']:.0f} s on {m['platform']}, {m['cpu_count']} CPUs, "
        f"torch {m['torch']}.",
        "",
        f"Frozen {out['backbone']} (no LoRA, no training"
        + (f"; texts prefixed {a.prefixes!r}" if a.prefixes else "")
        + "): HR@1 of ranking the 10 candidates by the cosine "
        "of the request with each item text; SASRec alone; SASRec z-score + a x cosine z-score "
        "(a from the grid, chosen on the other half of the rows). `vague` is scored on the rows "
        "`vague-para` keeps (the same rows and candidates), `search` on those `search-para` "
        "keeps.",
        "",
        "| protocol | rows | cosine alone | SASRec | SASRec + a x cosine | a (per fold) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in out["protocols"].items():
        lines.append(
            f"| {name} | {r['rows']} | {r['cosine_alone']:.4f} | {r['sasrec']:.4f} | "
            f"{r['sasrec_plus_cosine']:.4f} | {' / '.join(map(str, r['weight_chosen_per_fold']))} |"
        )
    (RESULTS / f"{a.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return out


if __name__ == "__main__":
    main()
