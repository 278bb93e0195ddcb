"""The rivals of EVALUATION.md, fitted for one seed and one protocol without touching the rows
being scored (the classes live in `rivals.py`; this module says what each is fitted on).

| rival | protocols | fitted on |
|---|---|---|
| ``score-mix`` | every candidate protocol, ``full``, ``search-full`` (test stage only) | the protocol's validation rows (cross-fitted over users when the validation stage is scored; ``search-full``: the ``search`` rows) |
| ``score-mix+lm`` (not a rival: a measurement) | as ``score-mix`` | as ``score-mix``, with the run's own reranker score as one more feature: what the language model adds to the same mix fitted the same way |
| ``sasrec+filter`` | protocols with an intention | intentions generated for training targets (phrase table), SASRec fitted on training |
| ``new-first`` (a rule, not a fit) | ``cold`` | nothing: the split's cold items first, then ``titleknn`` order (`adapters.NewFirstModel`) |
| ``bias``, ``mf`` | ``pointwise`` | training ratings (regularisation chosen on validation ratings) |
"""

from __future__ import annotations

import numpy as np

from ..data.errors import DataError
from ..recommender import RERANK_DEPTH
from .hard_negatives import protocol_candidates
from .intentions import protocol_intentions
from .protocols import (
    PROTOCOLS,
    Protocol,
    get_protocol,
    select_rows,
    stage_rows,
)
from .seeds import STACKED

LARGE_VALID = 3000  # validation rows above which score-mix is linear only (cost)
FIT_STAGE = "valid"  # rivals are fitted on validation rows, never on the rows scored at test


class CrossFitted:
    """A `ScoreMix` scored out-of-fold on exactly the rows it is fitted on (the validation
    stage): each row gets the scores of a model fitted on the other folds of users."""

    is_baseline = True
    name = "score-mix"

    def __init__(self, mix, folds: int = 5) -> None:
        self.mix, self.folds = mix, folds
        self.name = mix.name
        self.retriever = getattr(mix, "retriever", None)
        self._memo: dict[str, np.ndarray] = {}  # the same rows again (another template group)

    def score_candidates(
        self, users, candidates, histories, intentions=None, templates=None, attrs=None
    ):
        key = _rows_key(users, candidates, histories, intentions)
        if self.mix.extra:  # only the extra scorers (the reranker) read the wording
            key += repr(templates)
        if key not in self._memo:
            self._memo[key] = self.mix.cross_fit_scores(
                users,
                candidates,
                histories,
                intentions=intentions,
                folds=self.folds,
                templates=templates,
            )
        return self._memo[key].copy()

    def describe(self) -> dict:
        return {"cross_fitted": True, "folds": self.folds, **self.mix.describe()}


def _rows_key(users, candidates, histories, intentions) -> str:
    """A digest of everything a rival reads from a set of rows."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for a in (users, candidates):
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype, a.shape)).encode())
        h.update(a.tobytes())
    for hist in histories:
        hist = np.asarray(hist, np.int64)
        h.update(len(hist).to_bytes(8, "little"))
        h.update(hist.tobytes())
    h.update(repr(None if intentions is None else list(intentions)).encode())
    return h.hexdigest()


class Rivals:
    """Rivals for one seed: ``base`` maps baseline names to retrievers fitted on
    ``split.train`` with that seed; ``rec`` is the run's `Recommender` for that seed (its
    priors are exactly what the reranker reads) or None."""

    def __init__(self, dataset, split, base: dict, rec, seed: int, names: list[str]) -> None:
        self.dataset, self.split, self.base, self.rec = dataset, split, base, rec
        self.seed, self.names = seed, list(names)
        self._filter = self._ratings = None
        self._mixes: dict[tuple, object] = {}  # score-mix per (protocol, stage, +lm)

    def priors(self) -> list:
        if self.rec is not None:
            return list(self.rec.priors)
        return [self.base[n] for n in ("sasrec", "itemknn", "pop") if n in self.base]

    def _fit_rows(self, proto: Protocol, notes: list[str]):
        """(users, candidates, histories, intentions) of the validation rows ``proto`` fits
        on: the same candidate file and wording; ``cold`` fits on the non-cold cand10 rows
        (its own rows are too few), ``cold-only`` on its own rows (all-cold candidates: a mix
        fitted on warm targets would learn "new is wrong"), ``full`` on the cand10 rows."""
        fit_proto = proto
        if proto.kind == "full":
            fit_proto = get_protocol("cand10")
        elif proto.kind == "search-full":  # the search rows in the same wording
            fit_proto = get_protocol("search-para" if proto.wording == "paraphrase" else "search")
        rows = stage_rows(self.split, FIT_STAGE)
        if not _fits_own_rows(proto):
            cold = np.isin(rows.targets, self.split.cold_items)
            rows = rows.take(~cold)
        else:
            rows = select_rows(fit_proto, self.split, rows, self.dataset)
        from .adapters import RetrieverModel

        models = {"sasrec": RetrieverModel(self.base["sasrec"])} if "sasrec" in self.base else {}
        cands = protocol_candidates(
            fit_proto, self.dataset, self.split, models, rows, self.seed, notes
        )
        texts = None
        if fit_proto.intention:
            made = self.split.notes.get(fit_proto.candidates, {}).get(FIT_STAGE, {})
            iseed = int(made.get("intention_seed", self.seed))
            texts, _, _ = protocol_intentions(fit_proto, self.dataset, rows.targets, iseed)
        return rows.users, cands, rows.histories, texts

    def score_mix(self, proto: Protocol, stage: str, lm: bool = False):
        """score-mix for ``proto`` scored at ``stage``; ``lm``: with the run's reranker score as
        one more feature (score-mix+lm; None without a run's model)."""
        from .rivals import ScoreMix

        if lm and self.rec is None:
            return None
        # the tree's cross-validated choice costs ~15 tree fits: on large validation sets
        # (Amazon Games: 6,000 rows) the linear mix alone is fitted, and said so in its record
        kind = "auto" if len(self.split.valid) <= LARGE_VALID else "linear"
        rr = getattr(self.rec, "reranker", None)
        cold = float(getattr(getattr(rr, "config", None), "cold_dropout", 0.0))  # same cold channel
        mix = ScoreMix(
            self.dataset,
            self.split.train,
            self.priors(),
            kind=kind,
            seed=self.seed,
            cold_dropout=cold,
            cold_fill=str(getattr(getattr(rr, "config", None), "cold_fill", "list")),
            cold_content=bool(getattr(getattr(rr, "config", None), "cold_content", False)),
            phrases=getattr(rr, "phrases", None),  # the reranker's intent channel too
            extra={"instructrec": self.rec} if lm else None,
        )
        first = self.base.get("sasrec") or (self.rec.retriever if self.rec else None)
        if proto.kind == "search-full" and stage == FIT_STAGE:
            return None  # fitted on the validation `search` rows: no out-of-fold scores there
        if proto.kind in ("full", "search-full"):
            if first is None:
                return None
            mix.retriever = first  # search-full: the instruction-aware candidates, no dense
            mix.rerank_depth = getattr(self.rec, "rerank_depth", None) or RERANK_DEPTH
        notes: list[str] = []
        users, cands, hists, texts = self._fit_rows(proto, notes)
        if stage == FIT_STAGE and proto.kind != "full" and _fits_own_rows(proto):
            return CrossFitted(mix)  # scored on its own fitting rows: out-of-fold only
        return mix.fit(users, cands, hists, intentions=texts)

    def _score_mix_once(self, proto: Protocol, stage: str, lm: bool = False):
        """`score_mix`, fitted once per (protocol, stage): a second template group (the
        held-out templates) scores the same rows; the fit reads no template (score-mix+lm's
        reranker reads its default wording on the fitting rows)."""
        key = (proto.name, stage, lm)
        if key not in self._mixes:
            self._mixes[key] = self.score_mix(proto, stage, lm=lm)
        return self._mixes[key]

    def learned_filter(self):
        from .learned_filter import LearnedFilter

        if self._filter is None:
            first = self.base.get("sasrec") or (self.rec.retriever if self.rec else None)
            if first is None:
                return None
            self._filter = LearnedFilter.from_training(
                first, self.dataset, self.split, seed=self.seed
            )
        return self._filter

    def rating_models(self) -> dict:
        from .rating_models import BiasModel, RatingMF

        if self._ratings is None:
            tr = self.split.train
            if "rating" not in tr or not tr["rating"].notna().any():
                self._ratings = {}
            else:
                n_u, n_i = self.dataset.n_users, self.dataset.n_items
                self._ratings = {
                    "bias": BiasModel().fit(self.split, n_u, n_i),
                    "mf": RatingMF(seed=self.seed).fit(self.split, n_u, n_i),
                }
        return self._ratings

    def new_first(self):
        from .adapters import NewFirstModel

        content = self.base.get("titleknn")
        if content is None and self.rec is not None:
            content = next(
                (p for p in self.rec.priors if getattr(p, "name", "") == "titleknn"), None
            )
        return NewFirstModel(self.split.cold_items, self.dataset.n_items, content)

    def for_protocol(self, name: str, stage: str) -> dict[str, object]:
        """{rival name: fitted model} for protocol ``name`` scored at ``stage`` (the rivals
        `applicable_rivals` names that can be fitted here)."""
        if name not in PROTOCOLS:
            raise DataError(f"unknown protocol {name!r}")
        proto = get_protocol(name)
        build = {
            "bias": lambda: self.rating_models().get("bias"),
            "mf": lambda: self.rating_models().get("mf"),
            "score-mix": lambda: self._score_mix_once(proto, stage),
            STACKED: lambda: self._score_mix_once(proto, stage, lm=True),
            "sasrec+filter": self.learned_filter,
            "new-first": self.new_first,
        }
        out: dict[str, object] = {}
        for rival in applicable_rivals(name, self.names):
            model = build[rival]()
            if model is not None:
                out[rival] = model
        return out


def applicable_rivals(protocol: str, names) -> list[str]:
    """The rivals among ``names`` that apply to ``protocol``: the rating models on
    `pointwise`; elsewhere score-mix, the filter where there is an intention, ``new-first`` on
    `cold` (its negatives mostly warm)."""
    proto = get_protocol(protocol)
    if proto.kind == "pointwise":
        return [r for r in ("bias", "mf") if r in names]
    wanted = ("score-mix", STACKED)
    wanted += ("sasrec+filter",) if proto.intention else ()
    wanted += ("new-first",) if proto.rows == "cold" and not _fits_own_rows(proto) else ()
    return [r for r in wanted if r in names]


def _fits_own_rows(proto: Protocol) -> bool:
    """False for `cold` alone: its rows (cold targets among mostly warm random negatives) are
    few and score-mix fits on the other cand10 rows instead; every other protocol's rivals
    fit on its own validation rows."""
    return not (proto.rows == "cold" and proto.candidates == "cand10")
