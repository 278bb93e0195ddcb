"""What the seq2seq and causal scorers share: batching, training losses, save/load.

Conventions for training examples (`RerankExample.meta`): ``meta["target"]`` is the index of
the positive candidate for ``task="rank"``; ``meta["label"]`` (0/1) the answer for
``task="yesno"``. `LMScorer.rank_loss` trains listwise softmax cross-entropy on the scores
(LlamaRec-style) and binary cross-entropy on Yes/No logits; `LMScorer.lm_loss` is the plain
language-model loss on an answer, used for generic instruction tuning (`instructrec tune`).

A saved scorer is a directory (`instructrec.models.lm_load.load_scorer` reads it back): ``scorer.json`` (kind, settings, where the base model lives),
``tokenizer/``, and either ``adapter/`` (peft LoRA weights; the base is referenced by registry
key (`instructrec.models.offline`) or path, or saved in ``base/`` when it has neither) or
``base/`` (a fully fine-tuned model).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from instructrec.models.base import RerankExample, Scorer
from instructrec.models.loading import Backbone, load_backbone
from instructrec.models.lora import LoraSettings


@dataclass
class LMScorerConfig:
    """Prompting and batching of a language-model scorer."""

    max_length: int = 512  # prompt tokens (longer prompts lose their beginning)
    max_answer_length: int = 32  # tokens of a candidate text / answer (seq2seq targets)
    normalize: bool = True  # seq2seq: mean log-prob per token (False: sum)
    yes: str = "yes"  # the word whose logit is the Yes score (task "yesno")
    no: str = "no"  # ... and the No word
    batch_size: int = 16  # examples per forward pass in score()


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The HF model under DDP / peft wrappers (LoRA layers are injected in place)."""
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def listwise_ce(scores: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy over ragged candidate lists (as `training.losses.listwise_ce`,
    repeated here so that models/ does not import training/)."""
    width = max(int(s.numel()) for s in scores)
    floor = torch.finfo(torch.float32).min
    padded = torch.stack(
        [torch.nn.functional.pad(s.float(), (0, width - s.numel()), value=floor) for s in scores]
    )
    return torch.nn.functional.cross_entropy(padded, target.to(padded.device))


def yesno_bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.binary_cross_entropy_with_logits(
        logits.float(), labels.to(logits.device).float()
    )


def single_token(tokenizer, word: str) -> int:
    """Id of ``word`` as one token: tried with a leading space, then without."""
    for text in (" " + word, word):
        ids = tokenizer.encode(text, add_special_tokens=False)
        if len(ids) == 1:
            return ids[0]
    ids = tokenizer.encode(word, add_special_tokens=False)
    return ids[0]


class LMScorer(Scorer):
    """Base of `Seq2SeqScorer` and `CausalScorer`. ``self.model`` is what `fit` trains."""

    kind = "lm"
    permutation_equivariant = False

    def __init__(self, backbone: Backbone, config: LMScorerConfig | None = None) -> None:
        self.backbone = backbone
        self.tokenizer = backbone.tokenizer
        self.model = backbone.model
        self.config = config or LMScorerConfig()
        self.yes_id = single_token(self.tokenizer, self.config.yes)
        self.no_id = single_token(self.tokenizer, self.config.no)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        lora: LoraSettings | None = None,
        config: LMScorerConfig | None = None,
        dtype=None,
        device: str | None = None,
    ) -> LMScorer:
        """Load the backbone (local dir or hub id) of this scorer's kind, with LoRA."""
        return cls(load_backbone(name_or_path, cls.kind, lora, dtype, device), config)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ---- scoring -------------------------------------------------------------------
    def score_tensors(
        self, model: torch.nn.Module, batch: list[RerankExample]
    ) -> list[torch.Tensor]:
        """Differentiable scores, one 1-D tensor per example (implemented per kind)."""
        raise NotImplementedError

    @torch.no_grad()
    def score(self, batch: list[RerankExample]) -> list[np.ndarray]:
        was = self.model.training
        self.model.eval()
        out: list[np.ndarray] = []
        for s in range(0, len(batch), self.config.batch_size):
            chunk = batch[s : s + self.config.batch_size]
            out += [
                t.float().cpu().numpy().astype(np.float32)
                for t in self.score_tensors(self.model, chunk)
            ]
        self.model.train(was)
        return out

    def tokenize(
        self, texts: list[str], max_length: int | None = None, side: str = "right"
    ) -> dict[str, torch.Tensor]:
        tok = self.tokenizer
        tok.truncation_side = "left"  # keep the end of a prompt (candidates, "Answer:")
        tok.padding_side = side
        enc = tok(
            list(texts),
            padding=True,
            truncation=True,
            return_tensors="pt",
            max_length=max_length or self.config.max_length,
        )
        return {
            k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")
        }

    def answer_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of answers/candidate texts, truncated, ending with EOS."""
        tok, eos = self.tokenizer, self.tokenizer.eos_token_id
        out = []
        for t in texts:
            ids = tok.encode(t, add_special_tokens=False)[: self.config.max_answer_length - 1]
            out.append(ids + ([eos] if eos is not None else []))
        return out

    # ---- training ------------------------------------------------------------------
    def rank_loss(
        self, model: torch.nn.Module, batch: list[RerankExample]
    ) -> dict[str, torch.Tensor]:
        """Listwise CE on ``meta["target"]`` (rank) + BCE on ``meta["label"]`` (yesno)."""
        scores = self.score_tensors(model, batch)
        rank = [i for i, ex in enumerate(batch) if ex.task != "yesno"]
        yn = [i for i, ex in enumerate(batch) if ex.task == "yesno"]
        parts = {}
        if rank:
            target = torch.tensor([int(batch[i].meta["target"]) for i in rank])
            parts["listwise_ce"] = listwise_ce([scores[i] for i in rank], target)
        if yn:
            labels = torch.tensor([float(batch[i].meta["label"]) for i in yn])
            parts["yesno_bce"] = yesno_bce(torch.stack([scores[i][0] for i in yn]), labels)
        loss = sum(parts.values())
        return {"loss": loss, **{k: v.detach() for k, v in parts.items()}}

    def lm_collate(self, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        """(prompt, answer) pairs -> model inputs with ``labels`` (implemented per kind)."""
        raise NotImplementedError

    def lm_loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean token cross-entropy of the answers (labels -100 are ignored)."""
        return model(**batch).loss

    def answer_logprob(self, prompts: list[str], answers: list[str]) -> np.ndarray:
        """Length-normalised log-likelihood of each answer given its prompt (eval mode)."""
        was = self.model.training
        self.model.eval()
        out = []
        with torch.no_grad():
            for s in range(0, len(prompts), self.config.batch_size):
                b = self.lm_collate(
                    list(
                        zip(
                            prompts[s : s + self.config.batch_size],
                            answers[s : s + self.config.batch_size],
                            strict=True,
                        )
                    )
                )
                b = {k: v.to(self.device) for k, v in b.items()}
                labels = b["labels"]
                logits = self.model(**b).logits.float()
                if self.kind == "causal":  # position t predicts token t + 1
                    logits, labels = logits[:, :-1], labels[:, 1:]
                keep = labels != -100
                lp = torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0).unsqueeze(-1))
                lp = (lp.squeeze(-1) * keep).sum(1) / keep.sum(1).clamp(min=1)
                out.append(lp.cpu().numpy())
        self.model.train(was)
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)

    # ---- persistence ---------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        model = self.model
        lora = hasattr(model, "peft_config")
        base_ref = self.backbone.name_or_path
        if base_ref is not None and Path(base_ref).exists():
            base_ref = str(Path(base_ref).resolve())
        if lora:
            model.save_pretrained(directory / "adapter")
            if base_ref is None:  # built in memory: keep a copy of the frozen base
                import copy

                copy.deepcopy(model).unload().save_pretrained(directory / "base")
        else:
            model.save_pretrained(directory / "base")
        self.tokenizer.save_pretrained(directory / "tokenizer")
        meta = {
            "kind": self.kind,
            "config": asdict(self.config),
            "lora": self.backbone.lora.to_dict() if (lora and self.backbone.lora) else None,
            "base": None if (not lora or base_ref is None) else base_ref,
        }
        (directory / "scorer.json").write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, directory: str | Path) -> LMScorer:
        """Rebuild a scorer saved by `save` as this class (a seq2seq or causal scorer; to load
        whichever kind a directory holds, `instructrec.models.lm_load.load_scorer`)."""
        from instructrec.data.errors import DataError
        from instructrec.models.offline import load_any  # a registry key resolves offline

        directory = Path(directory)
        meta_path = directory / "scorer.json"
        if not meta_path.exists():
            raise DataError("not a saved scorer (no scorer.json)", source=str(directory))
        meta = json.loads(meta_path.read_text())
        if meta.get("kind") != getattr(cls, "kind", None):
            raise DataError(
                f"holds a {meta.get('kind')!r} scorer, not a {cls.__name__}", source=str(directory)
            )
        base = meta["base"] or str(directory / "base")
        backbone = load_any(base, meta["kind"], tokenizer=str(directory / "tokenizer"))
        if (directory / "adapter").exists():
            from peft import PeftModel

            backbone.model = PeftModel.from_pretrained(
                backbone.model, directory / "adapter", is_trainable=True
            )
            backbone.lora = LoraSettings(**meta["lora"]) if meta.get("lora") else None
        backbone.name_or_path = meta["base"]
        scorer = cls(backbone, LMScorerConfig(**meta["config"]))
        scorer.model.eval()
        return scorer
