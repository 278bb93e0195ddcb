"""The seq2seq and causal scorers pass the shared `ScorerContract` (with and without LoRA)."""

from __future__ import annotations

import pytest

from instructrec.models.causal import CausalScorer
from instructrec.models.lora import LoraSettings
from instructrec.models.seq2seq import Seq2SeqScorer
from instructrec.testing.scorer import ScorerContract


class TestSeq2SeqLoraContract(ScorerContract):
    train_lr, train_steps = 5e-2, 8

    @pytest.fixture(autouse=True)
    def _path(self, tiny_t5_dir):
        self.path = tiny_t5_dir

    def make_scorer(self):
        return Seq2SeqScorer.from_pretrained(self.path, lora=LoraSettings(r=4, dropout=0.0))


class TestSeq2SeqFullContract(ScorerContract):
    """No LoRA: the whole model trains and is saved in full."""

    train_lr, train_steps = 1e-2, 8

    @pytest.fixture(autouse=True)
    def _path(self, tiny_t5_dir):
        self.path = tiny_t5_dir

    def make_scorer(self):
        return Seq2SeqScorer.from_pretrained(self.path)


class TestCausalGPT2Contract(ScorerContract):
    train_lr, train_steps = 5e-2, 8

    @pytest.fixture(autouse=True)
    def _path(self, tiny_gpt2_dir):
        self.path = tiny_gpt2_dir

    def make_scorer(self):
        return CausalScorer.from_pretrained(self.path, lora=LoraSettings(r=4, dropout=0.0))


class TestCausalLlamaContract(ScorerContract):
    train_lr, train_steps = 5e-2, 8

    @pytest.fixture(autouse=True)
    def _path(self, tiny_llama_dir):
        self.path = tiny_llama_dir

    def make_scorer(self):
        return CausalScorer.from_pretrained(self.path, lora=LoraSettings(r=4, dropout=0.0))
