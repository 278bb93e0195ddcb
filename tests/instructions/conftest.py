"""Fixtures of the instructions room: one train and one test InstructionSet of ML-100K."""

from __future__ import annotations

import pytest

from instructrec.instructions import build


@pytest.fixture(scope="session")
def ml_train(ml100k, ml100k_split):
    """Every seen slot of the train stage (per_user=1, seed 0)."""
    return build(ml100k, ml100k_split, stage="train", seed=0)


@pytest.fixture(scope="session")
def ml_test(ml100k, ml100k_split):
    """Every seen slot of the test stage (cand10, seed 0)."""
    return build(ml100k, ml100k_split, stage="test", seed=0)
