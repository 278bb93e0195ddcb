"""Seq2seq (Flan-T5 family) scorer: candidates ranked by their likelihood given the instruction.

InstructRec (Zhang et al. 2023) fine-tunes Flan-T5 on recommendation instructions and reads
the answer the model would generate. For reranking we score each candidate by the
(length-normalised) log-likelihood of its text as the answer:

    s_i = 1/|c_i| * sum_t log p(c_i,t | c_i,<t, instruction)

Efficiently: the instruction is encoded ONCE per example and the K candidate texts are decoded
as one batch that reuses the encoder output (indexing the hidden states by owner), so a list of
K candidates costs one encoder pass plus one decoder pass over K short sequences. Scores do not
depend on the candidates' order (``permutation_equivariant``). Task "yesno" (T0): one decoder
step, score = logit("yes") - logit("no").
"""

from __future__ import annotations

import torch

from instructrec.models.base import RerankExample
from instructrec.models.lm_scorer import LMScorer, unwrap


def with_item(instruction: str, text: str) -> str:
    """The instruction, followed by the item text unless the instruction already names it."""
    return instruction if text in instruction else f"{instruction}\nItem: {text}"


class Seq2SeqScorer(LMScorer):
    """`Scorer` over an encoder-decoder LM (T5, Flan-T5, BART...)."""

    kind = "seq2seq"
    permutation_equivariant = True

    def score_tensors(
        self, model: torch.nn.Module, batch: list[RerankExample]
    ) -> list[torch.Tensor]:
        out: list[torch.Tensor | None] = [None] * len(batch)
        rank = [i for i, ex in enumerate(batch) if ex.task != "yesno" and ex.candidate_texts]
        yn = [i for i, ex in enumerate(batch) if ex.task == "yesno" and ex.candidate_texts]
        for i, ex in enumerate(batch):
            if not ex.candidate_texts:
                out[i] = torch.zeros(0, device=self.device)
        if rank:
            scores = self._likelihoods(model, [batch[i] for i in rank])
            for i, s in zip(rank, scores, strict=True):
                out[i] = s
        if yn:
            sources = [
                with_item(batch[i].instruction, t) for i in yn for t in batch[i].candidate_texts
            ]
            logits = self._first_step_logits(model, sources)
            s = logits[:, self.yes_id] - logits[:, self.no_id]
            k = 0
            for i in yn:
                n = len(batch[i].candidate_texts)
                out[i], k = s[k : k + n], k + n
        return out  # type: ignore[return-value]

    def _encode(self, model: torch.nn.Module, sources: list[str]):
        enc = self.tokenize(sources)
        hidden = unwrap(model).get_encoder()(**enc).last_hidden_state
        return hidden, enc["attention_mask"]

    def _likelihoods(self, model: torch.nn.Module, exs: list[RerankExample]) -> list[torch.Tensor]:
        hidden, mask = self._encode(model, [ex.instruction for ex in exs])
        owner = torch.tensor(
            [i for i, ex in enumerate(exs) for _ in ex.candidate_texts], device=hidden.device
        )
        targets = self.answer_ids([t for ex in exs for t in ex.candidate_texts])
        width = max(len(t) for t in targets)
        labels = torch.full((len(targets), width), -100, dtype=torch.long)
        for j, t in enumerate(targets):
            labels[j, : len(t)] = torch.tensor(t)
        labels = labels.to(hidden.device)
        decoder_in = unwrap(model).prepare_decoder_input_ids_from_labels(labels=labels)
        logits = model(
            encoder_outputs=(hidden[owner],),
            attention_mask=mask[owner],
            decoder_input_ids=decoder_in,
        ).logits.float()
        keep = labels != -100
        lp = torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0).unsqueeze(-1))
        lp = (lp.squeeze(-1) * keep).sum(1)
        if self.config.normalize:
            lp = lp / keep.sum(1).clamp(min=1)
        return list(lp.split([len(ex.candidate_texts) for ex in exs]))

    def _first_step_logits(self, model: torch.nn.Module, sources: list[str]) -> torch.Tensor:
        hidden, mask = self._encode(model, sources)
        start = unwrap(model).config.decoder_start_token_id
        decoder_in = torch.full(
            (len(sources), 1), int(start), dtype=torch.long, device=hidden.device
        )
        return (
            model(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=decoder_in)
            .logits[:, 0]
            .float()
        )

    def lm_collate(self, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        """Prompts as encoder inputs, answers (+EOS) as labels (-100 on padding)."""
        tok = self.tokenizer
        tok.truncation_side, tok.padding_side = "left", "right"
        enc = tok(
            [p for p, _ in pairs],
            padding=True,
            truncation=True,
            max_length=self.config.max_length,
            return_tensors="pt",
        )
        targets = self.answer_ids([a for _, a in pairs])
        labels = torch.full((len(pairs), max(len(t) for t in targets)), -100, dtype=torch.long)
        for j, t in enumerate(targets):
            labels[j, : len(t)] = torch.tensor(t)
        return {
            "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"],
            "labels": labels,
        }
