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

ONE SCORING PATH: every caller of the model (serving and evaluation through
`InstructionReranker.score_candidates`, the service's micro-batches through
`rerank.batched`, the `Scorer` contract through `EncoderScorer.score`,
the training loss, validation, feedback tuning) builds its inputs with `batch_tensors` and
calls the model through `score_batch`; `score_arrays` is the batched no-grad loop over them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .base import RerankExample, Scorer
from .heads import make_head
from .lora import LoraSettings, apply_lora
from .text_encoder import default_backbone, encode_texts, load_encoder, mean_pool


# ---------------------------------------------------------------------- model
@dataclass
class EncoderConfig:
    """The encoder reranker's architecture (everything needed to rebuild it)."""

    backbone: str | None = None  # local dir or hub id; None = offline all-MiniLM-L6-v2
    lora_r: int = 8  # LoRA rank on the query tower (0 = freeze the tower entirely)
    lora_alpha: int = 16  # LoRA scaling numerator
    lora_dropout: float = 0.05  # dropout on the LoRA branch
    lora_targets: list[str] = field(default_factory=lambda: ["query", "value"])  # modules to adapt
    lora_layers: list[int] | None = field(default_factory=lambda: [-3, -2, -1])  # adapt only
    #   these layers (negative: from the top; None = all); the backward pass then stops at the
    #   lowest adapted one: the top 3 of MiniLM's 6 train 1.5x faster (docs/speed.md)
    max_query_len: int = 48  # tokens of instruction text fed to the tower
    head: str = "linear"  # "linear" | "rr" (see HEADS)
    head_options: dict = field(default_factory=dict)  # passed to the head's constructor
    n_prior: int = 3  # prior features per candidate (retrievers), z-scored within a list
    cf_dim: int = 64  # >0: add projected retriever item embeddings (e.g. SASRec's) to item vecs
    cold_channel: bool = False  # the last prior channel is 0/1 "cold item": a cold candidate's
    #                             CF term is dropped (`rerank.cold`; derived from cold_dropout)
    attributes: bool = True  # add projected item attributes (genres, decade, ...) to item vecs


def lora_settings(config) -> LoraSettings:
    """The `LoraSettings` of an `EncoderConfig` (or any config with lora_r, lora_alpha,
    lora_dropout, lora_targets and optionally lora_layers)."""
    return LoraSettings(
        r=config.lora_r,
        alpha=config.lora_alpha,
        dropout=config.lora_dropout,
        target_modules=list(config.lora_targets),
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
    ):
        """Scores (B, K). ``cand_vecs`` overrides cached vectors (items outside the cache);
        ``query`` (B, d) skips the tower (precomputed instruction vectors); ``q_index`` (B,)
        maps rows to the distinct texts in ``input_ids`` (each encoded once)."""
        if query is None:
            query = self.encode_query(input_ids, attention_mask)
            if q_index is not None:
                query = query[q_index]
        cold = prior[..., -1] > 0.5 if self.config.cold_channel else None
        cands = cand_vecs if cand_vecs is not None else self.item_vectors(cand_ids, cold)
        hist = self.item_vectors(hist_ids)
        return self.head(query, cands, hist, hist_ids >= 0, prior)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Only what training changes: LoRA weights, projections, head."""
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        return {k: v.detach().clone() for k, v in self.state_dict().items() if k in names}


def zscore(prior: np.ndarray) -> np.ndarray:
    """Standardise each (K,) list of each prior feature: (..., K, P) -> same shape."""
    prior = np.nan_to_num(prior.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    mu = prior.mean(axis=-2, keepdims=True)
    sd = prior.std(axis=-2, keepdims=True)
    return (prior - mu) / np.maximum(sd, 1e-6)


def pad_histories(histories: list[np.ndarray], max_len: int) -> np.ndarray:
    """(B, H) int64, most recent ``max_len`` items, right-aligned; -1 where empty."""
    out = np.full((len(histories), max(1, max_len)), -1, np.int64)
    for i, h in enumerate(histories):
        h = np.asarray(h, dtype=np.int64)[-max_len:] if max_len else np.empty(0, np.int64)
        if len(h):
            out[i, -len(h) :] = h
    return out


# ---------------------------------------------------------------------- the scoring path
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
    padded history ids ``hist`` (B, H) (`pad_histories`), z-scored ``prior`` (B, K, P).
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


def score_batch(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Scores (B, K) of ``model`` (an `EncoderReranker`, possibly wrapped for training) for a
    batch of `batch_tensors` (other keys are ignored; ``cand_vecs``: vectors of items outside
    the cache; ``query``: precomputed (B, d) query vectors, then the token keys may be left
    out). The one place the model is called."""
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
    sorted by token count, ``batch_size`` per pass, each pass trimmed to its own longest row
    (right padding is masked, so only the work changes). ``tokenizer`` is called as
    ``tokenizer(texts, padding=True, truncation=True, max_length=N, return_tensors="pt")``
    (transformers' and `bert_lite`'s tokenizers both answer that)."""
    net = _unwrap(model)
    dev = next(net.parameters()).device
    if not texts:
        return torch.zeros(0, net.item_vecs.shape[1], device=dev)
    tok = tokenizer(
        list(texts),
        padding=True,
        truncation=True,
        max_length=net.config.max_query_len,
        return_tensors="pt",
    )
    ids, mask = tok["input_ids"], tok["attention_mask"]
    lengths = mask.sum(1)
    if getattr(tokenizer, "padding_side", "right") != "right":  # trimming would cut tokens
        lengths = torch.full_like(lengths, ids.shape[1])
    order = torch.argsort(lengths, stable=True)
    parts = []
    for s in range(0, len(order), batch_size):
        rows = order[s : s + batch_size]
        width = int(lengths[rows].max())
        parts.append(net.encode_query(ids[rows, :width].to(dev), mask[rows, :width].to(dev)))
    out = torch.empty(len(texts), parts[0].shape[1], device=dev, dtype=parts[0].dtype)
    out[order.to(dev)] = torch.cat(parts)
    return out


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)  # DDP / accelerate wrap the network in .module


# ---------------------------------------------------------------------- scorer
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
            max_length=self.model.config.max_query_len,
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
            s = score_batch(
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
        """`score_arrays` in eval mode: (n, k) scores of candidate ids ``cands`` for query
        ``texts``, padded histories ``hist`` and z-scored ``prior`` (what serving runs)."""
        self.model.eval()
        return score_arrays(self.model, self.tokenizer, texts, cands, hist, prior, batch_size)

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
            from .bert_lite import LORA_KEY, lora_scaling

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
    from .bert_lite import load_lite, supports

    path = config.backbone or default_backbone()
    if config.lora_r > 0 and not set(config.lora_targets) <= {"query", "value", "key"}:
        return None
    return load_lite(path) if supports(path) else None


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
