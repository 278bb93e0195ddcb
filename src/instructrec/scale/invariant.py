"""Loss-trajectory probe: the invariants data-parallel training must keep.

In the style of TRL's ``tests/invariant``: a run is summarised by its per-step training loss
(and its final trainable weights), and runs that should be the same optimisation must give
the same trajectory:

- data parallelism: 2 processes x batch 8 == 1 process x batch 16 (DDP averages gradients;
  `instructrec.training.schedule.epoch_batches` deals batch i to process i mod world, so step 1
  of the 2-process run sees exactly the first 16 examples of the 1-process run);
- gradient accumulation: batch 1 x 8 micro-batches == batch 8 x 1.

The probe trains a small BERT (from a config, no dropout, random weights, so nothing is
downloaded) with LoRA adapters on its attention and a linear head, through the real engine
(`instructrec.training.loop.fit`), on synthetic variable-length token sequences (so padding
and attention masks are part of what must agree). ``--model minilm`` uses the shape of
all-MiniLM-L6-v2 (6 layers, d=384) for throughput measurements.

    python -m instructrec.scale.invariant --batch-size 16 --out one.json
    accelerate launch --multi_gpu --num_processes 2 -m instructrec.scale.invariant \
        --batch-size 8 --out two.json              # on CPU this is DDP over gloo
    torchrun --nproc_per_node 2 -m instructrec.scale.invariant --batch-size 8 --out two.json

Rank 0 writes ``--out``: {"world", "batch_size", "grad_accum", "losses" (one per optimizer
step: mean over processes and micro-batches), "params" (final trainable weights, flattened,
tiny model only), "examples_per_s", ...}. Compare two files with `compare_trajectories`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

# model shapes: (layers, hidden, heads, intermediate, vocab)
SHAPES = {
    "tiny": (2, 32, 2, 64, 128),
    "minilm": (6, 384, 12, 1536, 30522),  # all-MiniLM-L6-v2
}


@dataclass
class ProbeConfig:
    """One probe run (every field is also a command-line flag)."""

    model: str = "tiny"  # "tiny" (2 layers, d=32) | "minilm" (6 layers, d=384, random weights)
    batch_size: int = 16  # micro-batch per process
    grad_accum: int = 1  # micro-batches per optimizer step
    steps: int = 6  # optimizer steps to run
    n_examples: int = 512  # synthetic training examples
    min_len: int = 4  # shortest token sequence
    max_len: int = 16  # longest token sequence (variable lengths exercise padding)
    n_classes: int = 4  # classes of the synthetic task
    lora_r: int = 4  # LoRA rank on query/value
    lr: float = 1e-3  # peak learning rate
    max_grad_norm: float = 1.0  # clipping threshold (the global norm after DDP averaging)
    seed: int = 0  # model init and data order
    device: str = "auto"  # TrainConfig.device
    mixed_precision: str = "no"  # TrainConfig.mixed_precision
    save_params: bool = True  # put the final trainable weights in the JSON (tiny model)


class ProbeModel(nn.Module):
    """BERT (+ LoRA on query/value) -> masked mean pool -> linear classifier."""

    def __init__(self, config: ProbeConfig) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        from instructrec.models.lora import LoraSettings, apply_lora

        layers, hidden, heads, inter, vocab = SHAPES[config.model]
        bert = BertModel(
            BertConfig(
                vocab_size=vocab,
                hidden_size=hidden,
                num_hidden_layers=layers,
                num_attention_heads=heads,
                intermediate_size=inter,
                max_position_embeddings=max(64, config.max_len),
                hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0,
            ),
            add_pooling_layer=False,
        )
        lora = LoraSettings(
            r=config.lora_r, alpha=2 * config.lora_r, dropout=0.0, target_modules=["query", "value"]
        )
        self.tower = apply_lora(bert, lora)
        self.head = nn.Linear(hidden, config.n_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.tower(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        return self.head((h * m).sum(1) / m.sum(1).clamp_min(1.0))


def synthetic_examples(config: ProbeConfig) -> list[tuple[np.ndarray, int]]:
    """Variable-length token sequences; the label is a function of the tokens (learnable)."""
    rng = np.random.default_rng(config.seed + 1)
    vocab = SHAPES[config.model][4]
    out = []
    for _ in range(config.n_examples):
        n = int(rng.integers(config.min_len, config.max_len + 1))
        ids = rng.integers(1, vocab, size=n)
        out.append((ids, int(ids[0] % config.n_classes)))
    return out


def collate(rows: list[tuple[np.ndarray, int]]) -> dict[str, torch.Tensor]:
    """Right-pad to the longest sequence in the micro-batch."""
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, (ids, _) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.as_tensor(ids)
        mask[i, : len(ids)] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": mask,
        "label": torch.tensor([y for _, y in rows]),
    }


class LossRecorder:
    """The engine's ``loss_fn``: cross-entropy, remembering each micro-batch's loss."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = model(batch["input_ids"], batch["attention_mask"])
        loss = nn.functional.cross_entropy(logits.float(), batch["label"])
        self.losses.append(float(loss.detach()))
        return loss


def _gather(obj: Any) -> list[Any]:
    """``obj`` from every process (rank order); just ``[obj]`` outside torch.distributed."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def run_probe(config: ProbeConfig, output_dir: str | Path | None = None) -> dict[str, Any]:
    """Train the probe with `instructrec.training.loop.fit`; return the summary (all ranks).

    With several processes, ``output_dir`` must be the same directory for all of them."""
    from instructrec.training.config import TrainConfig
    from instructrec.training.loop import fit

    torch.manual_seed(config.seed)
    model = ProbeModel(config)
    data = synthetic_examples(config)
    recorder = LossRecorder()
    out_dir = output_dir or tempfile.mkdtemp(prefix="probe-")
    train_config = TrainConfig(
        output_dir=str(out_dir),
        lr=config.lr,
        batch_size=config.batch_size,
        grad_accum=config.grad_accum,
        max_steps=config.steps,
        warmup_ratio=0.0,
        max_grad_norm=config.max_grad_norm,
        eval_every=10**9,
        patience=0,
        seed=config.seed,
        mixed_precision=config.mixed_precision,
        device=config.device,
        log_every=10**9,
        resume=False,
        progress=False,
        save_total_limit=1,
    )
    result = fit(model, data, collate, recorder, train_config)
    per_rank = _gather(recorder.losses)
    world = len(per_rank)
    ga = config.grad_accum
    losses = [
        float(np.mean([r[s * ga : (s + 1) * ga] for r in per_rank])) for s in range(result.steps)
    ]
    summary: dict[str, Any] = {
        "world": world,
        "env_world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "batch_size": config.batch_size,
        "grad_accum": config.grad_accum,
        "effective_batch": config.batch_size * ga * world,
        "steps": result.steps,
        "losses": losses,
        "examples_per_s": result.examples_per_s,
        "train_wall_s": result.wall_time,
        "device": str(next(model.parameters()).device),
        "mixed_precision": config.mixed_precision,
        "config": asdict(config),
    }
    if config.save_params:
        flat = [p.detach().float().cpu().reshape(-1) for p in model.parameters() if p.requires_grad]
        summary["params"] = torch.cat(flat).tolist()
    return summary


def compare_trajectories(
    a: dict[str, Any], b: dict[str, Any], rtol: float = 1e-4, atol: float = 1e-5
) -> dict[str, float]:
    """Largest absolute loss (and weight) difference between two probe summaries; raises
    AssertionError naming the first step that differs beyond ``atol + rtol * |loss|``."""
    la, lb = np.asarray(a["losses"]), np.asarray(b["losses"])
    if la.shape != lb.shape:
        raise AssertionError(f"different number of steps: {la.shape[0]} vs {lb.shape[0]}")
    bad = np.flatnonzero(~np.isclose(la, lb, rtol=rtol, atol=atol))
    if bad.size:
        s = int(bad[0])
        raise AssertionError(f"loss differs at step {s + 1}: {la[s]:.8f} vs {lb[s]:.8f}")
    out = {"max_abs_loss_diff": float(np.max(np.abs(la - lb))) if la.size else 0.0}
    if "params" in a and "params" in b:
        pa, pb = np.asarray(a["params"]), np.asarray(b["params"])
        out["max_abs_param_diff"] = float(np.max(np.abs(pa - pb)))
        if not np.allclose(pa, pb, rtol=rtol, atol=atol):
            raise AssertionError(f"final weights differ by up to {out['max_abs_param_diff']:.2e}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, default in asdict(ProbeConfig()).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(
                flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=default
            )
        else:
            parser.add_argument(flag, type=type(default), default=default)
    parser.add_argument("--out", required=True, help="JSON summary (written by rank 0)")
    parser.add_argument("--output-dir", default=None, help="run directory (default: a temp dir)")
    args = vars(parser.parse_args(argv))
    out, output_dir = Path(args.pop("out")), args.pop("output_dir")
    output_dir = output_dir or str(out.with_suffix("")) + "-run"  # shared by all processes
    summary = run_probe(ProbeConfig(**args), output_dir)
    if int(os.environ.get("RANK", "0")) == 0:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summary))
        print(json.dumps({k: v for k, v in summary.items() if k not in ("params", "config")}))
    from instructrec.training.distributed import end_distributed

    end_distributed()


if __name__ == "__main__":
    main()
