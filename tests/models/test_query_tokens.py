"""How much of a query text the tower reads (`encoder_config.query_tokens`): a training pass
reads ``max_query_len`` tokens (the step's cost); scoring and serving read a request whole, so
words past the training length still move the scores, in passes of similar length
(`encoder_config.length_passes`) so that one long request does not pad a batch of short ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instructrec.models.encoder_config import (
    READ_QUERY_LEN,
    EncoderConfig,
    length_passes,
    query_tokens,
)
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


def test_length_passes():
    lengths = np.array([12] * 31 + [250] + [20] * 5)
    passes = length_passes(lengths, batch_size=256)
    assert sorted(np.concatenate(passes).tolist()) == list(range(len(lengths)))
    assert [p.tolist() for p in passes if 31 in p] == [[31]]  # the long text alone
    assert all(lengths[p].max() <= 2 * lengths[p].min() for p in passes)
    assert len(length_passes(lengths, batch_size=256, spread=None)) == 1  # a training step
    assert max(len(p) for p in length_passes(lengths, batch_size=8)) == 8


def test_one_long_request_does_not_pad_the_batch(rec, monkeypatch):
    """Scoring 31 short requests and one long one: the short ones are encoded in a pass of
    their own width, and every vector equals the text's vector encoded alone."""
    model, tok = rec.reranker.scorer.model, rec.reranker.scorer.tokenizer
    texts = [f"a light comedy number {i}" for i in range(31)] + [PREAMBLE + "a musical"]
    widths = []
    real = model.encode_query

    def spy(ids, mask):
        widths.append(tuple(ids.shape))
        return real(ids, mask)

    monkeypatch.setattr(model, "encode_query", spy)
    model.eval()
    with torch.no_grad():
        together = encode_queries(model, tok, texts)
        alone = torch.cat([encode_queries(model, tok, [t]) for t in texts])
    long_width = len(tok(texts[-1])["input_ids"])
    assert widths[0][0] == 31 and widths[0][1] < long_width / 4
    assert widths[1] == (1, long_width)
    assert torch.allclose(together, alone, atol=1e-5)
