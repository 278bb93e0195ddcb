"""Causal scorer: LlamaRec index-token verbaliser, one forward pass, left padding is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instructrec.models.base import RerankExample
from instructrec.models.causal import LABELS, CausalScorer, candidate_prompt
from instructrec.models.lora import LoraSettings
from instructrec.testing.scorer import contract_examples
from instructrec.training.config import TrainConfig
from instructrec.training.loop import fit


def test_prompt_lists_lettered_candidates():
    p = candidate_prompt("Pick one.", ["Heat", "Babe"])
    assert p == "Pick one.\nCandidates:\nA. Heat\nB. Babe\nAnswer:"
    with pytest.raises(ValueError, match="at most"):
        candidate_prompt("x", ["t"] * (len(LABELS) + 1))


def test_scores_are_label_logits_of_one_unpadded_pass(tiny_gpt2_dir):
    scorer = CausalScorer.from_pretrained(tiny_gpt2_dir)
    examples = contract_examples()
    scores = scorer.score(examples)
    assert len(set(scorer.label_ids)) == len(LABELS)
    for ex, s in zip(examples, scores, strict=True):
        ids = scorer.tokenizer(
            candidate_prompt(ex.instruction, ex.candidate_texts), return_tensors="pt"
        )["input_ids"]
        with torch.no_grad():
            logits = scorer.model(input_ids=ids).logits[0, -1]
        expected = logits[scorer.label_ids[: len(ex.candidate_texts)]].numpy()
        np.testing.assert_allclose(s, expected, atol=1e-4)


def test_one_forward_pass_per_batch(tiny_gpt2_dir):
    scorer = CausalScorer.from_pretrained(tiny_gpt2_dir)
    calls = []
    scorer.model.register_forward_hook(
        lambda m, a, kw, out: calls.append(kw["input_ids"].shape[0]), with_kwargs=True
    )
    scorer.score(contract_examples())
    assert calls == [len(contract_examples())]


def test_yesno_and_mixed_batch(tiny_llama_dir, tmp_path):
    scorer = CausalScorer.from_pretrained(tiny_llama_dir, lora=LoraSettings(r=4, dropout=0.0))
    yes = RerankExample(
        "Does the user like comedy? Babe (1995) - Comedy",
        ["Babe (1995) - Comedy"],
        task="yesno",
        meta={"label": 1},
    )
    no = RerankExample(
        "Does the user like horror? Babe (1995) - Comedy",
        ["Babe (1995) - Comedy"],
        task="yesno",
        meta={"label": 0},
    )
    batch = [yes, *contract_examples()[:2], no]
    scores = scorer.score(batch)
    assert [len(s) for s in scores] == [1, 4, 3, 1]
    cfg = TrainConfig(
        output_dir=str(tmp_path),
        lr=5e-2,
        max_steps=10,
        batch_size=4,
        warmup_ratio=0.0,
        progress=False,
        device="cpu",
    )
    fit(scorer.model, batch, list, scorer.rank_loss, cfg)
    after = scorer.score([yes, no])
    assert after[0][0] > after[1][0]


def test_lm_collate_labels_only_the_answer(tiny_gpt2_dir):
    scorer = CausalScorer.from_pretrained(tiny_gpt2_dir)
    b = scorer.lm_collate([("Is Heat an action film?", "yes"), ("Short?", "no it is not")])
    for row_ids, row_labels, row_mask in zip(
        b["input_ids"], b["labels"], b["attention_mask"], strict=True
    ):
        answer = row_labels[row_labels != -100]
        assert answer[-1] == scorer.tokenizer.eos_token_id
        n = int(row_mask.sum())
        assert torch.equal(row_ids[n - len(answer) : n], answer)
    assert torch.isfinite(scorer.lm_loss(scorer.model, b))
