"""`EncoderScorer`: the `Scorer` contract over the encoder reranker (`models.encoder`).

One tower pass per instruction, K candidates at once, through the one scoring path
(`models.scoring`); candidates outside the item-vector cache are encoded with the frozen
backbone. ``save``/``load`` keep a scorer as data: encoder.json + trainable weights
(safetensors) + the cached vectors as .npy; ``load(inference_only=True)`` runs the tower on
`bert_lite` (no transformers/peft import).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from . import scoring  # called as scoring.score_batch: the one place the model is called
from .base import RerankExample, Scorer
from .bert_files import default_backbone
from .encoder import EncoderReranker
from .encoder_config import (
    EncoderConfig,
    lora_target_names,
    pad_histories,
    query_tokens,
    zscore,
)
from .text_encoder import encode_texts, load_encoder


class EncoderScorer(Scorer):
    """`Scorer` over `EncoderReranker`: one tower pass per instruction, K candidates at once."""

    def __init__(
        self,
        model: EncoderReranker,
        tokenizer,
        item_texts: list[str] | None = None,
        history_len: int = 20,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.item_texts = item_texts
        self.history_len = history_len

    @classmethod
    def build(
        cls,
        item_texts: list[str],
        config: EncoderConfig | None = None,
        cf_vecs: np.ndarray | None = None,
        item_vecs: np.ndarray | None = None,
        history_len: int = 20,
        attr_vecs: np.ndarray | None = None,
        loaded: tuple | None = None,
    ) -> EncoderScorer:
        """A fresh scorer: loads the backbone (unless ``loaded``, the (tokenizer, model) pair
        `load_encoder` returned for ``config.backbone``), caches item vectors (unless given)."""
        config = config or EncoderConfig()
        tok, model = loaded if loaded is not None else load_encoder(config.backbone)
        if item_vecs is None:
            item_vecs = encode_texts(tok, model, item_texts)
        return cls(
            EncoderReranker(config, item_vecs, cf_vecs, backbone=model, attr_vecs=attr_vecs),
            tok,
            item_texts,
            history_len,
        )

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=query_tokens(self.model.config, training=torch.is_grad_enabled()),
            return_tensors="pt",
        )

    def prior_array(self, examples: list[RerankExample]) -> np.ndarray:
        """(B, K, P) z-scored priors; zeros where an example has none."""
        n_p = self.model.config.n_prior
        k = len(examples[0].candidate_texts)
        out = np.zeros((len(examples), k, n_p), np.float32)
        for i, ex in enumerate(examples):
            if ex.prior is not None and n_p:
                p = np.asarray(ex.prior, np.float32).reshape(k, -1)[:, :n_p]
                out[i, :, : p.shape[1]] = zscore(p)
        return out

    permutation_equivariant = True  # the linear head scores each candidate on its own

    def _forward(self, batch: list[RerankExample]) -> list[torch.Tensor]:
        """Score tensors, one per example (groups of equal candidate count share a pass)."""
        dev = self.model.item_vecs.device
        results: list[torch.Tensor | None] = [None] * len(batch)
        groups: dict[int, list[int]] = {}
        for i, ex in enumerate(batch):
            groups.setdefault(len(ex.candidate_texts), []).append(i)
        for k, idx in groups.items():
            exs = [batch[i] for i in idx]
            if k == 0:
                for i in idx:
                    results[i] = torch.zeros(0, device=dev)
                continue
            tok = self.tokenize([ex.instruction for ex in exs])
            n_cached = len(self.model.item_vecs)
            known = all(
                ex.candidate_ids is not None
                and np.all(
                    (np.asarray(ex.candidate_ids) >= 0) & (np.asarray(ex.candidate_ids) < n_cached)
                )
                for ex in exs
            )
            ids = [
                np.asarray(ex.candidate_ids, np.int64) if known else np.full(k, -1, np.int64)
                for ex in exs
            ]
            cand_vecs = None
            if not known:  # texts outside the cache: encode them with the frozen backbone
                texts = [t for ex in exs for t in ex.candidate_texts]
                tower = self.model.tower
                ctx = tower.disable_adapter() if hasattr(tower, "disable_adapter") else _Null()
                with ctx:
                    v = encode_texts(self.tokenizer, tower, texts)
                cand_vecs = torch.as_tensor(v).view(len(exs), k, -1).to(dev)
            hists = [
                ex.history_ids if ex.history_ids is not None else np.empty(0, np.int64)
                for ex in exs
            ]
            s = scoring.score_batch(
                self.model,
                {
                    "input_ids": tok["input_ids"],
                    "attention_mask": tok["attention_mask"],
                    "cands": torch.as_tensor(np.stack(ids)),
                    "hist": torch.as_tensor(pad_histories(hists, self.history_len)),
                    "prior": torch.as_tensor(self.prior_array(exs)),
                    "cand_vecs": cand_vecs,
                },
            )
            for j, i in enumerate(idx):
                results[i] = s[j]
        return results  # type: ignore[return-value]

    @torch.no_grad()
    def score(self, batch: list[RerankExample]) -> list[np.ndarray]:
        """One float32 array per example (higher = better)."""
        self.model.eval()
        return [s.float().cpu().numpy().astype(np.float32) for s in self._forward(batch)]

    def score_arrays(
        self,
        texts: list[str],
        cands: np.ndarray,
        hist: np.ndarray,
        prior: np.ndarray,
        batch_size: int = 256,
    ) -> np.ndarray:
        """`scoring.score_arrays` in eval mode: (n, k) scores of candidate ids ``cands`` for query
        ``texts``, padded histories ``hist`` and z-scored ``prior`` (what serving runs)."""
        self.model.eval()
        return scoring.score_arrays(
            self.model, self.tokenizer, texts, cands, hist, prior, batch_size
        )

    def instruction_item_scores(self, texts: list[str]) -> np.ndarray:
        """(len(texts), n_items) <W q, v_i> of each query text against every cached item's
        vector (text + projected attributes and CF embeddings): the head's instruction-item
        term, W its query projection (`rerank.candidates.dense_scores`)."""
        model = self.model
        proj = getattr(model.head, "q_proj", None)
        if proj is None:
            proj = getattr(model.head, "q_match", None)
        dev = model.item_vecs.device
        model.eval()
        out = []
        with torch.no_grad():
            vecs = model.item_vectors(torch.arange(len(model.item_vecs), device=dev))
            for s in range(0, len(texts), 128):
                tok = self.tokenize(texts[s : s + 128])
                q = model.encode_query(tok["input_ids"].to(dev), tok["attention_mask"].to(dev))
                if proj is not None:
                    q = proj(q)
                out.append((q @ vecs.T).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(model.item_vecs)), np.float32)

    def rank_loss(self, model, batch: list[RerankExample]) -> torch.Tensor:
        """Listwise softmax cross-entropy of ``meta["target"]`` (the engine's ``loss_fn``)."""
        scores = self._forward(batch)
        losses = [
            torch.nn.functional.cross_entropy(
                s[None].float(), torch.tensor([ex.meta["target"]], device=s.device)
            )
            for s, ex in zip(scores, batch, strict=True)
        ]
        return torch.stack(losses).mean()

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> None:
        """encoder.json + trainable weights (safetensors) + the item-vector cache (+ CF
        vectors) as .npy; `load` reads them back without unpickling anything."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "encoder.json").write_text(
            json.dumps(
                {"config": asdict(self.model.config), "history_len": self.history_len}, indent=2
            )
        )
        from safetensors.torch import save_file

        save_file(
            {
                k: v.detach().cpu().contiguous().clone()
                for k, v in self.model.trainable_state().items()
            },
            str(directory / "weights.safetensors"),
        )
        np.save(directory / "item_vecs.npy", self.model.item_vecs.cpu().numpy())
        if self.model.cf_proj is not None:
            np.save(directory / "cf_vecs.npy", self.model.cf_vecs.cpu().numpy())
        if self.model.attr_proj is not None:
            np.save(directory / "attr_vecs.npy", self.model.attr_vecs.cpu().numpy())
        if self.item_texts is not None:
            (directory / "item_texts.json").write_text(json.dumps(list(self.item_texts)))

    @classmethod
    def load(cls, directory: str | Path, inference_only: bool = False) -> EncoderScorer:
        """A scorer saved by `save`. ``inference_only``: the query tower is `bert_lite`'s
        torch-only BERT with the LoRA weights merged (same scores, no transformers/peft
        import; cannot be trained further) when the backbone is a local BERT directory."""
        from safetensors.torch import load_file

        directory = Path(directory)
        meta = json.loads((directory / "encoder.json").read_text())
        config = EncoderConfig(**meta["config"])
        cf = directory / "cf_vecs.npy"
        attr = directory / "attr_vecs.npy"
        texts_p = directory / "item_texts.json"
        texts = json.loads(texts_p.read_text()) if texts_p.exists() else None
        arrays = {
            "cf_vecs": np.load(cf, allow_pickle=False) if cf.exists() else None,
            "item_vecs": np.load(directory / "item_vecs.npy", allow_pickle=False),
            "attr_vecs": np.load(attr, allow_pickle=False) if attr.exists() else None,
        }
        history_len = meta.get("history_len", 20)
        state = load_file(str(directory / "weights.safetensors"))
        lite = _lite_backbone(config) if inference_only else None
        if lite is not None:
            from .bert_files import LORA_KEY, lora_scaling

            tok, tower = lite
            model = EncoderReranker(config, backbone=tower, adapters=False, **arrays)
            tower.merge_lora(
                {k: v for k, v in state.items() if LORA_KEY in k},
                lora_scaling(config.lora_alpha, config.lora_r),
            )
            state = {k: v for k, v in state.items() if LORA_KEY not in k}
            scorer = cls(model, tok, texts, history_len)
        else:
            scorer = cls.build(texts or [], config, history_len=history_len, **arrays)
        missing = set(state) - set(scorer.model.state_dict())
        if missing:
            raise ValueError(f"{directory}: weights do not fit the model ({sorted(missing)[:3]})")
        scorer.model.load_state_dict(state, strict=False)
        scorer.model.eval()
        return scorer


def _lite_backbone(config: EncoderConfig):
    """(tokenizer, `BertLite`) for ``config.backbone`` when it is a local BERT directory and
    the adapters are plain LoRA on query/value; None otherwise (load transformers instead)."""
    from .bert_files import supports
    from .bert_lite import load_lite

    path = config.backbone or default_backbone()
    if config.lora_r > 0 and not lora_target_names(config) <= {"query", "value", "key"}:
        return None
    return load_lite(path) if supports(path) else None


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
