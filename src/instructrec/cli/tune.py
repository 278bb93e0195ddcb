"""`instructrec tune`: instruction-tune a backbone (LoRA) on a TSV/Alpaca file, offline.

instructrec tune --data train.json --out runs/x                    # SmolLM2-135M-Instruct
instructrec tune --data train.json --valid-data valid.json --test-data test.json --out runs/x
instructrec tune --data pairs.tsv --backbone all-minilm-l6-v2 --valid-fraction 0 --out runs/m
"""

from __future__ import annotations

import click


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
    help="validation file (default: a seeded share of --data, see --valid-fraction)",
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
@click.option(
    "--kind",
    type=click.Choice(["auto", "seq2seq", "causal", "encoder"]),
    default=None,
    help="backbone kind (default: auto-detected)",
)
@click.option(
    "--task",
    type=click.Choice(["auto", "closed", "open"]),
    default=None,
    help="closed: answers from the training set's answers (Yes/No, labels); open: generated",
)
@click.option("--max-length", type=int, default=None, help="prompt tokens (default: the data's)")
@click.option("--seed", type=int, default=None, help="seed of weights, data order and split")
@click.option("--lora-r", type=int, default=None, help="LoRA rank (0: freeze; default 8)")
@click.option("--full", is_flag=True, help="full fine-tuning instead of LoRA")
@click.option("--epochs", type=int, default=None, help="passes over the training rows")
@click.option("--max-steps", type=int, default=None, help="stop after N optimizer steps")
@click.option("--batch-size", type=int, default=None, help="examples per batch")
@click.option("--lr", type=float, default=None, help="peak learning rate")
@click.option(
    "--valid-fraction",
    type=float,
    default=None,
    help="share of --data held out when no --valid-data (0.1; 0: none, fixed epochs)",
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None)
@click.option("--mixed-precision", type=click.Choice(["no", "bf16", "fp16"]), default=None)
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
    help="YAML TuneConfig (backbone, kind, lora:, train:); options override it",
)
@click.option("--overwrite", is_flag=True, help="replace the run already in --out")
@click.option("--resume", is_flag=True, help="continue the run already in --out")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def tune(
    data,
    valid_data,
    test_data,
    backbone,
    kind,
    task,
    max_length,
    seed,
    lora_r,
    full,
    epochs,
    max_steps,
    batch_size,
    lr,
    valid_fraction,
    device,
    mixed_precision,
    out,
    config_path,
    overwrite,
    resume,
    no_progress,
) -> None:
    """Fine-tune a backbone on instruction/answer pairs; report validation (and test) metrics."""
    from instructrec.models.lora import LoraSettings
    from instructrec.training.config import TrainConfig
    from instructrec.training.tune import TuneConfig
    from instructrec.training.tune import tune as run_tune

    cfg = (
        TuneConfig.from_yaml(config_path)
        if config_path
        else TuneConfig(train=TrainConfig(output_dir="runs/tune"))
    )
    t = cfg.train
    for name, value in [
        ("epochs", epochs),
        ("max_steps", max_steps),
        ("batch_size", batch_size),
        ("lr", lr),
        ("device", device),
        ("mixed_precision", mixed_precision),
        ("output_dir", out),
        ("seed", seed),
    ]:
        if value is not None:
            setattr(t, name, value)
    if no_progress:
        t.progress = False
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    cfg.train = TrainConfig.from_dict(t.to_dict())  # re-validate the overridden values
    if kind is not None:
        cfg.kind = kind
    if task is not None:
        cfg.task = task
    if max_length is not None:
        cfg.max_length = max_length
    if valid_fraction is not None:
        cfg.valid_fraction = valid_fraction
    if full:
        cfg.lora = None
    elif lora_r is not None:
        cfg.lora = LoraSettings(**{**(cfg.lora.to_dict() if cfg.lora else {}), "r": lora_r})
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
