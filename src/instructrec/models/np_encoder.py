"""The encoder reranker at inference in NumPy: what `EncoderScorer` computes for a saved
run, without importing torch (`instructrec recommend`'s default runtime).

The same saved files (`EncoderScorer.save`: encoder.json, weights.safetensors, the .npy item
vectors) give the same scores to float32 rounding as `models.encoder.EncoderReranker` in eval
mode (`tests/models/test_np_runtime.py`):

    q   = normalize(mean-pool(NumpyBert + merged LoRA (query text)))       (`np_bert`)
    v_i = item_vecs + cf_vecs P_cf^T + attr_vecs P_attr^T   (one table, zero row for id -1)
    s_i = w . prior_i + <W q, v_i> + <U mean(h), v_i>                     (`LinearHead`)

Supported: a local BERT-style backbone (`bert_files.supports`), the ``linear`` head, LoRA on
query/key/value. `unsupported` names what a run has beyond that; callers then load the
torch scorer (`EncoderScorer.load`). Inference only: nothing here trains.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..np_ops import mean_pool, normalize
from .bert_files import LORA_KEY, default_backbone, lora_scaling, supports
from .encoder_config import (
    EncoderConfig,
    cold_content_features,
    length_passes,
    lora_target_names,
    query_tokens,
)
from .np_bert import load_np_bert

LORA_TARGETS = {"query", "key", "value"}


def _backbone_path(config: EncoderConfig) -> str:
    return str(config.backbone or default_backbone())


def unsupported(config: EncoderConfig) -> str | None:
    """Why a run of ``config`` cannot be scored in NumPy (None when it can)."""
    if config.head != "linear":
        return f"head {config.head!r} (the NumPy runtime has the linear head)"
    targets = lora_target_names(config)
    if config.lora_r > 0 and not targets <= LORA_TARGETS:
        return f"LoRA on {sorted(targets - LORA_TARGETS)}"
    try:
        path = _backbone_path(config)
    except (ImportError, OSError) as e:  # no offline default installed
        return f"no local backbone ({e})"
    if not supports(path):
        return f"backbone {path} is not a local BERT directory"
    return None


class NumpyEncoder:
    """`EncoderReranker` in eval mode, in NumPy (the attributes its callers read: ``config``,
    ``item_vecs``; `encode_queries`, `item_vectors`, `scores`)."""

    def __init__(
        self,
        config: EncoderConfig,
        tokenizer,
        tower,
        item_vecs: np.ndarray,
        weights: dict[str, np.ndarray],
        cf_vecs: np.ndarray | None = None,
        attr_vecs: np.ndarray | None = None,
    ) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.tower = tower
        self.item_vecs = np.asarray(item_vecs, np.float32)
        f32 = {k: np.asarray(v, np.float32) for k, v in weights.items()}
        self.prior_w = f32["head.prior_w"]
        self.cold_content = [int(i) for i in config.head_options.get("cold_content", ())]
        self.cold_w = f32["head.cold_w"] if self.cold_content else None
        self.q_proj = f32["head.q_proj.weight"]
        self.h_proj = f32["head.h_proj.weight"]
        cf_w = f32.get("cf_proj.weight") if config.cf_dim > 0 and cf_vecs is not None else None
        attr_w = (
            f32.get("attr_proj.weight") if config.attributes and attr_vecs is not None else None
        )
        cf = None if cf_w is None else np.asarray(cf_vecs, np.float32) @ cf_w.T
        attr = None if attr_w is None else np.asarray(attr_vecs, np.float32) @ attr_w.T
        # (n_items + 1, d) item vectors, the last row (id -1) zeros; without the CF term only
        # where the cold channel reads it
        self.table = self._table(cf, attr)
        self.table_no_cf = (
            self._table(None, attr) if cf is not None and config.cold_channel else None
        )

    def _table(self, cf: np.ndarray | None, attr: np.ndarray | None) -> np.ndarray:
        v = self.item_vecs  # added in `EncoderReranker._item_table`'s order (same values)
        if cf is not None:
            v = v + cf
        if attr is not None:
            v = v + attr
        return np.concatenate([v, np.zeros((1, v.shape[1]), np.float32)])

    def item_vectors(self, ids: np.ndarray, cold: np.ndarray | None = None) -> np.ndarray:
        ids = np.asarray(ids, np.int64)
        idx = np.where(ids >= 0, ids, len(self.item_vecs))
        if cold is None or self.table_no_cf is None:
            return self.table[idx]
        return np.where(np.asarray(cold)[..., None], self.table_no_cf[idx], self.table[idx])

    def encode_queries(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        """Unit query vectors (len(texts), d): tower passes of at most ``batch_size`` texts of
        similar length (`length_passes`, as the torch runtime), each padded to its longest."""
        out = np.zeros((len(texts), self.item_vecs.shape[1]), np.float32)
        if not texts:
            return out
        tok = self.tokenizer(
            list(texts), max_length=query_tokens(self.config, training=False), return_tensors="np"
        )
        ids, mask = tok["input_ids"], tok["attention_mask"]  # right-padded
        lengths = mask.sum(1)
        for rows in length_passes(lengths, batch_size):
            width = int(lengths[rows].max())
            h = self.tower(ids[rows, :width], mask[rows, :width])
            out[rows] = normalize(mean_pool(h, mask[rows, :width]))
        return out

    def scores(self, query, cand_ids, hist_ids, prior) -> np.ndarray:
        """(B, K) scores: the linear head over the gathered item vectors."""
        prior = np.asarray(prior, np.float32)
        cold = prior[..., -1] > 0.5 if self.config.cold_channel else None
        cands = self.item_vectors(cand_ids, cold)
        hist_ids = np.asarray(hist_ids, np.int64)
        hist = self.item_vectors(hist_ids)
        m = (hist_ids >= 0)[..., None].astype(np.float32)
        h = (hist * m).sum(1) / np.maximum(m.sum(1), np.float32(1.0))
        s = np.einsum("bd,bkd->bk", query @ self.q_proj.T, cands)
        s = s + np.einsum("bd,bkd->bk", h @ self.h_proj.T, cands)
        if self.config.n_prior:
            s = s + (prior * self.prior_w).sum(-1)
        if self.cold_content:  # `models.heads.LinearHead`'s cold weights
            s = s + (cold_content_features(prior, self.cold_content) * self.cold_w).sum(-1)
        return s.astype(np.float32)


class NumpyEncoderScorer:
    """The inference surface of `EncoderScorer` (``model``, ``item_texts``, ``history_len``,
    `score_arrays`, `instruction_item_scores`) over a `NumpyEncoder`."""

    runtime = "numpy"

    def __init__(self, model: NumpyEncoder, item_texts=None, history_len: int = 20) -> None:
        self.model = model
        self.tokenizer = model.tokenizer
        self.item_texts = item_texts
        self.history_len = history_len

    def score_arrays(self, texts, cands, hist, prior, batch_size: int = 256) -> np.ndarray:
        """(n, k) scores of candidate ids ``cands`` for query ``texts``, padded histories
        ``hist`` and z-scored ``prior``: each distinct text encoded once (as
        `models.scoring.score_arrays`)."""
        uniq = list(dict.fromkeys(texts))
        pos = {t: j for j, t in enumerate(uniq)}
        query = self.model.encode_queries(uniq, batch_size)
        index = np.array([pos[t] for t in texts], np.int64)
        out = np.zeros(np.shape(cands)[:2], np.float32)
        for s in range(0, len(texts), batch_size):
            sl = slice(s, s + batch_size)
            out[sl] = self.model.scores(query[index[sl]], cands[sl], hist[sl], prior[sl])
        return out

    def instruction_item_scores(self, texts: list[str]) -> np.ndarray:
        """(len(texts), n_items) <W q, v_i> over every item (`rerank.candidates.dense_scores`)."""
        q = self.model.encode_queries(list(texts), 128) @ self.model.q_proj.T
        return (q @ self.model.table[:-1].T).astype(np.float32)

    @classmethod
    def load(cls, directory: str | Path) -> NumpyEncoderScorer:
        """The scorer `EncoderScorer.save` wrote into ``directory`` (a `ValueError` naming
        what the NumPy runtime lacks when `unsupported` says so)."""
        from safetensors.numpy import load_file

        directory = Path(directory)
        meta = json.loads((directory / "encoder.json").read_text())
        config = EncoderConfig(**meta["config"])
        why = unsupported(config)
        if why is not None:
            raise ValueError(f"{directory}: the NumPy runtime cannot score this run: {why}")
        texts_p = directory / "item_texts.json"
        texts = json.loads(texts_p.read_text()) if texts_p.exists() else None

        def npy(name):
            p = directory / name
            return np.load(p, allow_pickle=False) if p.exists() else None

        state = load_file(str(directory / "weights.safetensors"))
        tok, tower = load_np_bert(_backbone_path(config))
        adapted = tower.merge_lora(
            {k: v for k, v in state.items() if LORA_KEY in k},
            lora_scaling(config.lora_alpha, config.lora_r),
        )
        if config.lora_r > 0 and adapted == 0 and any(LORA_KEY in k for k in state):
            raise ValueError(f"{directory}: LoRA weights that fit no layer")
        model = NumpyEncoder(
            config,
            tok,
            tower,
            npy("item_vecs.npy"),
            {k: v for k, v in state.items() if LORA_KEY not in k},
            cf_vecs=npy("cf_vecs.npy"),
            attr_vecs=npy("attr_vecs.npy"),
        )
        return cls(model, texts, meta.get("history_len", 20))
