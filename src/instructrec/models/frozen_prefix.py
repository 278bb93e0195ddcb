"""The frozen bottom of a LoRA-adapted BERT tower, computed once per text in training.

With LoRA on the top layers only (`EncoderConfig.lora_layers`, default the top 3 of 6), the
embeddings and the layers below the lowest adapted one never change during training. The
reranker's instances repeat their query texts (the quickstart's 3,772 training instances have
1,253 distinct texts, a batch of 64 holds ~47, and two epochs pass each text ~4 times), so
`FrozenPrefix` keeps the bottom layers' output per token sequence and each training step runs
only the adapted layers. The bottom layers run in eval mode (no dropout: they are not trained,
and dropout there only perturbs what the adapted layers read); everything above is unchanged,
dropout included. In eval mode the result equals the tower's own forward pass
(tests/models/test_frozen_prefix.py). Three layer conventions are known: BERT's (MiniLM; a
layer takes the hidden states and the attention mask), MPNet's (all-mpnet-base-v2; a layer also
takes the relative position bias the encoder computes once, and returns a tuple) and
NomicBert's (nomic-embed-text-v1.5; the layers sit on the model itself and take the rotary
position embeddings the model computes once). Any other
architecture, or a tower without a frozen bottom, keeps the plain forward pass (`for_tower`
returns None).
"""

from __future__ import annotations

import torch
from torch import nn

MAX_FLOATS = 1 << 26  # cache budget: 256 MiB of float32 hidden states; beyond it, recompute


class FrozenPrefix:
    """Cached outputs of ``bert``'s embeddings + ``layers[:depth]`` per token sequence."""

    def __init__(self, bert: nn.Module, depth: int, max_floats: int = MAX_FLOATS) -> None:
        self.bert, self.depth, self.max_floats = bert, int(depth), int(max_floats)
        self.cache: dict[tuple[int, ...], torch.Tensor] = {}
        self.floats = 0
        self.stamp = None

    @classmethod
    def for_tower(cls, tower: nn.Module, depth: int) -> FrozenPrefix | None:
        """A prefix cache for a (peft-wrapped) BERT-like ``tower`` whose bottom ``depth`` layers
        and embeddings have no trainable parameter; None otherwise."""
        bert = tower.get_base_model() if hasattr(tower, "get_base_model") else tower
        layers = _layers(bert)
        ok = (
            depth > 0
            and hasattr(bert, "embeddings")
            and (hasattr(bert, "_create_attention_masks") or _model_type(bert) in _OWN_MASK)
            and layers is not None
            and depth < len(layers)
            and not getattr(bert.config, "is_decoder", False)
        )
        if not ok:
            return None
        bottom = [bert.embeddings, *layers[:depth]]
        if any(p.requires_grad for m in bottom for p in m.parameters()):
            return None
        return cls(bert, depth)

    def clear(self) -> None:
        self.cache.clear()
        self.floats = 0

    def _check_stamp(self) -> None:
        """Forget everything when a bottom weight was changed, moved or replaced."""
        bottom = [self.bert.embeddings, *_layers(self.bert)[: self.depth]]
        stamp = tuple((p.data_ptr(), p._version, p.device) for m in bottom for p in m.parameters())
        if stamp != self.stamp:
            self.clear()
            self.stamp = stamp

    def _mask(self, attention_mask: torch.Tensor, hidden: torch.Tensor):
        kind = _model_type(self.bert)
        if kind in _OWN_MASK:
            from transformers.masking_utils import create_bidirectional_mask

            mask = create_bidirectional_mask(
                config=self.bert.config, inputs_embeds=hidden, attention_mask=attention_mask
            )
            if kind == "mpnet":
                return mask, self.bert.encoder.compute_position_bias(hidden)
            positions = torch.arange(hidden.shape[1], device=hidden.device)[None, :]
            return mask, self.bert.rotary_emb(hidden, positions)  # (cos, sin)
        mask, _ = self.bert._create_attention_masks(
            attention_mask=attention_mask,
            encoder_attention_mask=None,
            embedding_output=hidden,
            encoder_hidden_states=None,
            cache=None,
        )
        return mask, None

    @staticmethod
    def _layer(layer: nn.Module, hidden: torch.Tensor, mask) -> torch.Tensor:
        attn, bias = mask
        if bias is None:  # BERT
            return layer(hidden, attn)
        if isinstance(bias, tuple):  # NomicBert: rotary (cos, sin), returns the hidden states
            return layer(hidden, attention_mask=attn, position_embeddings=bias)
        return layer(hidden, attn, bias)[0]  # MPNet: (hidden, ...)

    def _bottom(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        bottom = [self.bert.embeddings, *_layers(self.bert)[: self.depth]]
        modes = [m.training for m in bottom]
        try:
            for m in bottom:
                m.eval()
            with torch.no_grad():
                h = self.bert.embeddings(input_ids=input_ids)
                mask = self._mask(attention_mask, h)
                for layer in _layers(self.bert)[: self.depth]:
                    h = self._layer(layer, h, mask)
        finally:
            for m, was in zip(bottom, modes, strict=True):
                m.train(was)
        return h

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Last hidden states (B, L, d): cached bottom, then the adapted layers (with grad)."""
        lengths = attention_mask.sum(1).tolist()
        if any(not bool(attention_mask[i, :n].all()) for i, n in enumerate(lengths)):
            raise ValueError("FrozenPrefix needs right-padded rows (mask = ones then zeros)")
        self._check_stamp()
        ids = input_ids.tolist()
        keys = [tuple(row[:n]) for row, n in zip(ids, lengths, strict=True)]
        rows: dict[int, torch.Tensor] = {}
        miss = [i for i, k in enumerate(keys) if k not in self.cache]
        if miss:
            fresh = self._bottom(input_ids[miss], attention_mask[miss])
            for j, i in enumerate(miss):
                h = fresh[j, : lengths[i]]
                rows[i] = h
                if keys[i] not in self.cache and self.floats + h.numel() <= self.max_floats:
                    self.cache[keys[i]] = h.clone()
                    self.floats += h.numel()
        b, n = input_ids.shape
        d = self.bert.config.hidden_size
        hidden = torch.zeros(b, n, d, device=input_ids.device)
        for i, k in enumerate(keys):
            h = rows.get(i)
            if h is None:
                h = self.cache[k]
            hidden[i, : lengths[i]] = h
        mask = self._mask(attention_mask, hidden)
        for layer in _layers(self.bert)[self.depth :]:
            hidden = self._layer(layer, hidden, mask)
        return hidden


_OWN_MASK = ("mpnet", "nomic_bert")  # built with transformers' create_bidirectional_mask


def _model_type(model: nn.Module) -> str | None:
    return getattr(getattr(model, "config", None), "model_type", None)


def _layers(model: nn.Module):
    """The encoder's layer list: ``encoder.layer`` (BERT, MPNet) or ``layers`` (NomicBert)."""
    if _model_type(model) == "nomic_bert":
        return getattr(model, "layers", None)
    return getattr(getattr(model, "encoder", None), "layer", None)
