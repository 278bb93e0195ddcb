"""Tiny language models saved to disk once per session (built from configs, offline)."""

from __future__ import annotations

import pytest

from instructrec.testing.scorer import ITEM_TEXTS, contract_examples

CORPUS = ITEM_TEXTS + [ex.instruction for ex in contract_examples()]


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory):
    from instructrec.testing.tiny import tiny_t5

    return tiny_t5(tmp_path_factory.mktemp("tiny_t5"), CORPUS)


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory):
    from instructrec.testing.tiny import tiny_causal

    return tiny_causal(tmp_path_factory.mktemp("tiny_gpt2"), CORPUS, arch="gpt2")


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    from instructrec.testing.tiny import tiny_causal

    return tiny_causal(tmp_path_factory.mktemp("tiny_llama"), CORPUS, arch="llama")


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run ~10x faster on one thread when the shared CPU is oversubscribed."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
