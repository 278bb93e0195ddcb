"""Joint reader: the request and every candidate read together, in ONE encoder pass.

The bi-encoder reranker (`instructrec.rerank.reranker`) compares a 48-token query vector
with one frozen vector per item: no instruction token ever attends to a candidate token.
Here, as in LlamaRec's single-pass verbaliser (Yue et al. 2023) but for an encoder, one
sequence per request holds the query and all candidates:

    [CLS] instruction + last history titles [SEP] cand_1 text [SEP] cand_2 text [SEP] ...

MiniLM (+ LoRA) reads it once; candidate i's text score comes from ITS span only
(mean-pooled hidden states of its tokens, with the mean-pooled query, through a small MLP):

    s_i = sum_p w_p prior_{i,p} + mlp([c_i, c_i * q])

``prior`` holds the same stacked retriever scores (z-scored within the list) and the
intention-match channel as the bi-encoder's linear head; ``w`` starts at the priors-only fit
and the MLP's last layer at zero, so an untrained model IS that fit (`score-mix` is this
model minus the text).

Layouts (``JointConfig.layout``):
- ``"parallel"`` (default): every candidate segment restarts its position ids right after the
  query and attends to the query and to itself only (the query attends to everything), as in
  parallel context windows (Ratner et al. 2023). Permuting the candidates permutes the
  scores exactly: no position bias, nothing to learn about order.
- ``"sequential"``: plain concatenation with running positions and full attention (LlamaRec's
  layout); order matters, so training shuffles the candidates of every instance each epoch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

LAYOUTS = ("parallel", "sequential")


@dataclass
class JointConfig:
    """The joint reader's architecture and text budgets (everything needed to rebuild it)."""

    backbone: str | None = None  # local dir or hub id; None = offline all-MiniLM-L6-v2
    lora_r: int = 8  # LoRA rank on the backbone (0 = frozen backbone, only the head trains)
    lora_alpha: int = 16  # LoRA scaling numerator
    lora_dropout: float = 0.05  # dropout on the LoRA branch
    lora_targets: list[str] = field(default_factory=lambda: ["query", "value"])
    query_tokens: int = 64  # token budget of the query text (instruction + history titles)
    cand_tokens: int = 16  # token budget of each candidate's text (title, year, genres)
    layout: str = "parallel"  # "parallel" | "sequential" (see the module docstring)
    head_dim: int = 64  # hidden width of the per-candidate text MLP
    n_prior: int = 4  # prior channels per candidate (retrievers + intention match)
    intent_match: bool = True  # the last prior channel is the intention match
    query_history: int = 3  # most recent history titles written into the query text

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {list(LAYOUTS)}, not {self.layout!r}")


def special_ids(tokenizer) -> tuple[int, int, int]:
    """(cls, sep, pad) ids; tokenizers without CLS/SEP use BOS/EOS."""
    cls_id = tokenizer.cls_token_id
    sep_id = tokenizer.sep_token_id
    cls_id = tokenizer.bos_token_id if cls_id is None else cls_id
    sep_id = tokenizer.eos_token_id if sep_id is None else sep_id
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    if cls_id is None or sep_id is None:
        raise ValueError("the tokenizer has neither CLS/SEP nor BOS/EOS tokens")
    return int(cls_id), int(sep_id), int(pad_id)


def token_lists(tokenizer, texts: list[str], budget: int) -> list[list[int]]:
    """Token ids of each text without special tokens, cut to ``budget`` tokens."""
    if not texts:
        return []
    enc = tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=budget)
    return [list(map(int, ids))[:budget] for ids in enc["input_ids"]]


def pack(
    query_ids: list[list[int]],
    cand_ids: list[list[list[int]]],
    specials: tuple[int, int, int],
    layout: str = "parallel",
) -> dict[str, torch.Tensor]:
    """One sequence per row: [CLS] query [SEP] (cand [SEP])*. Returns ``input_ids``,
    ``position_ids``, ``token_type_ids`` (0 query, 1 candidates), ``segment`` (B, L: -1 query,
    k = candidate k's segment incl. its SEP, -2 padding), ``span`` (B, L: k on candidate k's
    text tokens, -1 elsewhere), ``query_mask`` (B, L: query text tokens) and ``attention_mask``
    ((B, L) for "sequential"; additive (B, 1, L, L) for "parallel")."""
    cls_id, sep_id, pad_id = specials
    rows = []
    for q, cands in zip(query_ids, cand_ids, strict=True):
        ids = [cls_id, *q, sep_id]
        n_q = len(ids)
        pos = list(range(n_q))
        seg = [-1] * n_q
        span = [-1] * n_q
        qm = [0] + [1] * len(q) + [0]
        for k, c in enumerate(cands):
            toks = [*c, sep_id]
            start = n_q if layout == "parallel" else len(ids)
            ids += toks
            pos += list(range(start, start + len(toks)))
            seg += [k] * len(toks)
            span += [k] * len(c) + [-1]
            qm += [0] * len(toks)
        rows.append((ids, pos, seg, span, qm))
    n, length = len(rows), max(len(r[0]) for r in rows)
    out = {
        "input_ids": np.full((n, length), pad_id, np.int64),
        "position_ids": np.zeros((n, length), np.int64),
        "segment": np.full((n, length), -2, np.int64),
        "span": np.full((n, length), -1, np.int64),
        "query_mask": np.zeros((n, length), np.float32),
    }
    for i, (ids, pos, seg, span, qm) in enumerate(rows):
        m = len(ids)
        out["input_ids"][i, :m] = ids
        out["position_ids"][i, :m] = pos
        out["segment"][i, :m] = seg
        out["span"][i, :m] = span
        out["query_mask"][i, :m] = qm
    t = {k: torch.as_tensor(v) for k, v in out.items()}
    t["token_type_ids"] = (t["segment"] >= 0).long()
    real = t["segment"] > -2
    if layout == "parallel":
        si, sj = t["segment"][:, :, None], t["segment"][:, None, :]
        allowed = (sj == -1) | ((si == -1) & (sj > -2)) | ((si == sj) & (si >= 0))
        allowed = allowed & real[:, None, :]
        allowed = allowed | (~real[:, :, None] & (sj == -1))  # padding rows see the query
        mask = torch.zeros(allowed.shape, dtype=torch.float32)
        mask.masked_fill_(~allowed, torch.finfo(torch.float32).min)
        t["attention_mask"] = mask[:, None]
    else:
        t["attention_mask"] = real.long()
    return t


class JointReader(nn.Module):
    """Backbone (+ LoRA) over packed sequences, span pooling, per-candidate MLP, prior weights."""

    def __init__(self, config: JointConfig, backbone) -> None:
        super().__init__()
        self.config = config
        from ..models.encoder import lora_settings
        from ..models.lora import apply_lora

        self.tower = apply_lora(backbone, lora_settings(config))  # r 0: a frozen tower
        dim = int(backbone.config.hidden_size)
        self.text_head = nn.Sequential(
            nn.Linear(2 * dim, config.head_dim), nn.GELU(), nn.Linear(config.head_dim, 1)
        )
        nn.init.zeros_(self.text_head[2].weight)  # starts as the priors-only model
        nn.init.zeros_(self.text_head[2].bias)
        self.prior_w = nn.Parameter(torch.zeros(config.n_prior))

    def init_prior_weights(self, w) -> None:
        """Set the prior weights (the warm start at the priors-only fit)."""
        with torch.no_grad():
            self.prior_w.copy_(torch.as_tensor(np.asarray(w, np.float32)))

    def text_scores(self, batch: dict[str, torch.Tensor], n_cands: int) -> torch.Tensor:
        """(B, K) text part of the score: one tower pass over the packed ``batch``."""
        hidden = self.tower(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
            position_ids=batch["position_ids"],
        ).last_hidden_state
        ks = torch.arange(n_cands, device=hidden.device)
        onehot = (batch["span"][:, None, :] == ks[None, :, None]).to(hidden.dtype)  # (B, K, L)
        cands = onehot @ hidden / onehot.sum(-1, keepdim=True).clamp_min(1.0)
        qm = batch["query_mask"].to(hidden.dtype)[:, :, None]
        query = (hidden * qm).sum(1) / qm.sum(1).clamp_min(1.0)  # (B, d)
        feats = torch.cat([cands, cands * query[:, None, :]], dim=-1)
        return self.text_head(feats).squeeze(-1)

    def forward(
        self, batch: dict[str, torch.Tensor], prior: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scores (B, K); ``prior`` (B, K, P) z-scored; ``valid`` (B, K) False = padding."""
        scores = self.text_scores(batch, prior.shape[1])
        if prior.shape[-1]:
            scores = scores + prior @ self.prior_w
        if valid is not None:
            scores = scores.masked_fill(~valid, -1e4)
        return scores

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Only what training changes: LoRA weights, the text MLP, the prior weights."""
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        return {k: v.detach().clone() for k, v in self.state_dict().items() if k in names}


class JointReranker:
    """The joint reader with its text side: renders queries, packs requests, scores, saves.

    Same scoring contract as `InstructionReranker.score_candidates` (raw retriever scores in
    ``prior``, z-scored here; the intention-match channel from ``intentions`` and
    ``self.dataset``), so a `Recommender` could hold either."""

    def __init__(
        self,
        model: JointReader,
        tokenizer,
        item_texts: list[str],
        text,
        config: JointConfig,
        prior_names: list[str] | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.item_texts = list(item_texts)
        self.text = text  # rerank.instances.TextSide (titles + domain words)
        self.config = config
        self.prior_names = list(prior_names or [])
        self.specials = special_ids(tokenizer)
        self.cand_tokens = token_lists(tokenizer, self.item_texts, config.cand_tokens)
        self.dataset = None  # item attributes for the intention-match channel (not saved)
        self.info: dict = {}  # training record (warm start, calibration, timings)

    @classmethod
    def build(cls, item_texts: list[str], text, config: JointConfig, prior_names=None):
        """A fresh (untrained) reranker: loads the backbone named in ``config``."""
        from ..models.text_encoder import load_encoder

        tok, backbone = load_encoder(config.backbone)
        return cls(JointReader(config, backbone), tok, item_texts, text, config, prior_names)

    # ------------------------------------------------------------------ inputs
    def queries(self, histories, intentions=None, templates=None, preferences=None, slots=None):
        """Query texts (instruction + the last ``query_history`` titles) for a batch."""
        return self.text.render(
            histories,
            intentions,
            templates=templates,
            preferences=preferences,
            history=self.config.query_history,
            slots=slots,
        )

    def encode(self, query_texts: list[str], candidates: np.ndarray) -> dict[str, torch.Tensor]:
        """Packed sequences, one per row, for internal item ids ``candidates`` (n, k)."""
        q = token_lists(self.tokenizer, list(query_texts), self.config.query_tokens)
        cands = [
            [self.cand_tokens[int(j)] if j >= 0 else [] for j in row]
            for row in np.asarray(candidates)
        ]
        return pack(q, cands, self.specials, self.config.layout)

    def prior_features(self, candidates, intentions=None, prior=None) -> np.ndarray:
        """(n, k, n_prior): z-scored retriever scores, then the intention-match channel."""
        from ..models.encoder_config import zscore

        cands = np.asarray(candidates, np.int64)
        n, k = cands.shape
        n_p = self.config.n_prior
        n_ret = n_p - int(bool(self.config.intent_match))
        z = np.zeros((n, k, n_p), np.float32)
        if prior is not None and n_ret > 0:
            pr = np.asarray(prior, np.float32).reshape(n, k, -1)[:, :, :n_ret]
            z[:, :, : pr.shape[2]] = zscore(pr)
        if self.config.intent_match and intentions is not None:
            if self.dataset is None:
                raise ValueError("the intention-match channel needs reranker.dataset")
            from .intentions import intention_match

            z[:, :, n_ret] = intention_match(self.dataset, intentions, cands)
        return z

    # ------------------------------------------------------------------ scoring
    @torch.no_grad()
    def score_texts(
        self, query_texts, candidates, features: np.ndarray, batch_size: int = 16, parts=False
    ):
        """Scores (n, k) from rendered queries and prior ``features`` (n, k, P); with
        ``parts``, (scores, text part). One tower pass per ``batch_size`` requests."""
        cands = np.asarray(candidates, np.int64)
        self.model.eval()
        dev = self.model.prior_w.device
        out = np.zeros(cands.shape, np.float32)
        text = np.zeros(cands.shape, np.float32)
        for s in range(0, len(cands), batch_size):
            sl = slice(s, s + batch_size)
            batch = {k: v.to(dev) for k, v in self.encode(query_texts[sl], cands[sl]).items()}
            t = self.model.text_scores(batch, cands.shape[1])
            f = torch.as_tensor(features[sl], device=dev)
            total = t + f @ self.model.prior_w if f.shape[-1] else t
            total = total.masked_fill(torch.as_tensor(cands[sl] < 0, device=dev), -1e4)
            out[sl], text[sl] = total.float().cpu().numpy(), t.float().cpu().numpy()
        return (out, text) if parts else out

    def score_candidates(
        self,
        users,
        candidates,
        histories,
        intentions=None,
        templates=None,
        prior=None,
        batch_size: int = 16,
    ) -> np.ndarray:
        """Scores (n, k) of ``candidates`` (internal ids); ``prior`` (n, k[, P]) raw retriever
        scores; ``intentions`` one string (or None/'') per row."""
        cands = np.asarray(candidates, np.int64)
        hists = [np.asarray(h, np.int64) for h in histories]
        texts = self.queries(hists, intentions, templates)
        feats = self.prior_features(cands, intentions, prior)
        return self.score_texts(texts, cands, feats, batch_size)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """``joint.json`` (config, prior names, record), ``weights.safetensors`` (LoRA, head,
        prior weights), ``item_texts.json``, ``text.json``; the backbone is named, not copied."""
        from safetensors.torch import save_file

        from ..data.runfiles import FORMAT, write_json

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {
            k: v.detach().cpu().contiguous().clone()
            for k, v in self.model.trainable_state().items()
        }
        save_file(state, str(directory / "weights.safetensors"))
        write_json(
            directory / "joint.json",
            {
                "format": FORMAT,
                "config": asdict(self.config),
                "prior_names": self.prior_names,
                "info": self.info,
            },
        )
        (directory / "item_texts.json").write_text(json.dumps(self.item_texts))
        write_json(directory / "text.json", self.text.to_dict())
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> JointReranker:
        """A reranker saved by `save` (a folder holding pickles is refused)."""
        from safetensors.torch import load_file

        from ..data.errors import DataError
        from ..data.runfiles import read_json, refuse_pickles
        from .instances import TextSide

        directory = Path(directory)
        refuse_pickles(directory)
        if not (directory / "joint.json").exists():
            raise DataError("not a saved JointReranker (no joint.json)", source=str(directory))
        meta = read_json(directory / "joint.json")
        try:
            config = JointConfig(**meta["config"])
            texts = json.loads((directory / "item_texts.json").read_text())
            text = TextSide.from_dict(read_json(directory / "text.json"))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"joint.json: bad saved reranker ({e})", source=str(directory)) from e
        rr = cls.build(texts, text, config, meta.get("prior_names"))
        state = load_file(str(directory / "weights.safetensors"))
        extra = set(state) - set(rr.model.state_dict())
        if extra:
            raise DataError(
                f"weights do not fit the model ({sorted(extra)[:3]})", source=str(directory)
            )
        rr.model.load_state_dict(state, strict=False)
        rr.model.eval()
        rr.info = dict(meta.get("info") or {})
        return rr
