"""Causal-LM scorer with an index-token verbaliser (LlamaRec, Yue et al. 2023).

The prompt lists the candidates under index labels and ends at the answer position:

    {instruction}
    Candidates:
    A. Toy Story (1995)
    B. Heat (1995)
    ...
    Answer:

ONE forward pass reads the next-token logits of the label tokens (" A", " B", ...) at the
answer position; those logits are the candidates' scores (a softmax over them is the
verbalised ranking distribution LlamaRec trains with cross-entropy). Prompts are left-padded
with explicit position ids so only the last position's logits are computed. Scores depend on
where a candidate is listed, so this scorer is not permutation-equivariant. Task "yesno":
score = logit(" yes") - logit(" no") after "Answer:".
"""

from __future__ import annotations

import string

import torch

from instructrec.models.base import RerankExample
from instructrec.models.lm_scorer import LMScorer, single_token
from instructrec.models.seq2seq import with_item

LABELS = list(string.ascii_uppercase + string.ascii_lowercase + string.digits)


def candidate_prompt(instruction: str, texts: list[str], max_chars: int = 200) -> str:
    """The LlamaRec-style listwise prompt (instruction, lettered candidates, "Answer:")."""
    if len(texts) > len(LABELS):
        raise ValueError(f"at most {len(LABELS)} candidates per list, got {len(texts)}")
    lines = [f"{LABELS[i]}. {t[:max_chars]}" for i, t in enumerate(texts)]
    return f"{instruction}\nCandidates:\n" + "\n".join(lines) + "\nAnswer:"


class CausalScorer(LMScorer):
    """`Scorer` over a decoder-only LM (GPT-2, Llama, Qwen, Mistral...)."""

    kind = "causal"
    permutation_equivariant = False

    def __init__(self, backbone, config=None) -> None:
        super().__init__(backbone, config)
        self.label_ids = [single_token(self.tokenizer, label) for label in LABELS]
        if len(set(self.label_ids)) != len(LABELS):
            raise ValueError("the tokenizer does not give the index labels distinct tokens")

    def prompts(self, batch: list[RerankExample]) -> list[str]:
        out = []
        for ex in batch:
            if ex.task == "yesno":
                out += [with_item(ex.instruction, t) + "\nAnswer:" for t in ex.candidate_texts]
            else:
                out.append(candidate_prompt(ex.instruction, ex.candidate_texts))
        return out

    def last_logits(self, model: torch.nn.Module, prompts: list[str]) -> torch.Tensor:
        """Next-token logits (N, V) at the end of each prompt, one forward pass."""
        enc = self.tokenize(prompts, side="left")
        mask = enc["attention_mask"]
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        out = model(
            input_ids=enc["input_ids"], attention_mask=mask, position_ids=pos, logits_to_keep=1
        )
        return out.logits[:, -1].float()

    def score_tensors(
        self, model: torch.nn.Module, batch: list[RerankExample]
    ) -> list[torch.Tensor]:
        nonempty = [ex for ex in batch if ex.candidate_texts]
        logits = self.last_logits(model, self.prompts(nonempty)) if nonempty else None
        label_ids = torch.tensor(self.label_ids, device=self.device)
        out, row = [], 0
        for ex in batch:
            k = len(ex.candidate_texts)
            if k == 0:
                out.append(torch.zeros(0, device=self.device))
            elif ex.task == "yesno":
                lg = logits[row : row + k]
                out.append(lg[:, self.yes_id] - lg[:, self.no_id])
                row += k
            else:
                out.append(logits[row, label_ids[:k]])
                row += 1
        return out

    def lm_collate(self, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        """prompt + " " + answer + EOS, right-padded; labels only on the answer tokens."""
        tok, eos = self.tokenizer, self.tokenizer.eos_token_id
        rows, labels = [], []
        for prompt, answer in pairs:
            a = tok.encode(" " + answer, add_special_tokens=False)[: self.config.max_answer_length]
            a = a + ([eos] if eos is not None else [])
            p = tok.encode(prompt, add_special_tokens=False)
            p = p[-max(1, self.config.max_length - len(a)) :]
            rows.append(p + a)
            labels.append([-100] * len(p) + a)
        width = max(len(r) for r in rows)
        pad = tok.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        lab = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for j, (r, lb) in enumerate(zip(rows, labels, strict=True)):
            ids[j, : len(r)], lab[j, : len(r)], mask[j, : len(r)] = (
                torch.tensor(r),
                torch.tensor(lb),
                1,
            )
        return {"input_ids": ids, "attention_mask": mask, "labels": lab}
