"""`instructrec tune`: instruction-tune a seq2seq or causal backbone (LoRA) on a TSV/Alpaca file.

instructrec tune --data pairs.tsv --backbone ./flan-t5-small --epochs 2 --out runs/tune
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
    "--backbone",
    default=None,
    help="local model directory or hub id (seq2seq: Flan-T5...; causal: GPT-2, Llama...)",
)
@click.option(
    "--kind",
    type=click.Choice(["auto", "seq2seq", "causal"]),
    default=None,
    help="backbone kind (default: auto-detected from its config)",
)
@click.option("--lora-r", type=int, default=None, help="LoRA rank (0: freeze; default 8)")
@click.option("--full", is_flag=True, help="full fine-tuning instead of LoRA")
@click.option("--epochs", type=int, default=None, help="passes over the training rows")
@click.option("--max-steps", type=int, default=None, help="stop after N optimizer steps")
@click.option("--batch-size", type=int, default=None, help="examples per batch")
@click.option("--lr", type=float, default=None, help="peak learning rate")
@click.option("--valid-fraction", type=float, default=None, help="share held out (0.1)")
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
@click.option("--no-progress", is_flag=True, help="no progress bar")
def tune(
    data,
    backbone,
    kind,
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
    no_progress,
) -> None:
    """Fine-tune BACKBONE on instruction/answer pairs; report validation loss (and AUC)."""
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
    if valid_fraction is not None:
        cfg.valid_fraction = valid_fraction
    if full:
        cfg.lora = None
    elif lora_r is not None:
        cfg.lora = LoraSettings(**{**(cfg.lora.to_dict() if cfg.lora else {}), "r": lora_r})
    res = run_tune(data, backbone, cfg)
    click.echo(
        f"train rows: {res.n_train}  valid rows: {res.n_valid}  steps: {res.train.steps}"
        f"  ({res.train.examples_per_s:.1f} examples/s)"
    )
    click.echo(f"valid loss: {res.valid_loss:.4f}")
    if res.valid_auc is not None:
        click.echo(f"valid AUC: {res.valid_auc:.4f}")
    click.echo(f"model saved to {res.model_dir}")
    from instructrec.training.loop import end_distributed

    end_distributed()  # a clean exit under accelerate launch / torchrun
