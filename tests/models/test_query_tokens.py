"""How much of a query text the tower reads (`encoder_config.query_tokens`): a training pass
reads ``max_query_len`` tokens (the step's cost); scoring and serving read a request whole, so
words past the training length still move the scores."""

from __future__ import annotations

import pytest
import torch

from instructrec.models.encoder_config import READ_QUERY_LEN, EncoderConfig, query_tokens
from instructrec.models.scoring import encode_queries
from instructrec.testing.shipped import shipped_like

TEMPLATE = "p1i2t3-a"  # a catalogue template: "... I am looking for {intention}. Which ..."
PREAMBLE = "after a long week I finally have a quiet evening to myself and would like " * 3


@pytest.fixture(scope="module")
def rec():
    return shipped_like()  # its tower trains on 24 tokens of query text


def test_rule():
    cfg = EncoderConfig(max_query_len=48)
    assert query_tokens(cfg, training=True) == 48
    assert query_tokens(cfg, training=False) == READ_QUERY_LEN
    assert query_tokens(EncoderConfig(max_query_len=400), training=False) == 400


def test_words_past_the_training_length_are_read_when_scoring(rec):
    scorer = rec.reranker.scorer
    texts = [PREAMBLE + "a musical", PREAMBLE + "a war film"]
    assert len(scorer.tokenizer(texts[0])["input_ids"]) > 2 * scorer.model.config.max_query_len
    scorer.model.eval()
    with torch.no_grad():
        read = encode_queries(scorer.model, scorer.tokenizer, texts)
    assert (read[0] - read[1]).abs().max() > 1e-3
    with torch.enable_grad():  # a training pass: both cut after max_query_len tokens
        cut = encode_queries(scorer.model, scorer.tokenizer, texts)
    assert torch.allclose(cut[0], cut[1])


def test_a_long_request_ends_up_in_the_answer(rec):
    """End to end: two requests that differ only after the training length (in words the
    parser does not read), phrased by the same template, rank the same candidates
    differently."""
    items = [str(i) for i in rec.dataset.items["item_id"][:8]]
    user = str(rec.dataset.users["user_id"][0])
    raw = [
        rec.recommend(
            user, PREAMBLE + tail, n=8, candidates=items, template=TEMPLATE, exclude_seen=False
        )
        .set_index("item_id")
        .loc[items, "raw_score"]
        .to_numpy()
        for tail in ("zorblax quimbly", "florp wendigast")
    ]
    assert abs(raw[0] - raw[1]).max() > 1e-4
