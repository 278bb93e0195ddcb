"""Paired comparison of two evaluated runs on the same rows (an ablation against the shipped
configuration): per protocol, the mean metric of each and the paired bootstrap CI of the
difference over users, read from each run's ``per_user.csv`` (written by `instructrec evaluate`).

    python benchmarks/compare_runs.py --base B0 B1 B2 --variant V0 V1 V2 \
        --model instructrec --name ablation_no_intent

Every folder holds one sub-folder per protocol (``cand10/per_user.csv`` ...). With several
seeds, base and variant folders pair up by position (seed k against seed k), and the
differences of all seeds' rows are pooled into one bootstrap (resampling rows within each
seed). Writes benchmarks/results/NAME.{json,md}. Development only: use validation-stage
evaluations.

``--pair BASE:VARIANT`` (repeatable) compares protocol BASE of the base folders with protocol
VARIANT of the variant folders instead, on the users both hold: the same model on the same
rows and candidates in two wordings, e.g. ``--pair vague:vague-para`` (the paraphrase
protocols keep a subset of the rows).
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import pandas as pd

HEADLINE = {"full": "NDCG@10", "search-full": "NDCG@10", "search-full-para": "NDCG@10"}
HEADLINE["pointwise"] = "AUC"  # else HR@1


def paired(pairs: list[tuple[np.ndarray, np.ndarray]], n_boot: int = 2000, seed: int = 0) -> dict:
    """Means of base and variant over all pairs' rows and the 95% bootstrap CI of the mean
    difference (variant - base), resampling rows within each pair (seed) and pooling."""
    rng = np.random.default_rng(seed)
    boots = np.zeros(n_boot)
    n = sum(len(a) for a, _ in pairs)
    for a, b in pairs:
        d = b - a
        idx = rng.integers(0, len(d), (n_boot, len(d)))
        boots += d[idx].sum(axis=1)
    boots /= n
    lo, hi = np.quantile(boots, [0.025, 0.975])
    per_seed = [float((b - a).mean()) for a, b in pairs]
    return {
        "base": float(np.concatenate([a for a, _ in pairs]).mean()),
        "variant": float(np.concatenate([b for _, b in pairs]).mean()),
        "diff": float(sum((b - a).sum() for a, b in pairs) / n),
        "ci": [float(lo), float(hi)],
        "per_seed": per_seed,
        "rows": int(n),
    }


def _rows(folder: Path, proto: str, model: str):
    f = pd.read_csv(folder / proto / "per_user.csv")
    metric = HEADLINE.get(proto, "HR@1")
    if metric not in f.columns:
        return None, metric
    return f[f.model == model].set_index(f.columns[0])[metric], metric


def resolve(folder: Path) -> Path:
    """``folder`` itself, or its one ``seed-N`` sub-folder (what `evaluate --model-dir` writes)."""
    seeds = sorted(folder.glob("seed-*"))
    return seeds[0] if len(seeds) == 1 and not any(folder.glob("*/per_user.csv")) else folder


def compare(
    bases: list[Path],
    variants: list[Path],
    model: str,
    n_boot: int,
    pair: list[tuple[str, str]] | None = None,
) -> dict:
    """Per protocol found in every folder (or per ``pair`` of base and variant protocols):
    `paired` over the (base, variant) folder pairs."""
    bases, variants = [resolve(p) for p in bases], [resolve(p) for p in variants]
    if pair:
        todo = [(b, v, f"{b} -> {v}") for b, v in pair]
    else:
        protos = set.intersection(
            *(
                {p.name for p in d.iterdir() if (p / "per_user.csv").is_file()}
                for d in [*bases, *variants]
            )
        )
        todo = [(p, p, p) for p in sorted(protos)]
    out = {}
    for proto, vproto, key in todo:
        pairs, metric = [], None
        for base, variant in zip(bases, variants, strict=True):
            if not (base / proto / "per_user.csv").is_file():
                raise SystemExit(f"compare_runs: no {proto}/per_user.csv in {base}")
            if not (variant / vproto / "per_user.csv").is_file():
                raise SystemExit(f"compare_runs: no {vproto}/per_user.csv in {variant}")
            a, metric = _rows(base, proto, model)
            b, _ = _rows(variant, vproto, model)
            if a is None or b is None:
                break
            both = a.index.intersection(b.index)
            pairs.append((a.loc[both].to_numpy(float), b.loc[both].to_numpy(float)))
        if len(pairs) == len(bases) and all(len(a) for a, _ in pairs):
            out[key] = {"metric": metric} | paired(pairs, n_boot)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, nargs="+", required=True)
    ap.add_argument("--variant", type=Path, nargs="+", required=True)
    ap.add_argument("--model", default="instructrec")
    ap.add_argument("--name", required=True)
    ap.add_argument("--label", default="variant")
    ap.add_argument("--base-label", default="shipped", help="what the base runs are")
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument(
        "--pair",
        action="append",
        default=[],
        metavar="BASE:VARIANT",
        help="compare protocol BASE of the base folders with VARIANT of the variant folders",
    )
    ap.add_argument("--note", default="", help="where and how the runs were trained/evaluated")
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    a = ap.parse_args()
    if len(a.base) != len(a.variant):
        ap.error("--base and --variant need the same number of folders (one per seed)")
    pair = []
    for p in a.pair:
        b, sep, v = p.partition(":")
        if not (sep and b and v):
            ap.error(f"--pair {p!r}: write BASE:VARIANT, e.g. vague:vague-para")
        pair.append((b, v))
    rows = compare(a.base, a.variant, a.model, a.n_boot, pair)
    res = {
        "base": [str(p) for p in a.base],
        "variant": [str(p) for p in a.variant],
        "label": a.label,
        "base_label": a.base_label,
        "model": a.model,
        "note": a.note,
        "compared_on": {"platform": platform.platform(), "python": platform.python_version()},
        "protocols": rows,
    }
    a.results.mkdir(parents=True, exist_ok=True)
    (a.results / f"{a.name}.json").write_text(json.dumps(res, indent=2) + "\n")
    lines = [
        f"# {a.label} vs {a.base_label} ({a.model}; paired over users, {len(a.base)} seed(s) pooled, "
        "95% bootstrap CI)",
        "",
        f"base {', '.join(res['base'])}; variant {', '.join(res['variant'])}.",
        "",
        *([a.note, ""] if a.note else []),
        f"| protocol | metric | {a.base_label} | variant | diff [95% CI] | per seed | rows |",
        "|---|---|---|---|---|---|---|",
    ]
    for p, r in rows.items():
        seeds = " / ".join(f"{x:+.3f}" for x in r["per_seed"])
        lines.append(
            f"| {p} | {r['metric']} | {r['base']:.4f} | {r['variant']:.4f} | "
            f"{r['diff']:+.4f} [{r['ci'][0]:+.4f}, {r['ci'][1]:+.4f}] | {seeds} | {r['rows']} |"
        )
    (a.results / f"{a.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
