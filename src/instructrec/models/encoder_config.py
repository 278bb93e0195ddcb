"""The encoder reranker's architecture record and its array helpers, without torch.

`EncoderConfig` is what a saved run's ``encoder.json`` holds; `zscore` and `pad_histories`
build the prior and history arrays every scoring path feeds (`models.encoder` with torch,
`models.np_encoder` with NumPy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class EncoderConfig:
    """The encoder reranker's architecture (everything needed to rebuild it)."""

    backbone: str | None = None  # local dir or hub id; None = offline all-MiniLM-L6-v2
    lora_r: int = 8  # LoRA rank on the query tower (0 = freeze the tower entirely)
    lora_alpha: int = 16  # LoRA scaling numerator
    lora_dropout: float = 0.05  # dropout on the LoRA branch
    lora_targets: list[str] | None = field(default_factory=lambda: ["query", "value"])  # modules
    #   to adapt (None: the architecture's default, e.g. [q, v] for MPNet)
    lora_layers: list[int] | None = field(default_factory=lambda: [-3, -2, -1])  # adapt only
    #   these layers (negative: from the top; None = all); the backward pass then stops at the
    #   lowest adapted one: the top 3 of MiniLM's 6 train 1.5x faster (docs/speed.md)
    max_query_len: int = 48  # tokens of instruction text fed to the tower while it trains
    #   (a step's cost); passes that do not train read up to READ_QUERY_LEN (`query_tokens`)
    head: str = "linear"  # "linear" | "rr" (see HEADS)
    head_options: dict = field(default_factory=dict)  # passed to the head's constructor
    n_prior: int = 3  # prior features per candidate (retrievers), z-scored within a list
    cf_dim: int = 64  # >0: add projected retriever item embeddings (e.g. SASRec's) to item vecs
    cold_channel: bool = False  # the last prior channel is 0/1 "cold item": a cold candidate's
    #                             CF term is dropped (`rerank.cold`; derived from cold_dropout)
    attributes: bool = True  # add projected item attributes (genres, decade, ...) to item vecs


READ_QUERY_LEN = 256  # tokens of a query text read when the tower does not train


def query_tokens(config: EncoderConfig, training: bool) -> int:
    """Tokens of a query text the tower reads: ``max_query_len`` in a training pass (the
    step's cost), at least `READ_QUERY_LEN` in any other (scoring, serving, validation), so
    a request longer than what training wrote is read whole instead of losing its end."""
    return config.max_query_len if training else max(config.max_query_len, READ_QUERY_LEN)


LENGTH_SPREAD = 2.0  # a pass that does not train holds texts within 2x of its shortest


def length_passes(
    lengths, batch_size: int, spread: float | None = LENGTH_SPREAD
) -> list[np.ndarray]:
    """Rows of texts with token counts ``lengths``, in tower passes: shortest first, at most
    ``batch_size`` a pass and, with ``spread``, a new pass where a text is more than ``spread``
    x the pass's shortest, so that in a pass padded to its longest row one long request does
    not make a whole batch of short ones cost its length (None: batch size only, as training
    steps run)."""
    lengths = np.asarray(lengths)
    order = np.argsort(lengths, kind="stable")
    passes, start = [], 0
    for i in range(1, len(order) + 1):
        if (
            i == len(order)
            or i - start == batch_size
            or (spread is not None and lengths[order[i]] > spread * max(lengths[order[start]], 1))
        ):
            passes.append(order[start:i])
            start = i
    return passes


def lora_target_names(config: EncoderConfig) -> set[str]:
    """The modules the tower's LoRA adapts, as named in a BERT tower (None: BERT's default,
    query and value): what the torch-only and NumPy runtimes check they can merge."""
    return set(config.lora_targets or ("query", "value"))


def zscore(prior: np.ndarray) -> np.ndarray:
    """Standardise each (K,) list of each prior feature: (..., K, P) -> same shape."""
    prior = np.nan_to_num(prior.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    mu = prior.mean(axis=-2, keepdims=True)
    sd = prior.std(axis=-2, keepdims=True)
    return (prior - mu) / np.maximum(sd, 1e-6)


def cold_content_features(prior, cold_content):
    """(..., K, len(cold_content)): the content channels ``cold_content`` (indices) of
    ``prior`` (..., K, P) times the cold channel (the last); torch or NumPy arrays alike
    (`models.heads.LinearHead`'s cold weights read them)."""
    return prior[..., list(cold_content)] * prior[..., -1:]


def pad_histories(histories: list[np.ndarray], max_len: int) -> np.ndarray:
    """(B, H) int64, most recent ``max_len`` items, right-aligned; -1 where empty."""
    out = np.full((len(histories), max(1, max_len)), -1, np.int64)
    for i, h in enumerate(histories):
        h = np.asarray(h, dtype=np.int64)[-max_len:] if max_len else np.empty(0, np.int64)
        if len(h):
            out[i, -len(h) :] = h
    return out
