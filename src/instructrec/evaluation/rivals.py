"""Rivals every evaluation table holds (EVALUATION.md "Rivals"; issue 12, point 3).

`ScoreMix` (``score-mix``) is the reranker without its language model: every non-text input
the shipped `InstructionReranker` reads, combined by a small model fitted on validation
rows. A gain of the reranker over it is what the language model adds. Per (row, candidate):

- ``prior:<name>``: each prior retriever's score, z-scored within the row (as the reranker's
  prior channel, `models.encoder.zscore`);
- ``cf_sim:<name>``: for priors with item embeddings (SASRec, BPR), the cosine between the
  candidate's vector and the mean vector of the last ``history_len`` history items (the
  reranker reads the same CF vectors through its item and history towers);
- ``intent_match`` / ``intent_excluded``: the reranker's parsed-intention channel
  (`rerank.intentions.intention_match`: the graded match of the candidate with what
  `parse_intention` reads in the intention TEXT; excluded candidates split off into their
  own 0/1 feature), and ``has_intention`` (row-level, for the tree model). With
  ``intent_source="attrs"`` the structured intention dicts are used instead (an oracle
  parse, for reference only: the reranker never sees them);
- ``attr_sim``: cosine between the candidate's attribute vector (`attribute_matrix`:
  genres, decade, early/late, category, brand, price band) and the history's mean vector;
- ``log_pop``: log(1 + training interactions of the item);
- ``item_rating``: the item's mean training rating minus the global mean, shrunk by
  ``rating_shrink`` pseudo-ratings (only where the data has ratings);
- ``cold`` (only with ``cold_dropout > 0``, as the reranker's cold channel, `rerank.cold`):
  1 for a candidate with no training interactions, whose collaborative features (priors,
  ``cf_sim``, ``log_pop``, ``item_rating``) are then neutral (0; the priors of the other
  candidates z-scored among themselves; with the reranker's ``cold_fill: catalogue`` the
  priors are an average warm item's score for the row, z-scored the same way). The model is
  fitted on rows where a further share ``cold_dropout`` of targets and of negatives is
  treated as cold (DropoutNet), as the reranker is trained; rows are scored as they are.
  With the reranker's ``cold_content``, ``cold_x:<name>``: each content-based prior's
  feature times ``cold`` (what a content score is worth on a cold candidate).

Models: a linear listwise softmax (conditional logit over the standardised features, L2,
L-BFGS) and a pointwise gradient-boosted classifier (scikit-learn's
``HistGradientBoostingClassifier``, target vs. not). ``kind="auto"`` picks the one with the
higher out-of-fold NDCG (ties to linear) by K-fold cross-validation over the fitting rows and
records both figures (`describe`). `cross_fit_scores` gives out-of-fold scores for the
fitting rows themselves, so a validation-stage figure never scores a row with a model that
was fitted on it.

The other rivals live beside it: `learned_filter.LearnedFilter` (``sasrec+filter`` with a
phrase table learned from training data) and the rating models `rating_models.BiasModel` and
`rating_models.RatingMF` (``pointwise``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..data.errors import DataError
from .listwise import KINDS, fit_listwise, list_metrics, score_listwise
from .seeds import STACKED

__all__ = ["ScoreMix"]


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _zscore(x: np.ndarray) -> np.ndarray:
    """Standardise each row's (k,) list (`models.encoder.zscore` without importing torch)."""
    x = np.nan_to_num(np.asarray(x, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return (x - x.mean(axis=1, keepdims=True)) / np.maximum(x.std(axis=1, keepdims=True), 1e-6)


def _history_mean(vecs: np.ndarray, histories: Sequence[np.ndarray], last: int) -> np.ndarray:
    """(n, d) mean of ``vecs`` over each history's most recent ``last`` items (0 if empty)."""
    out = np.zeros((len(histories), vecs.shape[1]))
    for r, h in enumerate(histories):
        h = np.asarray(h, np.int64)[-last:]
        h = h[(h >= 0) & (h < len(vecs))]
        if len(h):
            out[r] = vecs[h].mean(axis=0)
    return out


class ScoreMix:
    """The no-language-model ablation of the reranker (module docstring).

    ``train``: the training interactions (``split.train``: popularity and ratings come from
    them only); ``priors``: fitted retrievers by name (a sequence uses each ``.name``)."""

    is_baseline = True
    name = "score-mix"

    def __init__(
        self,
        dataset,
        train: pd.DataFrame,
        priors: Mapping[str, object] | Sequence[object],
        *,
        kind: str = "auto",  # "auto" (chosen by CV), "linear" or "gbdt"
        intent_source: str = "text",  # "text" (the reranker's parse) or "attrs" (oracle)
        l2: float = 1e-3,  # ridge penalty of the linear model (standardised features)
        folds: int = 5,  # CV folds for kind="auto"
        history_len: int = 20,  # history items the similarity features read
        rating_shrink: float = 5.0,  # pseudo-ratings shrinking the item mean rating
        seed: int = 0,  # fold assignment and the tree model
        cold_dropout: float = 0.0,  # >0: cold feature + DropoutNet fitting (module docstring)
        cold_fill: str = "list",  # cold candidates' prior scores, as the reranker's `cold_fill`
        cold_content: bool = False,  # + content prior x cold features (reranker's cold_content)
        phrases=None,  # the reranker's learned phrase table (``intent_phrases``), read as it does
        extra: Mapping[str, object] | None = None,  # scorers whose scores join ("lm:<name>")
    ) -> None:
        if kind not in ("auto", *KINDS):
            raise DataError(f"ScoreMix kind must be 'auto', 'linear' or 'gbdt', not {kind!r}")
        if intent_source not in ("text", "attrs"):
            raise DataError(f"intent_source must be 'text' or 'attrs', not {intent_source!r}")
        if folds < 2:
            raise DataError(f"ScoreMix folds must be >= 2, got {folds}")
        if isinstance(priors, Mapping):
            self.priors = dict(priors)
        else:
            self.priors = {getattr(p, "name", type(p).__name__): p for p in priors}
        self.dataset, self.kind, self.intent_source = dataset, kind, intent_source
        self.l2, self.folds, self.history_len, self.seed = l2, folds, history_len, seed
        if not 0.0 <= cold_dropout <= 1.0:
            raise DataError(f"cold_dropout must be in [0, 1], got {cold_dropout}")
        self.cold_dropout = float(cold_dropout)
        from ..rerank.cold import COLD_FILLS

        if cold_fill not in COLD_FILLS:
            raise DataError(f"cold_fill must be one of {list(COLD_FILLS)}, got {cold_fill!r}")
        self.cold_fill = cold_fill
        if cold_content and self.cold_dropout <= 0:
            raise DataError("cold_content needs cold_dropout > 0 (the cold feature)")
        self.cold_content = bool(cold_content)
        self.phrases = phrases
        self.extra = dict(extra or {})
        if self.extra:
            self.name = STACKED
        self.n_items = int(dataset.n_items)
        self._item_features(train, rating_shrink)
        self.model_: dict | None = None  # the fitted model (see `_fit_on`)
        self.cv_: dict[str, dict[str, float]] = {}  # out-of-fold figures per kind
        self.cross_folds_: np.ndarray | None = None  # fold of each row in `cross_fit_scores`
        self.importances_: dict[str, float] | None = None  # tree model only

    # ------------------------------------------------------------------ features
    def _item_features(self, train: pd.DataFrame, shrink: float) -> None:
        from ..rerank.rerank_features import attribute_matrix

        items = train["item"].to_numpy(np.int64)
        if len(items) and (items.min() < 0 or items.max() >= self.n_items):
            raise DataError(f"train holds item ids outside 0..{self.n_items - 1}")
        self.log_pop = np.log1p(np.bincount(items, minlength=self.n_items)).astype(np.float64)
        self.item_rating = None
        if "rating" in train.columns and train["rating"].notna().any():
            ok = train["rating"].notna().to_numpy()
            r, it = train["rating"].to_numpy(np.float64)[ok], items[ok]
            dev = np.bincount(it, weights=r - r.mean(), minlength=self.n_items)
            self.item_rating = dev / (np.bincount(it, minlength=self.n_items) + shrink)
        self.attr_vecs = _unit(attribute_matrix(self.dataset))
        self.cf_vecs = {}
        for name, p in self.priors.items():
            emb = p.item_embeddings() if hasattr(p, "item_embeddings") else None
            if emb is not None and len(emb) >= self.n_items:
                self.cf_vecs[name] = _unit(np.asarray(emb)[-self.n_items :])
        names = [f"prior:{n}" for n in self.priors] + [f"cf_sim:{n}" for n in self.cf_vecs]
        names += ["intent_match", "intent_excluded", "has_intention", "attr_sim", "log_pop"]
        if self.item_rating is not None:
            names.append("item_rating")
        self.cold_items = np.bincount(items, minlength=self.n_items) == 0  # no training rows
        if self.cold_dropout > 0:
            names.append("cold")
            if self.cold_content:  # the reranker's cold weights on content priors
                from ..rerank.cold import content_channels

                self.content = content_channels(list(self.priors.values()))
                names += [
                    f"cold_x:{n}" for n, c in zip(self.priors, self.content, strict=True) if c
                ]
        names += [f"lm:{n}" for n in self.extra]
        self.feature_names = names

    def _check(self, users, candidates, histories, intentions, attrs):
        users = np.asarray(users)
        cands = np.asarray(candidates)
        if cands.ndim != 2 or cands.shape[1] < 1:
            raise DataError(f"candidates must be (n, k), got shape {cands.shape}")
        if cands.size and not np.issubdtype(cands.dtype, np.integer):
            raise DataError(f"candidates must be integer item ids, got dtype {cands.dtype}")
        n = len(cands)
        for what, x in (("users", users), ("histories", histories)):
            if len(x) != n:
                raise DataError(f"{what} has {len(x)} rows, candidates {n}")
        for what, x in (("intentions", intentions), ("attrs", attrs)):
            if x is not None and len(x) != n:
                raise DataError(f"{what} has {len(x)} rows, candidates {n}")
        cands = cands.astype(np.int64)
        if cands.size and (cands.min() < 0 or cands.max() >= self.n_items):
            raise DataError(f"candidate ids must lie in 0..{self.n_items - 1}")
        return users, cands

    def features(
        self,
        users,
        candidates,
        histories,
        intentions=None,
        attrs=None,
        dropped=None,
        templates=None,
    ) -> np.ndarray:
        """(n, k, F) features, in the order of ``self.feature_names``; ``dropped`` (n, k) bool:
        candidates treated as cold besides the items with no training interactions (fitting
        only; ``cold_dropout > 0``); ``templates``: the request wording, read by the
        ``extra`` scorers only."""
        users, cands = self._check(users, candidates, histories, intentions, attrs)
        n, k = cands.shape
        hists = list(histories)
        cold = None
        if self.cold_dropout > 0:
            cold = self.cold_items[cands] if dropped is None else self.cold_items[cands] | dropped
        cols = []
        fill = cold is not None and self.cold_fill == "catalogue"
        for p in self.priors.values():
            raw = p.score(users, cands, histories=hists)
            if cold is None or getattr(p, "content_based", False):  # content: cold items too
                cols.append(_zscore(raw))
            else:
                from ..rerank.cold import cold_priors, fill_cold

                raw = np.asarray(raw, np.float32)[..., None]
                if fill:  # an average warm item's score, as the reranker's `cold_fill`
                    raw = fill_cold(raw, cold, [p], users, hists, ~self.cold_items)
                cols.append(cold_priors(raw, cold, keep_cold=fill)[..., 0])
        for vecs in self.cf_vecs.values():
            cols.append(
                np.einsum(
                    "nd,nkd->nk", _unit(_history_mean(vecs, hists, self.history_len)), vecs[cands]
                )
            )
        # neutralised for cold candidates (filled priors are set already)
        collab = list(range(len(self.priors) if fill else 0, len(cols)))
        match, excluded, has = self._intent(cands, intentions, attrs)
        cols += [match, excluded, np.broadcast_to(has[:, None], (n, k))]
        hist_attr = _unit(_history_mean(self.attr_vecs, hists, self.history_len))
        cols.append(np.einsum("nd,nkd->nk", hist_attr, self.attr_vecs[cands]))
        collab.append(len(cols))
        cols.append(self.log_pop[cands])
        if self.item_rating is not None:
            collab.append(len(cols))
            cols.append(self.item_rating[cands])
        if cold is not None:
            cols = [np.where(cold, 0.0, c) if j in collab else c for j, c in enumerate(cols)]
            cols.append(cold.astype(np.float64))
            if self.cold_content:
                cols += [cols[j] * cold for j, c in enumerate(self.content) if c]
        for model in self.extra.values():  # e.g. the reranker itself: score-mix+lm
            raw = model.score_candidates(
                users, cands, hists, intentions=intentions, templates=templates
            )
            cols.append(_zscore(np.asarray(raw, np.float64).reshape(n, k)))
        return np.stack(cols, axis=-1).astype(np.float64)

    def _fit_x(self, users, candidates, histories, intentions, attrs, x) -> np.ndarray:
        """The features the model is fitted on: ``x`` itself, or (``cold_dropout > 0``) with
        a share of targets (column 0) and negatives treated as cold (`rerank.cold`)."""
        if self.cold_dropout <= 0:
            return x
        from ..rerank.cold import cold_dropout_mask

        cands = np.asarray(candidates, np.int64)
        natural = self.cold_items[cands]
        rng = np.random.default_rng([self.seed, 15])
        drop = cold_dropout_mask(natural, np.zeros(len(cands), np.int64), self.cold_dropout, rng)
        return self.features(users, candidates, histories, intentions, attrs, drop & ~natural)

    def _intent(self, cands, intentions, attrs):
        n, k = cands.shape
        zero = np.zeros((n, k))
        if self.intent_source == "text":
            if intentions is None:
                return zero, zero, np.zeros(n)
            from ..rerank.intentions import intention_match

            has = np.array([bool(t and str(t).strip()) for t in intentions], np.float64)
            texts = [str(t) if t else "" for t in intentions]
            m = intention_match(self.dataset, texts, cands, self.phrases)
            return np.maximum(m, 0.0), (m < 0).astype(np.float64), has
        if attrs is None:
            return zero, zero, np.zeros(n)
        from ..instructions import intention_excluded, intention_matches

        has = np.array([bool(d) for d in attrs], np.float64)
        d = [dict(a) if a else {} for a in attrs]
        match = intention_matches(self.dataset, d, cands) * has[:, None]
        return match.astype(np.float64), intention_excluded(self.dataset, d, cands) * 1.0, has

    # ------------------------------------------------------------------ models
    def _fit_on(self, x: np.ndarray, kind: str) -> dict:
        """A model of ``kind`` fitted on features ``x`` (n, k, F), target in column 0."""
        return fit_listwise(x, kind, self.l2, self.seed)

    @staticmethod
    def _score_with(model: dict, x: np.ndarray) -> np.ndarray:
        return score_listwise(model, x)

    def _fold_ids(self, n: int, folds: int) -> np.ndarray:
        if n < folds:
            raise DataError(f"ScoreMix needs at least {folds} rows for {folds}-fold CV, got {n}")
        return np.random.default_rng(self.seed).permutation(n) % folds

    def _fit_features(
        self, x: np.ndarray, refit: bool = True, x_fit: np.ndarray | None = None
    ) -> tuple[dict | None, dict]:
        """(model, CV figures): choose the kind by CV when ``auto``, refit on every row.
        Models are fitted on ``x_fit`` (default ``x``) and scored out of fold on ``x``."""
        if x.shape[1] < 2:
            raise DataError("ScoreMix needs at least 2 candidates per fitting row")
        x_fit = x if x_fit is None else x_fit
        cv: dict[str, dict[str, float]] = {}
        kind = self.kind
        if kind == "auto":
            fold = self._fold_ids(len(x), self.folds)
            for kd in KINDS:
                oof = np.zeros(x.shape[:2])
                for f in range(self.folds):
                    m = self._fit_on(x_fit[fold != f], kd)
                    oof[fold == f] = self._score_with(m, x[fold == f])
                cv[kd] = list_metrics(oof)
            kind = max(KINDS, key=lambda kd: (cv[kd]["ndcg"], kd == "linear"))
        return (self._fit_on(x_fit, kind) if refit else None), cv

    # ------------------------------------------------------------------ public API
    def fit(self, users, candidates, histories, intentions=None, attrs=None) -> ScoreMix:
        """Fit on rows whose target is column 0 of ``candidates`` (validation rows)."""
        x = self.features(users, candidates, histories, intentions, attrs)
        x_fit = self._fit_x(users, candidates, histories, intentions, attrs, x)
        self.model_, self.cv_ = self._fit_features(x, x_fit=x_fit)
        self.importances_ = None
        if self.model_["kind"] == "gbdt":  # permutation importance on the fitting rows
            rng = np.random.default_rng(self.seed)
            base = list_metrics(self._score_with(self.model_, x))["ndcg"]
            self.importances_ = {}
            for j, name in enumerate(self.feature_names):
                xp = x.copy()
                xp[:, :, j] = xp[rng.permutation(len(x)), :, j]
                drop = base - list_metrics(self._score_with(self.model_, xp))["ndcg"]
                self.importances_[name] = float(drop)
        return self

    def score_candidates(
        self, users, candidates, histories, intentions=None, templates=None, attrs=None
    ) -> np.ndarray:
        """Scores (n, k); ``templates`` is read by the ``extra`` scorers only."""
        if self.model_ is None:
            raise ValueError("ScoreMix is not fitted: call fit() on validation rows first")
        x = self.features(users, candidates, histories, intentions, attrs, templates=templates)
        return self._score_with(self.model_, x)

    def cross_fit_scores(
        self,
        users,
        candidates,
        histories,
        intentions=None,
        attrs=None,
        folds: int = 5,
        templates=None,
    ) -> np.ndarray:
        """Out-of-fold scores (n, k): row i is scored by a model (kind chosen once by CV over
        all the rows, then fixed) fitted on the other folds only. ``self.cross_folds_`` keeps each
        row's fold. Does not change the fitted model."""
        x = self.features(users, candidates, histories, intentions, attrs, templates=templates)
        x_fit = self._fit_x(users, candidates, histories, intentions, attrs, x)
        fold = self._fold_ids(len(x), folds)
        kind = self.kind
        if kind == "auto":  # chosen once by CV over all rows (itself out-of-fold), then fixed
            _, cv = self._fit_features(x, refit=False, x_fit=x_fit)
            kind = max(KINDS, key=lambda kd: (cv[kd]["ndcg"], kd == "linear"))
            self.cv_ = cv
        self.cross_kind_ = kind
        out = np.zeros(x.shape[:2])
        for f in range(folds):
            out[fold == f] = self._score_with(self._fit_on(x_fit[fold != f], kind), x[fold == f])
        self.cross_folds_ = fold
        return out

    def describe(self) -> dict:
        """Chosen kind, features, weights (linear, per standardised feature) or importances
        (tree: NDCG drop on the fitting rows when the feature is shuffled across rows), and
        the out-of-fold figures per kind (``auto`` only)."""
        m = self.model_ or {}
        out: dict = {
            "model": self.name,
            "kind": m.get("kind"),
            "features": list(self.feature_names),
            "priors": list(self.priors),
            "intent_source": self.intent_source,
            "cold_dropout": self.cold_dropout,
            "cold_fill": self.cold_fill,
            "cold_content": self.cold_content,
            "cv": self.cv_,
        }
        if m.get("kind") == "linear":
            out["weights"] = dict(zip(self.feature_names, map(float, m["w"]), strict=True))
        elif m.get("kind") == "gbdt":
            out["importances"] = self.importances_
        return out
