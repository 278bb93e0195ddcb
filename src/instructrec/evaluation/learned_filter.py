"""`LearnedFilter`: the ``sasrec+filter`` rival with its phrase table learned from training data.

EVALUATION.md's filter rival ranks first the candidates that match the stated intention, in
the base retriever's order within ties. Reading the request with `parse_intention` would use
the parser's hand-written synonym list (which shares words with the intention generator);
this filter learns its own table from (intention text, target item) pairs built on TRAINING
targets only (`from_training`: `derive_intentions` of ``split.train`` items):

- text -> grams: lower-cased word tokens (numbers such as "90s" and "1990s" are tokens,
  hyphens and apostrophes stay inside a token), plus bigrams within a clause (clauses end
  at punctuation);
- item -> attribute values: genres, decade, year, category, brand, price band (whatever
  `instructions.item_attributes` exposes for the dataset; each family capped at
  ``MAX_VALUES`` most frequent values);
- pairs are deduplicated (one per distinct text and item, so a popular item counts once);
  a gram predicts a value when it occurs in >= ``min_support`` pairs, P(value | gram) >=
  ``min_prob`` and the lift P(value | gram) / P(value) >= ``min_lift``; its strength is
  P(value | gram). A request's predicted values are the union over its grams (strongest
  gram per value). Defaults chosen on ML-100K VALIDATION rows (item-kNN base, grid
  min_prob 0.2/0.5/0.8/0.95 x min_lift 1.5/3): a low ``min_prob`` lets co-occurring values
  in ("an" -> Action, "animated" -> Children's) and costs 0.02-0.05 HR@1.

Scoring: a candidate's match level is the strength-weighted count of predicted values it
has; candidates are ordered by (no excluded value, match level, base retriever score), so
equal levels keep the retriever's order and a request with no known gram gives exactly the
retriever's order. Negation is the one hand-written part: a word of ``NEGATIONS`` opens a
scope over the next ``NEGATION_SCOPE`` tokens of its clause (closed early by "but"); grams
in it predict values to EXCLUDE, which sink their candidates below every other. A value
both asked for and excluded stays asked for. Only the intention TEXT is read, never the
structured ``attrs`` (an oracle the evaluation holds).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ..data.errors import DataError

NEGATIONS = frozenset(
    {"no", "not", "without", "never", "nothing", "none", "except", "excluding", "avoid"}
    | {"don't", "dont", "isn't", "nor"}
)  # hand-written: the only words this filter is told
NEGATION_SCOPE = 3  # tokens after a negation word that it applies to
SCOPE_END = frozenset({"but"})
MAX_VALUES = 500  # values kept per attribute family (most frequent)
_CLAUSE = re.compile(r"[.,;:!?()\"\n]+")
_TOKEN = re.compile(r"[a-z0-9]+(?:['\-][a-z0-9]+)*")


def grams(text: str) -> list[tuple[str, bool]]:
    """(gram, negated) for each unigram and within-clause bigram of ``text`` (module doc)."""
    out: list[tuple[str, bool]] = []
    for clause in _CLAUSE.split(str(text or "").lower()):
        toks = _TOKEN.findall(clause)
        neg = np.zeros(len(toks), bool)
        for i, t in enumerate(toks):
            if t in NEGATIONS:
                for j in range(i + 1, min(i + 1 + NEGATION_SCOPE, len(toks))):
                    if toks[j] in SCOPE_END:
                        break
                    neg[j] = True
        keep = [t not in NEGATIONS for t in toks]
        for i, t in enumerate(toks):
            if keep[i]:
                out.append((t, bool(neg[i])))
            if i + 1 < len(toks) and keep[i] and keep[i + 1]:
                out.append((f"{t} {toks[i + 1]}", bool(neg[i] or neg[i + 1])))
    return out


def attribute_values(dataset) -> tuple[list[str], np.ndarray]:
    """(labels, (n_items, V) bool): every attribute value an item can have ("genre:Comedy",
    "decade:1990", "year:1995", "category:...", "brand:...", "price:budget")."""
    from ..instructions.attributes import PRICE_BANDS, item_attributes

    a = item_attributes(dataset)
    labels: list[str] = []
    blocks: list[np.ndarray] = []
    if a.n_genres:
        labels += [f"genre:{g}" for g in a.genre_names[:MAX_VALUES]]
        blocks.append(a.genre_matrix[:, :MAX_VALUES])
    for fam, codes, names in (
        ("decade", a.decade, None),
        ("year", a.year, None),
        ("category", a.category, a.category_names),
        ("brand", a.brand, a.brand_names),
        ("price", a.price_band.astype(np.int32), list(PRICE_BANDS)),
    ):
        codes = np.asarray(codes)
        vals, counts = np.unique(codes[codes >= 0], return_counts=True)
        vals = vals[np.argsort(-counts, kind="stable")][:MAX_VALUES]
        if len(vals):
            labels += [f"{fam}:{names[v] if names is not None else v}" for v in vals]
            blocks.append(codes[:, None] == vals[None, :])
    n = dataset.n_items
    return labels, (np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0), bool))


class LearnedFilter:
    """Base retriever + a phrase -> attribute table learned from training pairs (module doc)."""

    is_baseline = True
    name = "filter"

    def __init__(
        self,
        retriever,
        min_support: int = 5,  # pairs a gram must occur in
        min_lift: float = 1.5,  # P(value | gram) / P(value)
        min_prob: float = 0.8,  # P(value | gram)
    ) -> None:
        self.retriever = retriever
        self.min_support, self.min_lift, self.min_prob = int(min_support), min_lift, min_prob
        self.dataset = None
        self.labels: list[str] = []
        self.values: np.ndarray | None = None  # (n_items, V) bool
        self.table: dict[str, dict[int, float]] = {}  # gram -> {value index: strength}

    # ------------------------------------------------------------------ learning
    def fit(self, dataset, texts: Sequence[str], items) -> LearnedFilter:
        """Learn the table from (intention text, target item) pairs of TRAINING targets."""
        import scipy.sparse as sp

        items = np.asarray(items)
        if items.ndim != 1 or len(items) != len(texts):
            raise DataError(f"texts ({len(texts)}) and items {items.shape} must pair up 1:1")
        if items.size and not np.issubdtype(items.dtype, np.integer):
            raise DataError(f"items must be integer ids, got dtype {items.dtype}")
        items = items.astype(np.int64)
        if items.size and (items.min() < 0 or items.max() >= dataset.n_items):
            raise DataError(f"item ids must lie in 0..{dataset.n_items - 1}")
        self.dataset = dataset
        self.labels, self.values = attribute_values(dataset)
        self.table = {}
        # one pair per distinct (text, item): a popular item counts once, not per interaction
        uniq, inv = np.unique(
            np.asarray([str(t or "") for t in texts], object), return_inverse=True
        )
        inv = inv.reshape(-1)
        pair = (
            np.unique(np.stack([inv, items], axis=1), axis=0)
            if len(items)
            else np.empty((0, 2), np.int64)
        )
        inv, items = pair[:, 0], pair[:, 1]
        vocab: dict[str, int] = {}
        rows, cols = [], []
        for r, t in enumerate(uniq):
            for g in {g for g, negated in grams(t) if not negated}:
                rows.append(r)
                cols.append(vocab.setdefault(g, len(vocab)))
        if not vocab or not self.labels or not len(items):
            return self
        text_gram = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(uniq), len(vocab)))
        pair_text = sp.csr_matrix(
            (np.ones(len(inv)), (inv, np.arange(len(inv)))), shape=(len(uniq), len(inv))
        )
        vals = self.values[items].astype(np.float64)  # (pairs, V)
        joint = text_gram.T @ (pair_text @ vals)  # (G, V): pairs with gram and value
        n_gram = text_gram.T @ np.bincount(inv, minlength=len(uniq))  # pairs with the gram
        prior = vals.mean(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            cond = joint / np.maximum(n_gram, 1)[:, None]
            lift = cond / np.where(prior > 0, prior, np.inf)[None, :]
        ok = (n_gram[:, None] >= self.min_support) & (cond >= self.min_prob)
        ok &= lift >= self.min_lift
        names = list(vocab)
        for g, v in zip(*np.nonzero(ok), strict=True):
            self.table.setdefault(names[g], {})[int(v)] = float(cond[g, v])
        return self

    @classmethod
    def from_training(
        cls,
        retriever,
        dataset,
        split,
        kinds: Sequence[str] = ("I1", "I2"),
        seed: int = 0,
        per_user: int | None = None,
        **options,
    ) -> LearnedFilter:
        """Fit on `derive_intentions` of the TRAINING interactions' items (``per_user``: at
        most that many per user, drawn with ``seed``; None: all)."""
        from ..instructions import derive_intentions

        train = split.train
        if per_user is not None:
            rng = np.random.default_rng(seed)
            key = rng.random(len(train))
            order = np.lexsort((key, train["user"].to_numpy()))
            users = train["user"].to_numpy()[order]
            first = np.r_[True, users[1:] != users[:-1]]
            start = np.maximum.accumulate(np.where(first, np.arange(len(users)), 0))
            train = train.iloc[np.sort(order[np.arange(len(users)) - start < per_user])]
        items = train["item"].to_numpy(np.int64)
        texts: list[str] = []
        targets: list[np.ndarray] = []
        for kind in kinds:
            t, _ = derive_intentions(dataset, items, kind=kind, seed=seed)
            keep = np.array([bool(x) for x in t], bool)
            texts += [x for x, k in zip(t, keep, strict=True) if k]
            targets.append(items[keep])
        return cls(retriever, **options).fit(dataset, texts, np.concatenate(targets))

    # ------------------------------------------------------------------ reading
    def predict(self, text: str | None) -> tuple[dict[str, float], dict[str, float]]:
        """(wanted, excluded): attribute labels a request asks for / rules out, with strength."""
        want, avoid = self._predict(text)
        return (
            {self.labels[v]: s for v, s in want.items()},
            {self.labels[v]: s for v, s in avoid.items()},
        )

    def _predict(self, text) -> tuple[dict[int, float], dict[int, float]]:
        want: dict[int, float] = {}
        avoid: dict[int, float] = {}
        for g, negated in grams(text or ""):
            for v, s in self.table.get(g, {}).items():
                d = avoid if negated else want
                d[v] = max(d.get(v, 0.0), s)
        return want, {v: s for v, s in avoid.items() if v not in want}

    def score_candidates(
        self, users, candidates, histories, intentions=None, templates=None, attrs=None
    ) -> np.ndarray:
        """Scores (n, k): excluded candidates last, then by match level, then retriever order
        (module docstring). ``templates`` and ``attrs`` are never read."""
        from scipy.stats import rankdata

        if self.values is None:
            raise ValueError("LearnedFilter is not fitted: call fit() or from_training()")
        cands = np.asarray(candidates)
        if cands.ndim != 2 or len(cands) != len(users) or len(histories) != len(cands):
            raise DataError(
                f"candidates must be (n, k) with n = len(users) = len(histories), got "
                f"{cands.shape}, {len(users)} users, {len(histories)} histories"
            )
        cands = cands.astype(np.int64)
        base = np.asarray(self.retriever.score(np.asarray(users), cands, histories), np.float64)
        base_rank = rankdata(np.nan_to_num(base, nan=-np.inf), method="dense", axis=1) - 1.0
        n, k = cands.shape
        level = np.zeros((n, k))
        excl = np.zeros((n, k))
        if intentions is not None:
            if len(intentions) != n:
                raise DataError(f"intentions has {len(intentions)} rows, candidates {n}")
            texts = [str(t) if t else "" for t in intentions]
            by_text: dict[str, list[int]] = {}
            for r, t in enumerate(texts):
                by_text.setdefault(t, []).append(r)
            for t, rows in by_text.items():
                want, avoid = self._predict(t)
                for d, out in ((want, level), (avoid, excl)):
                    if d:
                        vs = np.fromiter(d, np.int64)
                        s = np.fromiter(d.values(), np.float64)
                        out[rows] = self.values[cands[rows]][:, :, vs].astype(np.float64) @ s
        lvl = np.round(level * 1000.0)  # equal levels tie exactly
        exq = np.round(excl * 1000.0)
        top = lvl.max() + 1.0 if lvl.size else 1.0
        return base_rank + (k + 1.0) * (lvl - top * exq)

    def describe(self, top: int = 20) -> dict:
        """Size of the table and its strongest entries (for the record)."""
        entries = sorted(
            ((s, g, self.labels[v]) for g, d in self.table.items() for v, s in d.items()),
            key=lambda e: (-e[0], e[1], e[2]),
        )
        return {
            "model": self.name,
            "grams": len(self.table),
            "entries": sum(len(d) for d in self.table.values()),
            "negations": sorted(NEGATIONS),
            "top": [f"{g} -> {lab} ({s:.2f})" for s, g, lab in entries[:top]],
        }
