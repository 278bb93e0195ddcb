"""The frozen text side of the encoder reranker: loading MiniLM, mean-pool, encode item
texts once, and fingerprint the resulting cache (loading: `models.loading.load_backbone`)."""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import nn

from .bert_files import default_backbone


def load_encoder(name_or_path: str | None = None):
    """(tokenizer, fp32 AutoModel) of an encoder backbone, from an offline registry key
    (`models.offline`), a local directory or a hub id (MiniLM by default), through the one
    loader `models.loading.load_backbone`."""
    from .loading import load_backbone
    from .offline import OFFLINE_BACKBONES, load_any

    if name_or_path in OFFLINE_BACKBONES:  # a registry key (e.g. all-mpnet-base-v2), offline
        bb = load_any(name_or_path, "encoder", dtype="float32")
    else:
        bb = load_backbone(name_or_path or default_backbone(), "encoder", dtype="float32")
    return bb.tokenizer, bb.model


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of token vectors over the attention mask (sentence-transformers pooling)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)


@torch.no_grad()
def encode_texts(
    tokenizer, model, texts: list[str], max_len: int = 64, batch_size: int = 128
) -> np.ndarray:
    """L2-normalised mean-pooled vectors (n, d) of ``texts`` (frozen encoder, eval mode)."""
    was_training = model.training
    model.eval()
    out = []
    order = np.argsort([len(t) for t in texts], kind="stable")  # length-bucket for speed
    for s in range(0, len(texts), batch_size):
        chunk = [texts[i] for i in order[s : s + batch_size]]
        tok = tokenizer(
            chunk, padding=True, truncation=True, max_length=max_len, return_tensors="pt"
        )
        h = model(
            input_ids=tok["input_ids"], attention_mask=tok["attention_mask"]
        ).last_hidden_state
        out.append(nn.functional.normalize(mean_pool(h, tok["attention_mask"]), dim=-1).numpy())
    model.train(was_training)
    vecs = np.concatenate(out) if out else np.zeros((0, model.config.hidden_size), np.float32)
    res = np.empty_like(vecs)
    res[order] = vecs
    return res.astype(np.float32)


def item_text_vectors(
    texts: list[str], backbone: str | None = None, max_len: int = 64
) -> np.ndarray:
    """Unit-length frozen vectors (n, d) of ``texts`` from ``backbone`` (the shipped MiniLM when
    None): what a text retriever (`retrieval.titleknn`) is given as its ``text_encoder``."""
    tokenizer, model = load_encoder(backbone)
    return encode_texts(tokenizer, model, [str(t) for t in texts], max_len=max_len)


def texts_digest(texts: list[str], backbone: str) -> str:
    """Content hash identifying an item-vector cache (texts + backbone)."""
    h = hashlib.sha256(backbone.encode())
    for t in texts:
        h.update(t.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]
