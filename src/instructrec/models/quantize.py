"""int8 dynamic quantisation of a reranker's query tower, for CPU inference (issue 20).

The tower's LoRA adapters are merged into their base weights, then every ``nn.Linear`` is
replaced by PyTorch's dynamically quantised int8 Linear (weights int8, activations quantised
per batch at run time). Measured on the shipped model (`benchmarks/bench_inference.py`,
benchmarks/results/inference.md): the tower 1.6x faster on the 2-core CPU box, validation
cand10 unchanged within noise. Inference only: a quantised tower cannot be trained (feedback
tuning) or hashed into a run manifest, so it is a serving option (``serve --int8``), never
saved.
"""

from __future__ import annotations

from typing import Any


def quantize_query_tower(reranker: Any) -> bool:
    """Quantise ``reranker.scorer.model.tower`` in place; False when it has no such tower."""
    import torch

    model = getattr(getattr(reranker, "scorer", None), "model", None)
    tower = getattr(model, "tower", None)
    if tower is None:
        return False
    if hasattr(tower, "merge_and_unload"):  # a PEFT model: fold LoRA into the base weights
        tower = tower.merge_and_unload()
    model.tower = torch.ao.quantization.quantize_dynamic(
        tower.eval(), {torch.nn.Linear}, dtype=torch.qint8
    )
    reranker.__dict__.pop("_batched", None)  # the batched path's caches hold fp32 vectors
    return True
