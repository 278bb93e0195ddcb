"""A classification head over a sentence encoder (MiniLM) for closed-answer instructions.

An encoder cannot generate text, so for a task whose answers come from a small set (Yes/No,
labels) it reads the whole instruction (pooled token vectors: the mean, as sentence-transformers
pools, or the first token's, as BERT's classifier reads [CLS], or the mean beside the mean of
the instruction's last line, the question, whose vector a long context such as a rated history
would otherwise dilute) and a linear layer (after optional dropout) scores each allowed answer;
training is softmax cross-entropy over the answers, with LoRA adapters (Hu et al. 2021) on the
encoder. Saved as data: the adapter (peft), ``head.safetensors`` and ``label_head.json`` naming
the base by registry key or path.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from instructrec.models.answers import middle_truncate
from instructrec.models.loading import Backbone
from instructrec.models.text_encoder import mean_pool

POOLINGS = ("mean", "cls", "mean+last-line")


class LabelClassifier(nn.Module):
    """Encoder + linear head: instruction -> one logit per allowed answer. ``pooling``:
    "mean" (token vectors averaged), "cls" (the first token's vector) or "mean+last-line" (the
    mean and, concatenated, the mean over the tokens of the instruction's last non-empty line,
    read in context: one pass); ``dropout`` on the pooled vector while training."""

    def __init__(
        self,
        backbone: Backbone,
        labels: list[str],
        max_length: int = 512,
        pooling: str = "mean",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        self.pooling = pooling
        self.dropout = nn.Dropout(float(dropout))
        self.backbone = backbone
        self.tokenizer = backbone.tokenizer
        self.encoder = backbone.model
        self.labels = list(labels)
        limit = getattr(self.encoder.config, "max_position_embeddings", 512) or 512
        self.max_length = min(int(max_length or limit), int(limit))
        width = self.encoder.config.hidden_size * (2 if pooling == "mean+last-line" else 1)
        self.head = nn.Linear(width, len(self.labels))
        self.truncated = 0
        self.tokens_cut = 0

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def prompt_ids(self, texts: list[str]) -> list[list[int]]:
        """Tokenized instructions ([CLS] ... [SEP]), middle-truncated to ``max_length``."""
        return [ids for ids, _ in self._prompts(texts)]

    def _prompts(self, texts: list[str]) -> list[tuple[list[int], int]]:
        """(token ids, how many tokens before the final special token belong to the last
        line) per instruction; middle truncation keeps the end, so the count survives it."""
        out, self.truncated, self.tokens_cut = [], 0, 0
        for t in texts:
            if self.pooling == "mean+last-line":
                enc = self.tokenizer(t, return_offsets_mapping=True)
                body = t.rstrip()
                start = body.rfind("\n") + 1
                # tokens whose text starts inside the last line (special tokens: (0, 0) spans)
                n_last = sum(1 for a, b in enc["offset_mapping"] if b > a and a >= start)
                full = list(enc["input_ids"])
            else:
                full, n_last = self.tokenizer.encode(t), 0
            ids, cut = middle_truncate(full, self.max_length)
            self.truncated += cut > 0
            self.tokens_cut += cut
            keep = len(ids) - 2 if not cut else self.max_length - self.max_length // 2 - 1
            out.append((ids, min(n_last, max(keep, 0))))
        return out

    def full_length(self, texts: list[str]) -> list[int]:
        return [len(self.tokenizer.encode(t)) for t in texts]

    def encode(self, texts: list[str]) -> dict[str, torch.Tensor]:
        rows = self._prompts(texts)
        width = max(len(r) for r, _ in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for j, (r, _) in enumerate(rows):
            ids[j, : len(r)], mask[j, : len(r)] = torch.tensor(r), 1
        out = {"input_ids": ids, "attention_mask": mask}
        if self.pooling == "mean+last-line":  # the last line: the n tokens before the final one
            last = torch.zeros((len(rows), width), dtype=torch.long)
            for j, (r, n) in enumerate(rows):
                last[j, len(r) - 1 - n : len(r) - 1] = 1
            out["last_line_mask"] = last
        return out

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        last_line_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            pooled = mean_pool(hidden, attention_mask)
            if self.pooling == "mean+last-line":
                if last_line_mask is None:
                    raise ValueError("pooling 'mean+last-line' needs last_line_mask (see encode)")
                pooled = torch.cat([pooled, mean_pool(hidden, last_line_mask)], dim=-1)
        return self.head(self.dropout(pooled))

    def collate(self, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        """(instruction, answer) pairs -> encoder inputs + the answer's index."""
        index = {a: i for i, a in enumerate(self.labels)}
        batch = self.encode([p for p, _ in pairs])
        batch["target"] = torch.tensor([index[a] for _, a in pairs], dtype=torch.long)
        return batch

    @staticmethod
    def loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = model(batch["input_ids"], batch["attention_mask"], batch.get("last_line_mask"))
        return nn.functional.cross_entropy(logits.float(), batch["target"])

    @torch.no_grad()
    def answer_logprobs(self, prompts: list[str], batch_size: int = 32) -> np.ndarray:
        """(N, K) log-probabilities of the allowed answers."""
        was = self.training
        self.eval()
        out, truncated, cut = [], 0, 0
        for s in range(0, len(prompts), batch_size):
            b = {k: v.to(self.device) for k, v in self.encode(prompts[s : s + batch_size]).items()}
            truncated, cut = truncated + self.truncated, cut + self.tokens_cut
            out.append(torch.log_softmax(self(**b).float(), -1).cpu().numpy())
        self.truncated, self.tokens_cut = truncated, cut
        self.train(was)
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)

    # ---- persistence ---------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if hasattr(self.encoder, "peft_config"):
            self.encoder.save_pretrained(directory / "adapter")
        else:  # full fine-tuning (or frozen): keep the encoder weights
            self.encoder.save_pretrained(directory / "encoder")
        save_file(
            {k: v.contiguous() for k, v in self.head.state_dict().items()},
            str(directory / "head.safetensors"),
        )
        lora = self.backbone.lora.to_dict() if self.backbone.lora else None
        meta = {
            "base": self.backbone.name_or_path,
            "labels": self.labels,
            "max_length": self.max_length,
            "pooling": self.pooling,
            "dropout": self.dropout.p,
            "lora": lora,
        }
        (directory / "label_head.json").write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, directory: str | Path) -> LabelClassifier:
        from safetensors.torch import load_file

        from instructrec.models.offline import load_any

        directory = Path(directory)
        meta = json.loads((directory / "label_head.json").read_text())
        if (directory / "encoder").exists():
            bb = load_any(str(directory / "encoder"), "encoder")
        else:
            from peft import PeftModel

            bb = load_any(meta["base"], "encoder")
            bb.model = PeftModel.from_pretrained(bb.model, directory / "adapter")
        bb.name_or_path = meta["base"]
        model = cls(
            bb,
            meta["labels"],
            meta["max_length"],
            meta.get("pooling", "mean"),  # runs saved before pooling was a setting
            meta.get("dropout", 0.0),
        )
        model.head.load_state_dict(load_file(str(directory / "head.safetensors")))
        return model.eval()
