"""A classification head over a sentence encoder (MiniLM) for closed-answer instructions.

An encoder cannot generate text, so for a task whose answers come from a small set (Yes/No,
labels) it reads the whole instruction (pooled token vectors: the mean, as sentence-transformers
pools, or the first token's, as BERT's classifier reads [CLS]) and a linear layer (after
optional dropout) scores each allowed answer; training is softmax cross-entropy over
the answers, with LoRA adapters (Hu et al. 2021) on the encoder. Saved as data: the adapter
(peft), ``head.safetensors`` and ``label_head.json`` naming the base by registry key or path.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from instructrec.models.answers import middle_truncate
from instructrec.models.loading import Backbone

POOLINGS = ("mean", "cls")


class LabelClassifier(nn.Module):
    """Encoder + linear head: instruction -> one logit per allowed answer. ``pooling``:
    "mean" (token vectors averaged) or "cls" (the first token's vector); ``dropout`` on the
    pooled vector while training."""

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
        self.head = nn.Linear(self.encoder.config.hidden_size, len(self.labels))
        self.truncated = 0
        self.tokens_cut = 0

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def prompt_ids(self, texts: list[str]) -> list[list[int]]:
        """Tokenized instructions ([CLS] ... [SEP]), middle-truncated to ``max_length``."""
        out, self.truncated, self.tokens_cut = [], 0, 0
        for t in texts:
            ids, cut = middle_truncate(self.tokenizer.encode(t), self.max_length)
            self.truncated += cut > 0
            self.tokens_cut += cut
            out.append(ids)
        return out

    def full_length(self, texts: list[str]) -> list[int]:
        return [len(self.tokenizer.encode(t)) for t in texts]

    def encode(self, texts: list[str]) -> dict[str, torch.Tensor]:
        rows = self.prompt_ids(texts)
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for j, r in enumerate(rows):
            ids[j, : len(r)], mask[j, : len(r)] = torch.tensor(r), 1
        return {"input_ids": ids, "attention_mask": mask}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            m = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
        return self.head(self.dropout(pooled))

    def collate(self, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        """(instruction, answer) pairs -> encoder inputs + the answer's index."""
        index = {a: i for i, a in enumerate(self.labels)}
        batch = self.encode([p for p, _ in pairs])
        batch["target"] = torch.tensor([index[a] for _, a in pairs], dtype=torch.long)
        return batch

    @staticmethod
    def loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = model(batch["input_ids"], batch["attention_mask"])
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
