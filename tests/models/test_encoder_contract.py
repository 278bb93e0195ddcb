"""The encoder scorer passes the shared `ScorerContract`."""

from __future__ import annotations

import torch

from instructrec.models.encoder_config import EncoderConfig
from instructrec.models.encoder_scorer import EncoderScorer
from instructrec.testing.scorer import ITEM_TEXTS, ScorerContract

_CACHE: dict = {}


class TestEncoderScorer(ScorerContract):
    def make_scorer(self) -> EncoderScorer:
        if "vecs" not in _CACHE:  # item vectors once per session (the tower reloads each time)
            _CACHE["vecs"] = EncoderScorer.build(ITEM_TEXTS, EncoderConfig(n_prior=1)).model
        torch.manual_seed(0)
        vecs = _CACHE["vecs"].item_vecs.numpy()
        return EncoderScorer.build(
            ITEM_TEXTS, EncoderConfig(n_prior=1, lora_r=4, max_query_len=32), item_vecs=vecs
        )
