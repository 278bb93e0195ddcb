"""How far titles alone go on the `cold` protocol: frozen MiniLM title vectors, no training.

Every model with interaction-based scores ranks a cold target (an item with no training
interactions) at or near the bottom of its 10 candidates, and the reranker stacks those scores
(HR@1 0 on Amazon Games). This measures what the text channel could bring there: each candidate
is scored by the cosine between its title vector and the user's last ``--history`` training
titles (their mean, or the best single match), with the frozen shipped encoder (mean pooling,
unit length). VALIDATION stage only; it chooses nothing on test.

    python benchmarks/bench_cold_text.py --data ../shared/data/amazon-games --split runs/games/split

Writes benchmarks/results/NAME.{json,md} (default NAME: cold_text_<dataset>_valid).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def title_vectors(titles: list[str], batch: int = 256) -> np.ndarray:
    """Unit-length mean-pooled vectors of the shipped encoder (frozen)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from instructrec.models.bert_files import default_backbone

    path = default_backbone()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    out = np.zeros((len(titles), model.config.hidden_size), np.float32)
    with torch.inference_mode():
        for s in range(0, len(titles), batch):
            enc = tok(titles[s : s + batch], padding=True, truncation=True, max_length=48,
                      return_tensors="pt")  # fmt: skip
            h = model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).float()
            v = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            out[s : s + len(v)] = torch.nn.functional.normalize(v, dim=-1).numpy()
    return out


def ranks_of_target(scores: np.ndarray) -> np.ndarray:
    """0-based rank of column 0 (the target) in each row; ties count against it."""
    return (scores[:, 1:] >= scores[:, :1]).sum(1)


def metrics(rank: np.ndarray) -> dict[str, float]:
    ndcg5 = np.where(rank < 5, 1.0 / np.log2(rank + 2.0), 0.0)
    return {"HR@1": float((rank == 0).mean()), "NDCG@5": float(ndcg5.mean()), "rows": len(rank)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", required=True, help="a run's split folder (with cand10.valid)")
    ap.add_argument("--history", type=int, default=10, help="last N training titles")
    ap.add_argument("--name", default=None)
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from instructrec.data import load_split
    from instructrec.data.spec import load_data_spec
    from instructrec.rerank.instances import user_sequences

    t0 = time.perf_counter()
    ds = load_data_spec(args.data)
    split = load_split(args.split, ds)
    cands = split.candidates["cand10"]["valid"]
    users = split.valid["user"].to_numpy(np.int64)
    if not (cands[:, 0] == split.valid["item"].to_numpy()).all():
        raise SystemExit("cand10.valid: column 0 is not the validation target")
    titles = ds.items["title"].fillna("").astype(str).tolist()
    vec = title_vectors(titles)
    seqs = user_sequences(split.train, ds.n_users)[0]
    mean_s = np.zeros(cands.shape, np.float32)
    max_s = np.zeros(cands.shape, np.float32)
    for r, u in enumerate(users):
        h = seqs[u][-args.history :]
        sims = vec[cands[r]] @ vec[h].T if len(h) else np.zeros((cands.shape[1], 1), np.float32)
        mean_s[r] = sims.mean(1)
        max_s[r] = sims.max(1)
    cold = np.isin(cands[:, 0], split.cold_items)
    cold_cands = np.isin(cands, split.cold_items)
    rows = {}
    for name, s in (("title-mean", mean_s), ("title-max", max_s)):
        rank = ranks_of_target(s)
        rows[name] = {"cold": metrics(rank[cold]), "all": metrics(rank)}
    rng = np.random.default_rng(0)  # chance: a random order of the 10 candidates
    rank = ranks_of_target(rng.random(cands.shape))
    rows["random"] = {"cold": metrics(rank[cold]), "all": metrics(rank)}
    result = {
        "command": "python benchmarks/bench_cold_text.py "
        + " ".join(f"--{k} {v}" for k, v in vars(args).items() if v is not None),
        "stage": "valid",
        "dataset": ds.name,
        "cold_rows": int(cold.sum()),
        "cold_negatives_per_cold_row": float(cold_cands[cold, 1:].sum(1).mean()),
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }
    name = args.name or f"cold_text_{ds.name}_valid"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
    md = [
        f"# Titles alone on cold targets ({ds.name}, VALIDATION)",
        "",
        f"`{result['command']}`; frozen shipped encoder, no training; {result['seconds']} s on "
        f"{result['machine']['platform']} ({result['machine']['cpus']} CPUs). Cold rows: "
        f"{result['cold_rows']} (cand10 rows whose target has no training interaction; "
        f"{result['cold_negatives_per_cold_row']:.2f} cold negatives per row on average).",
        "",
        "| scorer | cold HR@1 | cold NDCG@5 | all rows HR@1 | all rows NDCG@5 |",
        "|---|---|---|---|---|",
    ]
    for k, v in rows.items():
        md.append(f"| {k} | {v['cold']['HR@1']:.4f} | {v['cold']['NDCG@5']:.4f} | "
                  f"{v['all']['HR@1']:.4f} | {v['all']['NDCG@5']:.4f} |")  # fmt: skip
    (RESULTS / f"{name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return result


if __name__ == "__main__":
    main()
