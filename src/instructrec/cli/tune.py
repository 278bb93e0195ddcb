"""`instructrec tune`: instruction-tune a backbone (LoRA) on a TSV/Alpaca file, offline.

instructrec tune --data train.json --out runs/x                    # SmolLM2-135M-Instruct
instructrec tune --data train.json --valid-data valid.json --test-data test.json --out runs/x
instructrec tune --data pairs.tsv --backbone all-minilm-l6-v2 --set valid_fraction=0 --out runs/m
instructrec tune --data train.json --set train.lr=1e-3 --set train.epochs=2 --set lora.r=16
"""

from __future__ import annotations

import click

from .common import retired_option, set_option


@click.command()
@click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(dir_okay=False),
    help="instruction<TAB>answer .tsv, Alpaca .json or .jsonl",
)
@click.option(
    "--valid-data",
    type=click.Path(dir_okay=False),
    default=None,
    help="validation file (default: a seeded share of --data, see --set valid_fraction=...)",
)
@click.option(
    "--test-data",
    type=click.Path(dir_okay=False),
    default=None,
    help="test file, predicted once at the end (test_predictions.jsonl + test metrics)",
)
@click.option(
    "--backbone",
    default=None,
    help="registry key (smollm2-135m-instruct, the default; all-minilm-l6-v2), local model "
    "directory or hub id",
)
@set_option
@retired_option("--kind", "kind")
@retired_option("--task", "task")
@retired_option("--max-length", "max_length")
@retired_option("--seed", "train.seed")
@retired_option("--lora-r", "lora.r")
@retired_option("--full", "lora", "null")
@retired_option("--epochs", "train.epochs")
@retired_option("--max-steps", "train.max_steps")
@retired_option("--batch-size", "train.batch_size")
@retired_option("--lr", "train.lr")
@retired_option("--valid-fraction", "valid_fraction")
@retired_option("--device", "train.device")
@retired_option("--mixed-precision", "train.mixed_precision")
@click.option(
    "--out",
    "out",
    default=None,
    type=click.Path(file_okay=False),
    help="run directory (default runs/tune, or train.output_dir of --config)",
)
@click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="YAML TuneConfig (backbone, kind, task, lora:, train:, ...); --set overrides it",
)
@click.option("--overwrite", is_flag=True, help="replace the run already in --out")
@click.option("--resume", is_flag=True, help="continue the run already in --out")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def tune(
    data, valid_data, test_data, backbone, sets, out, config_path, overwrite, resume, no_progress
) -> None:
    """Fine-tune a backbone on instruction/answer pairs; report validation (and test) metrics.
    Settings: --config FILE (a TuneConfig) and --set KEY=VALUE (e.g. --set train.lr=1e-3
    --set train.epochs=2 --set lora.r=16 --set lora=null for full fine-tuning)."""
    from dataclasses import replace

    from instructrec.training.tune import tune as run_tune
    from instructrec.training.tune_config import TuneConfig

    quiet = ["train.progress=false"] if no_progress else []
    cfg = TuneConfig.from_yaml(config_path, [*sets, *quiet])
    if out is not None:
        cfg = replace(cfg, train=replace(cfg.train, output_dir=str(out)))
    if no_progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        res = run_tune(
            data,
            backbone,
            cfg,
            valid_data=valid_data,
            test_data=test_data,
            overwrite=overwrite,
            resume=resume,
        )
    for w in caught:
        if "lost their middle" in str(w.message) or "middles are cut" in str(w.message):
            click.echo(f"warning: {w.message}", err=True)
    click.echo(
        f"train rows: {res.n_train}  valid rows: {res.n_valid}  steps: {res.train.steps}"
        f"  ({res.train.examples_per_s:.1f} examples/s)"
    )
    click.echo(
        f"task: {res.model.spec.task}"
        + (
            f" (answers: {', '.join(res.model.spec.display.values())})"
            if res.model.spec.answers
            else ""
        )
        + f"  max length: {res.max_length} tokens ({res.truncated} prompts truncated)"
    )
    from instructrec.cli.predict import format_metrics

    if res.valid_metrics:
        click.echo("valid: " + format_metrics(res.valid_metrics))
    if res.test_metrics:
        click.echo("test: " + format_metrics(res.test_metrics))
    click.echo(f"model saved to {res.model_dir}")
    from instructrec.training.distributed import end_distributed

    end_distributed()  # a clean exit under accelerate launch / torchrun
