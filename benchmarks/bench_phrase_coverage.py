"""Does the phrase table's vocabulary coverage of a request separate its right reads from its
wrong ones? (`instructions.phrases.PhraseTable.coverage`, the gate of
``reranker.intent_phrases_coverage``; docs/reranker.md.)

For the VALIDATION rows of the intention protocols of a run's split: the share of rows the
parser reads, the share the ungated table reads, and, on rows the parser does not read (where
the reranker's channel consults the table), how often the target has every value the table
reads, by coverage band (the share of the request's words that occur in the training
intentions the table was learned from).

    python benchmarks/bench_phrase_coverage.py --config configs/quickstart.yaml --split RUN/split

Writes benchmarks/results/phrase_coverage.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BANDS = ((0.0, 0.5), (0.5, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.0), (1.0, 1.0))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--split", required=True, help="a run's split folder")
    ap.add_argument("--stage", default="valid")
    ap.add_argument("--seed", type=int, default=0, help="intentions and table seed")
    ap.add_argument("--protocols", default="vague,vague-para,search,search-para")
    args = ap.parse_args(argv)

    from instructrec.config import RunConfig
    from instructrec.data import load_split
    from instructrec.data.spec import load_data_spec
    from instructrec.evaluation.intentions import protocol_intentions
    from instructrec.evaluation.manifest import git_state, machine
    from instructrec.evaluation.protocols import get_protocol, select_rows, stage_rows
    from instructrec.instructions.parse import parse_intention
    from instructrec.instructions.phrases import PhraseTable

    cfg = RunConfig.from_yaml(args.config)
    ds = load_data_spec(cfg.data.source)
    split = load_split(args.split, ds)
    table = PhraseTable.from_training(ds, split, seed=args.seed)  # ungated: read everything
    values = table.values(ds)
    out: dict = {"vocabulary": len(table.vocab), "grams": len(table.table), "protocols": {}}
    for name in args.protocols.split(","):
        proto = get_protocol(name)
        rows = select_rows(proto, split, stage_rows(split, args.stage))
        texts, _, _ = protocol_intentions(proto, ds, rows.targets, args.seed)
        cov, read, right, parsed = [], [], [], []
        for t, target in zip(texts, rows.targets, strict=True):
            cov.append(table.coverage(t) if t else 0.0)
            want, _ = table.read(t)
            read.append(bool(want))
            right.append(bool(want) and all(values[target, v] for v in want))
            parsed.append(bool(t) and bool(parse_intention(ds, t)))
        cov, read, right, parsed = map(np.asarray, (cov, read, right, parsed))
        table_rows = read & ~parsed  # where the reranker's channel consults the table
        bands = []
        for lo, hi in BANDS:
            m = (cov == 1.0) if lo == hi else (cov >= lo) & (cov < hi)
            r = m & table_rows
            bands.append(
                {
                    "coverage": f"{lo:.1f}" if lo == hi else f"[{lo:.1f}, {hi:.1f})",
                    "rows": int(m.sum()),
                    "table_rows": int(r.sum()),
                    "target_has_all": float(right[r].mean()) if r.any() else None,
                }
            )
        out["protocols"][name] = {
            "rows": len(texts),
            "parser_reads": float(parsed.mean()),
            "table_reads": float(read.mean()),
            "table_rows": int(table_rows.sum()),
            "target_has_all_on_table_rows": float(right[table_rows].mean())
            if table_rows.any()
            else None,
            "coverage_1": float((cov == 1.0).mean()),
            "bands": bands,
        }
    out.update(
        command=" ".join([Path(sys.executable).name, *sys.argv]),
        machine=machine(),
        git=git_state(),
        stage=args.stage,
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "phrase_coverage.json").write_text(json.dumps(out, indent=1, default=str))
    md = [
        "# The phrase table's coverage of a request vs whether its reading is right",
        "",
        f"`{out['command']}`; stage {args.stage}; git {out['git']}; machine {out['machine']}.",
        f"Table learned from training intentions: {out['grams']} grams, a vocabulary of "
        f"{out['vocabulary']} words. 'table rows': rows the parser reads nothing from and the "
        "ungated table reads something (where the reranker's channel consults the table); "
        "'right': the target has every value the table reads.",
        "",
        "| protocol | rows | parser reads | table reads | coverage 1.0 | table rows | right |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, p in out["protocols"].items():
        r = p["target_has_all_on_table_rows"]
        md.append(
            f"| {name} | {p['rows']} | {p['parser_reads']:.3f} | {p['table_reads']:.3f} | "
            f"{p['coverage_1']:.3f} | {p['table_rows']} | {'' if r is None else f'{r:.3f}'} |"
        )
    md += ["", "By coverage band (table rows only):", ""]
    md += ["| protocol | coverage | rows | table rows | right |", "|---|---|---|---|---|"]
    for name, p in out["protocols"].items():
        for b in p["bands"]:
            if b["rows"]:
                r = b["target_has_all"]
                md.append(
                    f"| {name} | {b['coverage']} | {b['rows']} | {b['table_rows']} | "
                    f"{'' if r is None else f'{r:.3f}'} |"
                )
    (RESULTS / "phrase_coverage.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return out


if __name__ == "__main__":
    main()
