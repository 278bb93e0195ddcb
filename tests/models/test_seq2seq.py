"""Seq2seq scorer: the fast path equals the plain likelihood, the encoder runs once."""

from __future__ import annotations

import numpy as np
import torch

from instructrec.models.base import RerankExample
from instructrec.models.lora import LoraSettings
from instructrec.models.seq2seq import Seq2SeqScorer, with_item
from instructrec.testing.scorer import contract_examples
from instructrec.training.config import TrainConfig
from instructrec.training.loop import fit


def test_scores_equal_plain_length_normalised_likelihood(tiny_t5_dir):
    scorer = Seq2SeqScorer.from_pretrained(tiny_t5_dir)
    examples = contract_examples()
    fast = scorer.score(examples)
    for ex, s in zip(examples, fast, strict=True):
        plain = scorer.answer_logprob(
            [ex.instruction] * len(ex.candidate_texts), ex.candidate_texts
        )
        np.testing.assert_allclose(s, plain, atol=1e-4)


def test_sum_instead_of_mean_prefers_short_candidates(tiny_t5_dir):
    scorer = Seq2SeqScorer.from_pretrained(tiny_t5_dir)
    ex = [RerankExample("pick", ["Heat", "Sense and Sensibility (1995) - Romance, Drama"])]
    mean = scorer.score(ex)[0]
    scorer.config.normalize = False
    total = scorer.score(ex)[0]
    n_tokens = np.array([len(t) for t in scorer.answer_ids(ex[0].candidate_texts)])
    np.testing.assert_allclose(total, mean * n_tokens, rtol=1e-4)


def test_encoder_runs_once_per_instruction(tiny_t5_dir):
    scorer = Seq2SeqScorer.from_pretrained(tiny_t5_dir, lora=LoraSettings(r=2))
    seen = {"enc": [], "dec": []}
    base = scorer.model.get_base_model()
    base.encoder.register_forward_hook(
        lambda m, a, kw, out: seen["enc"].append(kw["input_ids"].shape[0]), with_kwargs=True
    )
    base.decoder.register_forward_hook(
        lambda m, a, kw, out: seen["dec"].append(kw["input_ids"].shape[0]), with_kwargs=True
    )
    examples = contract_examples()
    scorer.score(examples)
    assert seen["enc"] == [len(examples)]
    assert seen["dec"] == [sum(len(ex.candidate_texts) for ex in examples)]


def test_yesno_is_yes_minus_no_logit_and_trains(tiny_t5_dir, tmp_path):
    scorer = Seq2SeqScorer.from_pretrained(tiny_t5_dir, lora=LoraSettings(r=4, dropout=0.0))
    ex = [
        RerankExample(
            "Would the user enjoy a comedy?",
            ["Babe (1995) - Comedy"],
            task="yesno",
            meta={"label": 1},
        ),
        RerankExample(
            "Would the user enjoy a horror film?",
            ["Babe (1995) - Comedy"],
            task="yesno",
            meta={"label": 0},
        ),
    ]
    s = scorer.score(ex)
    assert [x.shape for x in s] == [(1,), (1,)]
    source = with_item(ex[0].instruction, ex[0].candidate_texts[0])
    enc = scorer.tokenizer([source], return_tensors="pt")
    start = torch.tensor([[scorer.model.config.decoder_start_token_id]])
    with torch.no_grad():
        logits = scorer.model(**enc, decoder_input_ids=start).logits[0, 0]
    assert np.isclose(s[0][0], float(logits[scorer.yes_id] - logits[scorer.no_id]), atol=1e-4)
    cfg = TrainConfig(
        output_dir=str(tmp_path),
        lr=5e-2,
        max_steps=10,
        batch_size=2,
        warmup_ratio=0.0,
        progress=False,
        device="cpu",
    )
    fit(scorer.model, ex, list, scorer.rank_loss, cfg)
    after = scorer.score(ex)
    assert after[0][0] > after[1][0]


def test_lm_loss_tuning_raises_answer_likelihood(tiny_t5_dir, tmp_path):
    scorer = Seq2SeqScorer.from_pretrained(tiny_t5_dir, lora=LoraSettings(r=4, dropout=0.0))
    pairs = [("Is Heat an action film?", "yes"), ("Is Babe a horror film?", "no")] * 4
    before = scorer.answer_logprob([p for p, _ in pairs], [a for _, a in pairs]).mean()
    cfg = TrainConfig(
        output_dir=str(tmp_path),
        lr=3e-2,
        max_steps=10,
        batch_size=4,
        warmup_ratio=0.0,
        progress=False,
        device="cpu",
    )
    fit(scorer.model, pairs, scorer.lm_collate, scorer.lm_loss, cfg)
    after = scorer.answer_logprob([p for p, _ in pairs], [a for _, a in pairs]).mean()
    assert after > before + 0.5
