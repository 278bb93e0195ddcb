"""The training loop's schedule: which examples each step sees, and at what learning rate.

Data order: epoch ``e`` visits the examples in a permutation seeded by (seed, e), cut into
batches dealt round-robin to the processes (`epoch_batches`), so the position (epoch, batches
consumed) fully determines the rest of a run and a resumed run repeats an uninterrupted one.
The learning rate warms up linearly, then decays linearly to 0 (`warmup_then_linear_decay`),
as in nanoGPT's ``train.py``. `instructrec.training.loop.fit` runs on both.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from instructrec.training.config import TrainConfig


def epoch_batches(
    n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1
) -> list[list[int]]:
    """Index batches of one epoch for one process: a seeded permutation, cut into batches,
    dealt round-robin to processes (a trailing batch that not every process gets is dropped
    when world > 1, so all processes take the same number of steps)."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    order = torch.randperm(n, generator=g).tolist()
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if world > 1:
        batches = batches[: len(batches) // world * world]
    return batches[rank::world]


def batches_per_epoch(n: int, config: TrainConfig, rank: int, world: int) -> int:
    """This process's batches per epoch; a `DataError` when there is nothing to train on."""
    from instructrec.data.errors import DataError

    if n == 0:
        raise DataError("no training examples")
    n_batches = len(epoch_batches(n, config.batch_size, config.seed, 0, rank, world))
    if n_batches == 0:
        raise DataError(
            f"{n} training examples are too few for {world} processes x batch {config.batch_size}"
        )
    return n_batches


def warmup_then_linear_decay(warmup: int, total_steps: int) -> Callable[[int], float]:
    """The learning-rate factor of a step: linear warm-up, then linear decay to 0."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor
