"""Training and validation instances for the listwise encoder reranker.

An instance is one instruction (query text without the candidate list: a bi-encoder encodes it
once), a list of candidates with the target at a random position, the user's history ids and
the retrievers' prior scores per candidate. Query texts are rendered from the InstructRec template
catalogue (`instructrec.instructions.render`), slots P1/P2 x I0/I1/I2 x T3, seen templates
only for training. Instances are stored as arrays; the engine iterates over row indices and
`Instances.collate` gathers a batch, encoding each distinct query text once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..data.split import Split
from .rerank_features import stacked_frame


@dataclass
class TextSide:
    """What rendering a query needs from the dataset (kept with a saved reranker)."""

    titles: np.ndarray  # display title per internal item id
    noun: str = "item"
    nouns: str = "items"
    words: dict | None = None  # every domain field ({consumed}, ...); None: from noun/nouns

    @classmethod
    def of(cls, dataset) -> TextSide:
        from ..instructions.titles import display_title, domain_words

        words = domain_words(dataset)
        titles = np.asarray(display_title(dataset), dtype=object)
        return cls(titles, words["noun"], words["nouns"], words)

    def to_dict(self) -> dict:
        """JSON-able form (what a saved reranker's ``text.json`` holds)."""
        return {
            "titles": [str(t) for t in self.titles],
            "noun": self.noun,
            "nouns": self.nouns,
            "words": dict(self.words) if self.words else None,
        }

    @classmethod
    def from_dict(cls, data: dict) -> TextSide:
        """Inverse of `to_dict`; a `DataError` when ``data`` is not one."""
        from ..data.errors import DataError

        titles = data.get("titles") if isinstance(data, dict) else None
        words = data.get("words") if isinstance(data, dict) else None
        if (
            not isinstance(titles, list)
            or not all(isinstance(t, str) for t in titles)
            or not isinstance(data.get("noun", "item"), str)
            or not isinstance(data.get("nouns", "items"), str)
            or not (words is None or isinstance(words, dict))
        ):
            raise DataError("not a reranker text side (titles, noun, nouns, words)")
        return cls(
            np.asarray(titles, dtype=object),
            data.get("noun", "item"),
            data.get("nouns", "items"),
            words,
        )

    def fields(self) -> dict[str, str]:
        """Domain field -> text; a reranker saved before `words` existed derives them from
        its noun (so a saved MovieLens model still says "watched")."""
        from ..instructions.titles import domain_words_for

        return dict(self.words) if self.words else domain_words_for(self.noun, self.nouns)

    def wording(self, history: int = 3, slots: list[str] | None = None):
        """`instructions.render.RerankerQuery` of this text side: what `render` needs to
        write the reranker's query texts."""
        from ..instructions.render import RerankerQuery

        return RerankerQuery(self.titles, self.fields(), history, slots)

    def render(
        self,
        histories,
        intentions=None,
        *,
        templates=None,
        preferences=None,
        history: int = 3,
        slots: list[str] | None = None,
        seed: int = 0,
    ) -> list[str]:
        """The reranker's query texts: `instructions.render.render` in this side's wording
        (the last ``history`` titles; ``slots`` pins the template slot per row)."""
        from ..instructions.render import render

        return render(
            None,
            histories,
            intentions,
            template_ids=templates,
            preferences=preferences,
            seed=seed,
            query=self.wording(history, slots),
        )


class Instances(Sequence):
    """Array-backed instances; the engine indexes rows, `collate` builds tensors."""

    def __init__(
        self,
        texts: list[str],
        tokenizer,
        max_len: int,
        cands: np.ndarray,
        label: np.ndarray,
        hist: np.ndarray,
        prior: np.ndarray,
    ) -> None:
        self.texts = texts
        self.tokenizer = tokenizer
        self.max_len = max_len
        self.cands, self.label, self.hist, self.prior = cands, label, hist, prior

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i):  # the engine passes rows to collate
        return int(i)

    def collate(self, rows: list[int]) -> dict:
        """`models.scoring.batch_tensors` of the rows (each distinct text encoded once) +
        ``label``."""
        import torch

        from ..models.scoring import batch_tensors

        idx = np.asarray(rows, dtype=np.int64)
        texts = [self.texts[i] for i in idx]
        batch = batch_tensors(
            self.tokenizer,
            self.max_len,
            texts,
            self.cands[idx],
            self.hist[idx],
            self.prior[idx],
            dedupe=True,
        )
        batch["label"] = torch.as_tensor(self.label[idx])
        return batch


def user_sequences(train, n_users: int):
    """(per-user item sequences, sorted items, sorted ratings, start offset per user)."""
    inter = train.sort_values(["user", "timestamp", "order"], kind="stable")
    items = inter["item"].to_numpy(np.int64)
    ratings = inter["rating"].to_numpy(np.float32)
    counts = np.bincount(inter["user"].to_numpy(np.int64), minlength=n_users)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    seqs = [items[a : a + c] for a, c in zip(starts, counts, strict=True)]
    return seqs, items, ratings, starts


def build_instances(rr, dataset, split: Split, stacked: Sequence, config) -> Instances:
    """Training instances from each user's last ``config.holdout`` training items."""
    from ..models.encoder_config import pad_histories
    from .intentions import intentions_for

    rng = np.random.default_rng(config.seed)
    seqs, seq_items, seq_ratings, seq_starts = user_sequences(split.train, dataset.n_users)
    users, pos = [], []
    for u, s in enumerate(seqs):
        if len(s) < config.holdout + 2:
            continue
        for t in range(len(s) - config.holdout, len(s)):
            users.extend([u] * config.copies)
            pos.extend([t] * config.copies)
    users_a = np.asarray(users, np.int64)
    pos_a = np.asarray(pos, np.int64)
    if config.max_instances and len(users_a) > config.max_instances:
        keep = np.sort(rng.choice(len(users_a), config.max_instances, replace=False))
        users_a, pos_a = users_a[keep], pos_a[keep]
    targets_a = np.array([seqs[u][t] for u, t in zip(users_a, pos_a, strict=True)], np.int64)
    hists = [seqs[u][:t] for u, t in zip(users_a, pos_a, strict=True)]
    n = len(users_a)
    k = 1 + config.n_hard + config.n_random
    cands = np.full((n, k), -1, np.int64)
    cands[:, 0] = targets_a
    if config.n_hard and stacked:
        pool, _ = stacked[0].candidates(
            users_a, config.hard_pool, exclude_seen=True, histories=list(hists)
        )
    n_items = dataset.n_items
    for r in range(n):
        taken = set(seqs[users_a[r]].tolist())
        taken.add(int(targets_a[r]))
        col = 1
        if config.n_hard and stacked:
            opts = [int(x) for x in pool[r] if int(x) not in taken]
            for x in rng.permutation(opts)[: config.n_hard]:
                cands[r, col] = x
                taken.add(int(x))
                col += 1
        while col < k:
            x = int(rng.integers(n_items))
            if x not in taken:
                cands[r, col] = x
                taken.add(x)
                col += 1
    # target to a random position (heads may see the list as a set or a sequence)
    perm = np.argsort(rng.random((n, k)), axis=1)
    cands = np.take_along_axis(cands, perm, axis=1)
    label = np.argmax(perm == 0, axis=1).astype(np.int64)
    cold = cold_items = None
    if getattr(config, "cold_dropout", 0.0) > 0:  # DropoutNet (`rerank.cold`); own draws
        from .cold import cold_dropout_mask, zero_interaction_items

        fit_part = stacked_frame(split.train, config.holdout)[0] if config.stack else split.train
        cold_items = zero_interaction_items(fit_part, n_items)  # of the stacked priors' data
        natural = cold_items[cands]
        cold = cold_dropout_mask(
            natural, label, config.cold_dropout, np.random.default_rng([config.seed, 15])
        )
    if not stacked:
        prior = np.zeros((n, k, 0))
    else:
        prior = _cold_aware_priors(stacked, users_a, cands, hists, cold, cold_items, config)
    slots = [config.slots[j] for j in rng.integers(len(config.slots), size=n)]
    intents = intentions_for(dataset, targets_a, slots, seed=config.seed)
    prefs = None
    if any(s.startswith("P2") for s in slots):
        from .intentions import preferences_for

        st = seq_starts[users_a]
        prefs = preferences_for(dataset, seq_items, seq_ratings, st, st + pos_a, seed=config.seed)
    texts = rr.text.render(
        hists,
        intents,
        templates="seen",
        preferences=prefs,
        history=config.query_history,
        slots=slots,
        seed=config.seed,
    )
    if getattr(config, "intent_match", False):  # from the intention TEXT, as at test time
        from .intentions import intention_match

        match = intention_match(dataset, intents, cands, rr.phrases)
        drop = float(getattr(config, "intent_dropout", 0.0))
        if drop > 0:  # own draws: the other instances stay as without dropout
            gone = np.random.default_rng([config.seed, 16]).random(n) < drop
            match = np.where(gone[:, None], 0.0, match)
        prior = np.concatenate([prior, match[..., None]], -1)
    if cold is not None:
        from .cold import with_cold_channel

        prior = with_cold_channel(prior, cold)
    hist_pad = pad_histories(hists, config.history_len)
    return Instances(
        texts,
        rr.scorer.tokenizer,
        rr.scorer.model.config.max_query_len,
        cands,
        label,
        hist_pad,
        prior.astype(np.float32),
    )


def _cold_aware_priors(retrievers, users, cands, hists, cold, cold_items, config):
    """The retriever channels (`cold.list_priors`) of ``cands``; with the cold channel
    (``cold`` (n, k) not None) and ``cold_fill: catalogue``, cold candidates' raw scores are an
    average warm item's first (`cold.fill_cold`; ``cold_items``: no interactions in the data the
    retrievers were fitted on), as `Recommender.prior_scores` gives them at inference."""
    from .cold import content_channels, fill_cold, list_priors

    raw = _priors(retrievers, users, cands, hists)
    filled = cold is not None and getattr(config, "cold_fill", "list") == "catalogue"
    if filled:
        raw = fill_cold(raw, cold, retrievers, users, hists, ~cold_items)
    return list_priors(raw, cold, content_channels(retrievers), filled=filled)


def _priors(retrievers, users, cands, hists):
    from .rerank_features import score_priors

    return score_priors(retrievers, users, cands, hists)


class Validation:
    """Validation rows (cand10 candidates, I0 and I2 queries) for early stopping."""

    def __init__(self, rr, dataset, split: Split, priors: Sequence, config) -> None:
        from ..models.encoder_config import pad_histories
        from .intentions import intentions_for

        frame = split.valid
        rows = np.arange(len(frame))
        if config.valid_rows and len(rows) > config.valid_rows:
            rows = np.sort(
                np.random.default_rng(config.seed + 1).choice(
                    len(rows), config.valid_rows, replace=False
                )
            )
        self.cands = split.candidates["cand10"]["valid"][rows].astype(np.int64)
        seqs = split.sequences("valid")
        users = frame["user"].to_numpy(np.int64)[rows]
        hists = [seqs.get(int(u), np.empty(0, np.int64)) for u in users]
        cold = None
        if getattr(config, "cold_dropout", 0.0) > 0:  # as at inference: `prior_features`
            cold = rr.cold_items[self.cands]
        if not priors:
            self.prior = np.zeros((len(rows), self.cands.shape[1], 0), np.float32)
        else:
            self.prior = _cold_aware_priors(
                priors, users, self.cands, hists, cold, rr.cold_items, config
            )
        self.hist = pad_histories(hists, config.history_len)
        self.tok = rr.scorer.tokenizer
        self.texts_i0 = rr.text.render(hists, history=config.query_history)
        intents = intentions_for(dataset, self.cands[:, 0], ["P1I2"] * len(rows), seed=1)
        self.texts_i2 = rr.text.render(hists, intents, history=config.query_history)
        self.prior_i2 = self.prior  # priors of the I2 rows (+ the intent-match channel)
        if getattr(config, "intent_match", False):
            from .intentions import intention_match

            zero = np.zeros(self.cands.shape + (1,), np.float32)
            match = intention_match(dataset, intents, self.cands, rr.phrases)
            self.prior_i2 = np.concatenate([self.prior, match[..., None]], -1).astype(np.float32)
            self.prior = np.concatenate([self.prior, zero], -1).astype(np.float32)
        if cold is not None:
            from .cold import with_cold_channel

            self.prior = with_cold_channel(self.prior, cold)
            self.prior_i2 = with_cold_channel(self.prior_i2, cold)

    def _scores(self, model, texts: list[str], bs: int = 256, prior=None) -> np.ndarray:
        from ..models.scoring import score_arrays

        prior = self.prior if prior is None else prior
        return score_arrays(model, self.tok, texts, self.cands, self.hist, prior, bs)

    def metrics(self, model) -> dict[str, float]:
        from .rerank_features import ranking_metrics

        m = ranking_metrics(self._scores(model, self.texts_i0))
        s = ranking_metrics(self._scores(model, self.texts_i2, prior=self.prior_i2))
        m["search_hr@1"] = s["hr@1"]
        m["mix"] = 0.5 * (m["hr@1"] + s["hr@1"])
        return m
