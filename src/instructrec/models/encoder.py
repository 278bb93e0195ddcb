"""Encoder reranker: a MiniLM (+LoRA) instruction tower scored against cached item vectors.

InstructRec (Zhang et al. 2023, "Recommendation as Instruction Following") casts reranking as
an LM reading an instruction (preference P, intention I, task T) and choosing among
candidates. Scoring K candidates as K cross-encoder passes repeats the shared context K times;
here the instruction is encoded ONCE (bi-encoder, listwise over the K candidates):

    q   = mean-pool(MiniLM+LoRA(query text))                 (B, d)   trainable tower
    v_i = frozen MiniLM(item text)  [+ P e_i]                (B, K, d) cached, once per catalogue
    h_j = v of the user's history items                      (B, H, d)
    s_i = head(q, v, h, mask, prior)                         (B, K)

The collaborative signal a small LM lacks enters as ``prior``: z-scored retriever scores
(SASRec, item-kNN, Pop...) per candidate, (B, K, P). The default ``LinearHead`` computes

    s_i = sum_p w_p * prior_{i,p} + <W q, v_i> + <U mean(h), v_i>

HEAD INTERFACE (other heads, e.g. ``models/rr_head.py``, implement this):
    class MyHead(ListwiseHead):
        def __init__(self, dim: int, n_prior: int, **options): ...
        def forward(self, query, cands, hist, hist_mask, prior) -> scores
    query (B, d) float; cands (B, K, d) float; hist (B, H, d) float (zeros where padded);
    hist_mask (B, H) bool (True = real item); prior (B, K, P) float, z-scored within each list
    (P may be 0). Returns (B, K) float scores, higher = better, trained with listwise softmax
    cross-entropy. Register it in ``models.heads.HEADS`` (name -> "module:Class"); config
    ``head: "rr"``.

The `Scorer` over this model is `models.encoder_scorer.EncoderScorer`; every caller builds
the model's inputs and calls it through `models.scoring` (ONE SCORING PATH).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from .encoder_config import EncoderConfig
from .heads import make_head
from .lora import LoraSettings, apply_lora
from .text_encoder import load_encoder, mean_pool


def lora_settings(config) -> LoraSettings:
    """The `LoraSettings` of an `EncoderConfig` (or any config with lora_r, lora_alpha,
    lora_dropout, lora_targets and optionally lora_layers)."""
    return LoraSettings(
        r=config.lora_r,
        alpha=config.lora_alpha,
        dropout=config.lora_dropout,
        target_modules=list(config.lora_targets) if config.lora_targets else None,  # None: auto
        layers=getattr(config, "lora_layers", None),
    )


class EncoderReranker(nn.Module):
    """Query tower (backbone + LoRA) + cached item vectors (+ projected CF vectors) + head."""

    def __init__(
        self,
        config: EncoderConfig,
        item_vecs: np.ndarray,
        cf_vecs: np.ndarray | None = None,
        backbone=None,
        attr_vecs: np.ndarray | None = None,
        adapters: bool = True,
    ) -> None:
        """``adapters=False``: no peft wrapping (an inference tower whose LoRA weights are
        merged by the caller, `bert_lite`)."""
        super().__init__()
        self.config = config
        model = backbone if backbone is not None else load_encoder(config.backbone)[1]
        lora = lora_settings(config) if adapters else replace(lora_settings(config), r=0)
        self.tower = apply_lora(model, lora)  # r 0: a frozen tower
        self._prefix = None  # training: the frozen bottom layers' outputs, cached per text
        if adapters and lora.r > 0 and lora.layers:
            from .frozen_prefix import FrozenPrefix
            from .lora import resolve_layers

            self._prefix = FrozenPrefix.for_tower(
                self.tower, min(resolve_layers(model, lora.layers))
            )
        dim = int(item_vecs.shape[1])
        self.register_buffer(
            "item_vecs", torch.as_tensor(item_vecs, dtype=torch.float32), persistent=False
        )
        self.cf_proj = None
        if config.cf_dim > 0 and cf_vecs is not None:
            self.register_buffer(
                "cf_vecs", torch.as_tensor(cf_vecs, dtype=torch.float32), persistent=False
            )
            self.cf_proj = nn.Linear(cf_vecs.shape[1], dim, bias=False)
            nn.init.zeros_(self.cf_proj.weight)  # starts as pure text vectors
        self.attr_proj = None
        if config.attributes and attr_vecs is not None and attr_vecs.shape[1] > 0:
            self.register_buffer(
                "attr_vecs", torch.as_tensor(attr_vecs, dtype=torch.float32), persistent=False
            )
            self.attr_proj = nn.Linear(attr_vecs.shape[1], dim, bias=False)
            nn.init.zeros_(self.attr_proj.weight)
        self.head = make_head(config.head, dim, config.n_prior, **config.head_options)

    def encode_query(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Unit query vectors (B, d). In training (with grad), a tower adapted on its top layers
        only reads its frozen bottom from `FrozenPrefix` (computed once per text)."""
        if self._prefix is not None and self.training and torch.is_grad_enabled():
            h = self._prefix.forward(input_ids, attention_mask)
        else:
            h = self.tower(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return nn.functional.normalize(mean_pool(h, attention_mask), dim=-1)

    def drop_prefix_cache(self) -> None:
        """Free the training-time cache of the frozen bottom layers (after training)."""
        if self._prefix is not None:
            self._prefix.clear()

    def item_vectors(self, ids: torch.Tensor, cold: torch.Tensor | None = None) -> torch.Tensor:
        """Item vectors for internal ids (any shape) -> (..., d); id -1 gives zeros; ``cold``
        (same shape, bool): items whose CF term is left out (`rerank.cold`)."""
        if not torch.is_grad_enabled():  # inference: one gather from a table built once
            idx = torch.where(ids >= 0, ids, len(self.item_vecs))  # -1: the zero row
            full = self._item_table(cf=True)
            if cold is None or self.cf_proj is None:
                return full[idx]
            return torch.where(cold.unsqueeze(-1), self._item_table(cf=False)[idx], full[idx])
        safe = ids.clamp_min(0)
        v = self.item_vecs[safe]
        if self.cf_proj is not None:
            cf = self.cf_proj(self.cf_vecs[safe])
            v = v + (cf if cold is None else cf * (~cold).unsqueeze(-1).to(cf.dtype))
        if self.attr_proj is not None:
            v = v + self.attr_proj(self.attr_vecs[safe])
        return v * (ids >= 0).unsqueeze(-1).to(v.dtype)

    def _item_table(self, cf: bool = True) -> torch.Tensor:
        """(n_items + 1, d): every cached item's vector as `item_vectors` computes it (text
        + projected CF term unless ``cf`` is False + projected attributes, added in that
        order, so the values are the same), then a zero row for id -1. Rebuilt only when a
        weight or a cached vector changes (in-place version counters), moves or is replaced:
        serving and evaluation gather rows instead of projecting each request's items."""
        used = [self.item_vecs]
        if self.cf_proj is not None:
            used += [self.cf_proj.weight, self.cf_vecs]
        if self.attr_proj is not None:
            used += [self.attr_proj.weight, self.attr_vecs]
        key = (cf, *[(t.device, t.data_ptr(), t._version, t.shape) for t in used])
        tables = self.__dict__.setdefault("_tables", {})
        if tables.get(cf, (None,))[0] != key:
            v = self.item_vecs
            if cf and self.cf_proj is not None:
                v = v + self.cf_proj(self.cf_vecs)
            if self.attr_proj is not None:
                v = v + self.attr_proj(self.attr_vecs)
            tables[cf] = (key, torch.cat([v, v.new_zeros(1, v.shape[1])]))
        return tables[cf][1]

    def forward(
        self,
        input_ids,
        attention_mask,
        cand_ids,
        hist_ids,
        prior,
        cand_vecs: torch.Tensor | None = None,
        query: torch.Tensor | None = None,
        q_index: torch.Tensor | None = None,
        with_content: bool = False,
    ):
        """Scores (B, K). ``cand_vecs`` overrides cached vectors (items outside the cache);
        ``query`` (B, d) skips the tower (precomputed instruction vectors); ``q_index`` (B,)
        maps rows to the distinct texts in ``input_ids`` (each encoded once).
        ``with_content``: (scores, content scores), the second the head's text term alone
        with every candidate's and history item's CF term left out (as for items without
        interactions; `RerankerConfig.text_loss`), from the same query vectors."""
        if query is None:
            query = self.encode_query(input_ids, attention_mask)
            if q_index is not None:
                query = query[q_index]
        cold = prior[..., -1] > 0.5 if self.config.cold_channel else None
        cands = cand_vecs if cand_vecs is not None else self.item_vectors(cand_ids, cold)
        hist = self.item_vectors(hist_ids)
        scores = self.head(query, cands, hist, hist_ids >= 0, prior)
        if not with_content:
            return scores
        text_scores = getattr(self.head, "text_scores", None)
        if text_scores is None:
            raise ValueError(f"head {type(self.head).__name__} has no separate text term")
        if cand_vecs is None:
            cands = self.item_vectors(cand_ids, torch.ones_like(cand_ids, dtype=torch.bool))
        hist = self.item_vectors(hist_ids, torch.ones_like(hist_ids, dtype=torch.bool))
        return scores, text_scores(query, cands, hist, hist_ids >= 0)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Only what training changes: LoRA weights, projections, head."""
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        return {k: v.detach().clone() for k, v in self.state_dict().items() if k in names}
