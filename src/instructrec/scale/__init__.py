"""Scale beyond one process: multi-process training and batch scoring of large catalogues.

- `instructrec.scale.batch_scoring`: every user x the whole catalogue, top-k per user, blocked
  so memory stays bounded; a local executor (torch, CPU or CUDA) and a Ray Data one (imported
  only when used: ``pip install "instructrec[ray]"``).
- `instructrec.scale.retriever_scoring`: the same for any fitted `Retriever` (its own
  ``candidates`` over blocks of users), behind `instructrec scale topk --model runs/NAME`.
- `instructrec.scale.invariant`: the loss-trajectory probe that checks data-parallel training
  (2 processes x batch 8 == 1 x 16; accumulation 1 x 8 == 8 x 1) through the real engine.
- Multi-process training itself is `instructrec.training.loop.fit` under ``accelerate launch``
  or ``torchrun``; ready configs live in ``configs/accelerate/`` (see docs/scale.md).

Importing this package imports neither Ray nor torch.
"""

from __future__ import annotations

__all__ = ["BatchScoringConfig", "batch_score", "history_vectors", "retriever_topk"]


def __getattr__(name: str):
    if name == "retriever_topk":
        from .retriever_scoring import retriever_topk

        return retriever_topk
    if name in __all__:
        from . import batch_scoring

        return getattr(batch_scoring, name)
    raise AttributeError(name)
