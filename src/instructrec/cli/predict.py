"""`instructrec predict`: answer an instruction file with a tuned model (`instructrec tune`).

instructrec predict --model runs/x --data test.json --out preds.jsonl

Writes one JSON object per example (``answer``; ``probs``: each allowed answer's probability
for closed-answer tasks; ``label`` and ``correct`` when the file has answers) and, when it has
answers, prints the metrics (accuracy, AUC for two-answer tasks, exact match, with 95% bootstrap
CIs) and writes them to ``<out>.metrics.json``. Files are written under a temporary name and
renamed when complete.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


def format_metrics(m: dict) -> str:
    """One line: each metric with its CI."""
    parts = []
    for name in ("accuracy", "auc", "exact_match", "loss"):
        if name not in m or (name == "exact_match" and "accuracy" in m):
            continue
        ci = m.get(f"{name}_ci")
        text = f"{name} {m[name]:.4f}"
        if ci:
            text += f" [{ci[0]:.4f}, {ci[1]:.4f}]"
        parts.append(text)
    return "  ".join(parts) + f"  (n={m.get('n', '?')})"


@click.command()
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="run directory of `instructrec tune` (or its model/)",
)
@click.option(
    "--data",
    required=True,
    type=click.Path(dir_okay=False),
    help="instruction file (.json Alpaca, .jsonl, .tsv); answers optional",
)
@click.option(
    "--out",
    default=None,
    type=click.Path(dir_okay=False),
    help="predictions .jsonl (default: <data name>.preds.jsonl next to the model)",
)
@click.option("--max-new-tokens", type=int, default=None, help="generated tokens (open tasks)")
@click.option("--seed", type=int, default=0, help="seed of the bootstrap CIs")
def predict(model_dir, data, out, max_new_tokens, seed) -> None:
    """Predict answers for DATA with a tuned MODEL; score them when DATA has answers."""
    import warnings

    from instructrec.training.tuned import (
        TunedModel,
        as_instruction_data,
        metrics,
        write_jsonl,
    )

    model = TunedModel.load(model_dir)
    records = as_instruction_data(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        preds = model.predict(records, max_new_tokens=max_new_tokens)
    for w in caught:
        if "cut from their middle" in str(w.message):
            click.echo(f"warning: {w.message}", err=True)
    out = Path(out) if out else Path(model_dir) / f"{Path(data).stem}.preds.jsonl"
    write_jsonl(out, preds)
    click.echo(f"{len(preds)} predictions written to {out}")
    if records.has_outputs:
        m = metrics(model.spec, preds, records.outputs, seed)
        tmp = out.with_name(f".{out.stem}.metrics.json.tmp")
        tmp.write_text(json.dumps(m, indent=1))
        tmp.replace(out.with_name(f"{out.stem}.metrics.json"))
        click.echo(format_metrics(m))
