"""`PhraseTable`: request words -> item attribute values, learned from training intentions.

What a request asks for, read by a table learned from (intention text, target item) pairs
built on TRAINING targets only (`from_training`: `derive_intentions` of ``split.train``
items), instead of the parser's hand-written synonym list (`parse.parse_intention`, which
shares words with the intention generator). Two readers use it: the ``sasrec+filter`` rival
(`evaluation.learned_filter`) and, with ``reranker.intent_phrases``, the reranker's
intention channel where the parser reads nothing (`rerank.intentions.intention_match`).

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

A table reads only requests worded in words it has seen (``min_coverage``, the share of a
request's words that occur in the training intentions; 0 reads every text): on requests in
other words it reads wrong values (ML-100K validation: where the parser reads nothing, the
target had every value the table read in 20% of hand-written vague requests, 97% of
generator-worded ones; every generator-worded request has coverage 1.0, 2 of 943 hand-written
ones do; `benchmarks/bench_phrase_coverage.py`).

Negation is the one hand-written part: a word of ``NEGATIONS`` opens a scope over the next
``NEGATION_SCOPE`` tokens of its clause (closed early by "but"); grams in it predict values
to EXCLUDE. A value both asked for and excluded stays asked for. Only the TEXT is read,
never structured attributes of the request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ..data.errors import DataError

NEGATIONS = frozenset(
    {"no", "not", "without", "never", "nothing", "none", "except", "excluding", "avoid"}
    | {"don't", "dont", "isn't", "nor"}
)  # hand-written: the only words the table is told
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
    from .attributes import PRICE_BANDS, item_attributes

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


class PhraseTable:
    """Gram -> {attribute value: strength}, learned from training pairs (module docstring)."""

    def __init__(
        self,
        min_support: int = 5,  # pairs a gram must occur in
        min_lift: float = 1.5,  # P(value | gram) / P(value)
        min_prob: float = 0.8,  # P(value | gram)
        min_coverage: float = 0.0,  # share of a request's words seen in training to read it
    ) -> None:
        self.min_support, self.min_lift, self.min_prob = int(min_support), min_lift, min_prob
        if not 0.0 <= float(min_coverage) <= 1.0:
            raise DataError(f"phrase table min_coverage must be in [0, 1], got {min_coverage}")
        self.min_coverage = float(min_coverage)
        self.vocab: frozenset[str] = frozenset()  # words of the training intentions
        self.labels: list[str] = []  # attribute value labels ("genre:Comedy"), column order
        self.table: dict[str, dict[int, float]] = {}  # gram -> {value index: strength}
        self._values: tuple[object, np.ndarray] | None = None  # (dataset, (n_items, V) bool)

    # ------------------------------------------------------------------ learning
    def fit(self, dataset, texts: Sequence[str], items) -> PhraseTable:
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
        self.labels, values = attribute_values(dataset)
        self._values = (dataset, values)
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
        words: set[str] = set()
        for r, t in enumerate(uniq):
            gs = grams(t)
            words.update(g for g, _ in gs if " " not in g)
            for g in {g for g, negated in gs if not negated}:
                rows.append(r)
                cols.append(vocab.setdefault(g, len(vocab)))
        self.vocab = frozenset(words)
        if not vocab or not self.labels or not len(items):
            return self
        text_gram = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(uniq), len(vocab)))
        pair_text = sp.csr_matrix(
            (np.ones(len(inv)), (inv, np.arange(len(inv)))), shape=(len(uniq), len(inv))
        )
        vals = values[items].astype(np.float64)  # (pairs, V)
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
        dataset,
        split,
        kinds: Sequence[str] = ("I1", "I2"),
        seed: int = 0,
        per_user: int | None = None,
        **options,
    ) -> PhraseTable:
        """Fit on `derive_intentions` of the TRAINING interactions' items (``per_user``: at
        most that many per user, drawn with ``seed``; None: all)."""
        from .derive import derive_intentions

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
        targets: list[np.ndarray] = [np.empty(0, np.int64)]
        for kind in kinds:
            t, _ = derive_intentions(dataset, items, kind=kind, seed=seed)
            keep = np.array([bool(x) for x in t], bool)
            texts += [x for x, k in zip(t, keep, strict=True) if k]
            targets.append(items[keep])
        return cls(**options).fit(dataset, texts, np.concatenate(targets))

    # ------------------------------------------------------------------ reading
    def predict(self, text: str | None) -> tuple[dict[str, float], dict[str, float]]:
        """(wanted, excluded): attribute labels a request asks for / rules out, with strength."""
        want, avoid = self.read(text)
        return (
            {self.labels[v]: s for v, s in want.items()},
            {self.labels[v]: s for v, s in avoid.items()},
        )

    def coverage(self, text) -> float:
        """Share of ``text``'s words that occur in the training intentions (1.0 for a text
        without words, or a table saved without its vocabulary)."""
        return self._coverage(grams(text or ""))

    def _coverage(self, gs: list[tuple[str, bool]]) -> float:
        words = [g for g, _ in gs if " " not in g]
        if not words or not self.vocab:
            return 1.0
        return sum(w in self.vocab for w in words) / len(words)

    def read(self, text) -> tuple[dict[int, float], dict[int, float]]:
        """(wanted, excluded) as {value index: strength}; nothing for a text whose
        `coverage` is below ``min_coverage``."""
        want: dict[int, float] = {}
        avoid: dict[int, float] = {}
        gs = grams(text or "")
        if self.min_coverage > 0 and self._coverage(gs) < self.min_coverage - 1e-9:
            return want, avoid
        for g, negated in gs:
            for v, s in self.table.get(g, {}).items():
                d = avoid if negated else want
                d[v] = max(d.get(v, 0.0), s)
        return want, {v: s for v, s in avoid.items() if v not in want}

    def values(self, dataset) -> np.ndarray:
        """(n_items, V) bool attribute values of ``dataset``'s items, in ``labels`` order."""
        if self._values is None or self._values[0] is not dataset:
            labels, values = attribute_values(dataset)
            if labels != self.labels:
                raise DataError(
                    f"the phrase table was learned on other attribute values ({len(self.labels)} "
                    f"labels) than this dataset has ({len(labels)}): not the same catalogue"
                )
            self._values = (dataset, values)
        return self._values[1]

    def levels(self, dataset, texts, candidates) -> tuple[np.ndarray, np.ndarray]:
        """((n, k) wanted, (n, k) excluded) float64: per candidate, the strength-weighted count
        of the values the row's text asks for / rules out that it has (0 without a text)."""
        cands = np.asarray(candidates, np.int64)
        want_lv, excl_lv = np.zeros(cands.shape), np.zeros(cands.shape)
        if texts is None or cands.size == 0:
            return want_lv, excl_lv
        values = self.values(dataset)
        by_text: dict[str, list[int]] = {}
        for r, t in enumerate(texts):
            by_text.setdefault(str(t) if t else "", []).append(r)
        for t, rows in by_text.items():
            for d, out in zip(self.read(t), (want_lv, excl_lv), strict=True):
                if d:
                    vs = np.fromiter(d, np.int64)
                    s = np.fromiter(d.values(), np.float64)
                    out[rows] = values[cands[rows]][:, :, vs].astype(np.float64) @ s
        return want_lv, excl_lv

    def wanted_strength(self, texts) -> np.ndarray:
        """(n,) total strength of the values each text asks for (0: nothing read)."""
        return np.array([sum(self.read(t)[0].values()) for t in texts], np.float64)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        return {
            "min_support": self.min_support,
            "min_lift": self.min_lift,
            "min_prob": self.min_prob,
            "min_coverage": self.min_coverage,
            "vocab": sorted(self.vocab),
            "labels": list(self.labels),
            "table": {g: {str(v): s for v, s in d.items()} for g, d in sorted(self.table.items())},
        }

    @classmethod
    def from_dict(cls, d: dict) -> PhraseTable:
        try:
            # a table saved before the gate existed reads every text, as it did
            out = cls(d["min_support"], d["min_lift"], d["min_prob"], d.get("min_coverage", 0.0))
            out.vocab = frozenset(str(w) for w in d.get("vocab", []))
            out.labels = [str(x) for x in d["labels"]]
            out.table = {
                str(g): {int(v): float(s) for v, s in vs.items()} for g, vs in d["table"].items()
            }
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise DataError(f"not a saved phrase table ({e})") from e
        bad = [v for vs in out.table.values() for v in vs if not 0 <= v < len(out.labels)]
        if bad:
            raise DataError(
                f"phrase table: value index {bad[0]} outside its {len(out.labels)} labels"
            )
        return out

    def describe(self, top: int = 20) -> dict:
        """Size of the table and its strongest entries (for the record)."""
        entries = sorted(
            ((s, g, self.labels[v]) for g, d in self.table.items() for v, s in d.items()),
            key=lambda e: (-e[0], e[1], e[2]),
        )
        return {
            "grams": len(self.table),
            "vocabulary": len(self.vocab),
            "min_coverage": self.min_coverage,
            "entries": sum(len(d) for d in self.table.values()),
            "negations": sorted(NEGATIONS),
            "top": [f"{g} -> {lab} ({s:.2f})" for s, g, lab in entries[:top]],
        }
