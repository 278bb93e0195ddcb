"""Answering instructions with a seq2seq or causal LM: training batches, closed-answer
scoring and greedy generation, over whole inputs truncated only in the middle.

- Prompts: a causal model with a chat template (SmolLM2-Instruct, Llama-Instruct...) sees the
  instruction as a user turn and answers in the assistant turn, ending with its EOS (as
  instruction-tuned models were trained); other causal models see ``instruction\\nAnswer:`` and
  answer after a space; seq2seq models read the instruction in the encoder.
- Long prompts lose their MIDDLE (`middle_truncate`): the start (the task, the first history
  items) and the end (the question, the chat template's answer cue) are kept.
- Closed answers (Yes/No, a label set): every allowed answer is scored by the summed
  log-likelihood of its tokens plus EOS (a probability of the whole answer; a softmax over the
  allowed answers gives their probabilities). A causal model reads each prompt ONCE and the K
  answers continue from its cached keys/values; a seq2seq model encodes once and decodes the K
  answers as one batch.
- Open answers: greedy decoding.
"""

from __future__ import annotations

import numpy as np
import torch

from instructrec.models.lm_scorer import LMScorer


def middle_truncate(ids: list[int], limit: int) -> tuple[list[int], int]:
    """Keep the first ``limit // 2`` and the last ``limit - limit // 2`` tokens; returns
    (ids, number of tokens cut). ``limit <= 0`` keeps everything."""
    if limit <= 0 or len(ids) <= limit:
        return list(ids), 0
    head = limit // 2
    tail = limit - head
    return list(ids[:head]) + list(ids[len(ids) - tail :]), len(ids) - limit


def _cache_arg(model: torch.nn.Module) -> str:
    """The forward argument that takes a KV cache ("cache" in newer transformers)."""
    import inspect

    from instructrec.models.lm_scorer import unwrap

    params = inspect.signature(unwrap(model).forward).parameters
    return "cache" if "cache" in params else "past_key_values"


class AnswerLM:
    """Instruction -> answer over an `LMScorer` (its ``model`` is what training updates)."""

    def __init__(
        self,
        scorer: LMScorer,
        max_length: int = 0,
        max_answer_length: int = 64,
        chat: bool | None = None,
        batch_size: int = 16,
    ) -> None:
        self.scorer = scorer
        self.tokenizer = scorer.tokenizer
        self.kind = scorer.kind
        self.max_length = max_length  # prompt tokens (0: no limit)
        self.max_answer_length = max_answer_length
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        self.chat = has_template and self.kind == "causal" if chat is None else bool(chat)
        self.batch_size = batch_size
        self.truncated = 0  # prompts cut by the last call of `prompt_ids`
        self.tokens_cut = 0

    @property
    def model(self) -> torch.nn.Module:
        return self.scorer.model

    @property
    def device(self) -> torch.device:
        return self.scorer.device

    # ---- tokens --------------------------------------------------------------------
    def render(self, text: str) -> str:
        """The prompt as the model reads it (chat turn or plain text)."""
        if self.chat:
            msgs = [{"role": "user", "content": text}]
            return self.tokenizer.apply_chat_template(
                msgs, tokenize=False, add_generation_prompt=True
            )
        return f"{text}\nAnswer:" if self.kind == "causal" else text

    def full_length(self, texts: list[str]) -> list[int]:
        """Token count of each rendered prompt before truncation."""
        return [len(self._encode_prompt(t)) for t in texts]

    def _encode_prompt(self, text: str) -> list[int]:
        return self.tokenizer.encode(self.render(text), add_special_tokens=not self.chat)

    def prompt_ids(self, texts: list[str]) -> list[list[int]]:
        """Rendered, tokenized prompts, middle-truncated to ``max_length``."""
        out, self.truncated, self.tokens_cut = [], 0, 0
        for t in texts:
            ids, cut = middle_truncate(self._encode_prompt(t), self.max_length)
            self.truncated += cut > 0
            self.tokens_cut += cut
            out.append(ids)
        return out

    def answer_ids(self, text: str) -> list[int]:
        """Answer tokens (after a space for plain causal prompts) + EOS."""
        prefix = " " if (self.kind == "causal" and not self.chat) else ""
        ids = self.tokenizer.encode(prefix + text, add_special_tokens=False)
        eos = self.tokenizer.eos_token_id
        return ids[: self.max_answer_length] + ([eos] if eos is not None else [])

    def _pad(self, rows: list[list[int]], left: bool, fill: int) -> tuple[torch.Tensor, ...]:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), fill, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for j, r in enumerate(rows):
            sl = slice(width - len(r), width) if left else slice(0, len(r))
            ids[j, sl], mask[j, sl] = torch.tensor(r, dtype=torch.long), 1
        return ids, mask

    # ---- training ------------------------------------------------------------------
    def collate(self, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        """(instruction, answer) pairs -> model inputs with ``labels`` on the answer only."""
        prompts = self.prompt_ids([p for p, _ in pairs])
        answers = [self.answer_ids(a) for _, a in pairs]
        pad = self.tokenizer.pad_token_id
        if self.kind == "seq2seq":
            ids, mask = self._pad(prompts, left=False, fill=pad)
            labels, _ = self._pad(answers, left=False, fill=-100)
            return {"input_ids": ids, "attention_mask": mask, "labels": labels}
        rows = [p + a for p, a in zip(prompts, answers, strict=True)]
        labs = [[-100] * len(p) + a for p, a in zip(prompts, answers, strict=True)]
        ids, mask = self._pad(rows, left=False, fill=pad)
        labels, _ = self._pad(labs, left=False, fill=-100)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    @staticmethod
    def loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean token cross-entropy of the answers."""
        return model(**batch).loss

    # ---- closed answers --------------------------------------------------------------
    @torch.no_grad()
    def answer_logprobs(self, prompts: list[str], answers: list[str]) -> np.ndarray:
        """(N, K) summed log-likelihood of each allowed answer (+EOS) given each prompt."""
        was = self.model.training
        self.model.eval()
        targets = [self.answer_ids(a) for a in answers]
        out, truncated, cut = [], 0, 0
        for s in range(0, len(prompts), self.batch_size):
            ids = self.prompt_ids(prompts[s : s + self.batch_size])
            truncated, cut = truncated + self.truncated, cut + self.tokens_cut
            fn = self._causal_scores if self.kind == "causal" else self._seq2seq_scores
            out.append(fn(ids, targets).float().cpu().numpy())
        self.truncated, self.tokens_cut = truncated, cut
        self.model.train(was)
        return np.concatenate(out) if out else np.zeros((0, len(answers)), np.float32)

    def _gather(self, logp: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        keep = labels != -100
        lp = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return (lp * keep).sum(-1)

    def _causal_scores(self, prompts: list[list[int]], targets: list[list[int]]) -> torch.Tensor:
        model, dev = self.model, self.device
        b, k = len(prompts), len(targets)
        ids, mask = self._pad(prompts, left=True, fill=self.tokenizer.pad_token_id)
        ids, mask = ids.to(dev), mask.to(dev)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        first = model(
            input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1
        )
        logp0 = torch.log_softmax(first.logits[:, -1].float(), -1)  # (B, V)
        first_tok = torch.tensor([t[0] for t in targets], device=dev)
        score = logp0[:, first_tok]  # (B, K)
        rest = [t[1:] for t in targets]
        if max(len(r) for r in rest) == 0:
            return score
        cache = getattr(first, "past_key_values", None)
        if cache is None:
            cache = first.cache
        cache.batch_repeat_interleave(k)
        # continuation input: every answer token but the last; each predicts the next one
        inp = [t[:-1] if len(t) > 1 else t[:1] for t in targets]
        a_ids, a_mask = self._pad(inp, left=False, fill=self.tokenizer.pad_token_id)
        a_lab, _ = self._pad(rest, left=False, fill=-100)
        width = a_ids.shape[1]
        a_lab = torch.nn.functional.pad(a_lab, (0, width - a_lab.shape[1]), value=-100)
        a_ids, a_mask, a_lab = (x.to(dev).repeat(b, 1) for x in (a_ids, a_mask, a_lab))
        attn = torch.cat([mask.repeat_interleave(k, 0), a_mask], 1)
        start = mask.sum(1).repeat_interleave(k).unsqueeze(1)
        a_pos = start + torch.arange(width, device=dev).unsqueeze(0)
        logits = model(
            input_ids=a_ids, attention_mask=attn, position_ids=a_pos, **{_cache_arg(model): cache}
        ).logits.float()
        more = self._gather(torch.log_softmax(logits, -1), a_lab).view(b, k)
        return score + more

    def _seq2seq_scores(self, prompts: list[list[int]], targets: list[list[int]]) -> torch.Tensor:
        from instructrec.models.lm_scorer import unwrap

        model, dev = self.model, self.device
        b, k = len(prompts), len(targets)
        ids, mask = self._pad(prompts, left=False, fill=self.tokenizer.pad_token_id)
        ids, mask = ids.to(dev), mask.to(dev)
        hidden = unwrap(model).get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state
        owner = torch.arange(b, device=dev).repeat_interleave(k)
        labels, _ = self._pad(targets, left=False, fill=-100)
        labels = labels.to(dev).repeat(b, 1)
        dec = unwrap(model).prepare_decoder_input_ids_from_labels(labels=labels)
        logits = model(
            encoder_outputs=(hidden[owner],), attention_mask=mask[owner], decoder_input_ids=dec
        ).logits.float()
        return self._gather(torch.log_softmax(logits, -1), labels).view(b, k)

    # ---- open answers ----------------------------------------------------------------
    @torch.no_grad()
    def generate(self, prompts: list[str], max_new_tokens: int = 32) -> list[str]:
        """Greedy answers (decoded text, stripped)."""
        was = self.model.training
        self.model.eval()
        tok, out = self.tokenizer, []
        truncated, cut = 0, 0
        for s in range(0, len(prompts), self.batch_size):
            rows = self.prompt_ids(prompts[s : s + self.batch_size])
            truncated, cut = truncated + self.truncated, cut + self.tokens_cut
            left = self.kind == "causal"
            ids, mask = self._pad(rows, left=left, fill=tok.pad_token_id)
            gen = self.model.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )
            if left:
                gen = gen[:, ids.shape[1] :]
            out += [t.strip() for t in tok.batch_decode(gen, skip_special_tokens=True)]
        self.truncated, self.tokens_cut = truncated, cut
        self.model.train(was)
        return out
