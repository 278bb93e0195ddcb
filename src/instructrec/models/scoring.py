"""The one scoring path of the encoder reranker (`models.encoder.EncoderReranker`).

Every caller of the model (serving and evaluation through
`InstructionReranker.score_candidates`, the service's micro-batches through
`rerank.batched`, the `Scorer` contract through `EncoderScorer.score`,
the training loss, validation, feedback tuning) builds its inputs with `batch_tensors` and
calls the model through `score_batch`; `score_arrays` is the batched no-grad loop over them.
`encode_queries` encodes each distinct instruction once, shortest texts together.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .encoder_config import LENGTH_SPREAD, length_passes, query_tokens


def batch_tensors(
    tokenizer,
    max_len: int,
    texts: list[str],
    cands: np.ndarray,
    hist: np.ndarray,
    prior: np.ndarray,
    dedupe: bool = False,
) -> dict[str, torch.Tensor]:
    """The model's inputs for a batch: query ``texts`` (B,), candidate ids ``cands`` (B, K),
    padded history ids ``hist`` (B, H) (`models.encoder.pad_histories`), z-scored ``prior`` (B, K, P).
    ``dedupe``: each distinct text is tokenized (and encoded) once, ``q_index`` maps rows."""
    uniq = list(dict.fromkeys(texts)) if dedupe else list(texts)
    tok = tokenizer(uniq, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
    out = {
        "input_ids": tok["input_ids"],
        "attention_mask": tok["attention_mask"],
        "cands": torch.as_tensor(cands),
        "hist": torch.as_tensor(hist),
        "prior": torch.as_tensor(prior),
    }
    if dedupe:
        pos = {t: j for j, t in enumerate(uniq)}
        out["q_index"] = torch.as_tensor([pos[t] for t in texts])
    return out


def score_batch(model: nn.Module, batch: dict[str, torch.Tensor], with_content: bool = False):
    """Scores (B, K) of ``model`` (an `EncoderReranker`, possibly wrapped for training) for a
    batch of `batch_tensors` (other keys are ignored; ``cand_vecs``: vectors of items outside
    the cache; ``query``: precomputed (B, d) query vectors, then the token keys may be left
    out). The one place the model is called. ``with_content``: (scores, content scores)
    (`EncoderReranker.forward`)."""
    dev = next(model.parameters()).device
    keys = ("q_index", "cand_vecs", "query")
    extra = {k: batch[k].to(dev) for k in keys if batch.get(k) is not None}
    ids, mask = batch.get("input_ids"), batch.get("attention_mask")
    return model(
        ids.to(dev) if ids is not None else None,
        mask.to(dev) if mask is not None else None,
        batch["cands"].to(dev),
        batch["hist"].to(dev),
        batch["prior"].to(dev),
        **extra,
        **({"with_content": True} if with_content else {}),
    )


def score_arrays(
    model: nn.Module,
    tokenizer,
    texts: list[str],
    cands: np.ndarray,
    hist: np.ndarray,
    prior: np.ndarray,
    batch_size: int = 256,
) -> np.ndarray:
    """Scores (n, k) float32 of ``n`` rows, no grad (the model's train/eval mode is left as
    it is). Each distinct text is encoded once (`encode_queries`; templates repeat across
    users, so an evaluation has far fewer texts than rows), then ``batch_size`` rows per
    `score_batch` with those query vectors."""
    out = np.zeros(np.shape(cands)[:2], np.float32)
    uniq = list(dict.fromkeys(texts))
    pos = {t: j for j, t in enumerate(uniq)}
    index = torch.as_tensor([pos[t] for t in texts], dtype=torch.long)
    with torch.no_grad():
        query = encode_queries(model, tokenizer, uniq, batch_size)
        for s in range(0, len(texts), batch_size):
            sl = slice(s, s + batch_size)
            batch = {
                "cands": torch.as_tensor(cands[sl]),
                "hist": torch.as_tensor(hist[sl]),
                "prior": torch.as_tensor(prior[sl]),
                "query": query[index[sl]],
            }
            out[sl] = score_batch(model, batch).float().cpu().numpy()
    return out


def encode_queries(model: nn.Module, tokenizer, texts: list[str], batch_size: int = 256):
    """Query vectors (len(texts), d) of the model's tower, in the caller's grad mode: texts
    sorted by token count, in passes of at most ``batch_size`` texts of similar length
    (`length_passes`), each pass trimmed to its own longest row (right padding is masked, so
    only the work changes). ``tokenizer`` is called as
    ``tokenizer(texts, padding=True, truncation=True, max_length=N, return_tensors="pt")``
    (transformers' and `bert_lite`'s tokenizers both answer that)."""
    net = _unwrap(model)
    dev = next(net.parameters()).device
    if not texts:
        return torch.zeros(0, net.item_vecs.shape[1], device=dev)
    training = torch.is_grad_enabled()
    tok = tokenizer(
        list(texts),
        padding=True,
        truncation=True,
        max_length=query_tokens(net.config, training),
        return_tensors="pt",
    )
    ids, mask = tok["input_ids"], tok["attention_mask"]
    lengths = mask.sum(1)
    if getattr(tokenizer, "padding_side", "right") != "right":  # trimming would cut tokens
        lengths = torch.full_like(lengths, ids.shape[1])
    spread = None if training else LENGTH_SPREAD  # a training step keeps its batch in one pass
    passes = [torch.as_tensor(p) for p in length_passes(lengths.numpy(), batch_size, spread)]
    parts = []
    for rows in passes:
        width = int(lengths[rows].max())
        parts.append(net.encode_query(ids[rows, :width].to(dev), mask[rows, :width].to(dev)))
    out = torch.empty(len(texts), parts[0].shape[1], device=dev, dtype=parts[0].dtype)
    out[torch.cat(passes).to(dev)] = torch.cat(parts)
    return out


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)  # DDP / accelerate wrap the network in .module
