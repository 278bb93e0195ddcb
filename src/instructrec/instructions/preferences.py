"""Explicit preferences (P2) from a user's ratings before the target.

InstructRec's P2 is a sentence about what the user likes and dislikes (Zhang et al. 2023,
Sec. 3.1). We count, over the interactions strictly before each target, the genres and
decades of liked items (rating >= 4, or any interaction when the log has no ratings) and the
genres of disliked ones (rating <= 2), then say the top ones in words. Counts over each row's
prefix come from `np.bincount` over (row, interaction) pairs: a few numpy passes over the log.
"""

from __future__ import annotations

import numpy as np

from instructrec.data.dataset import DISLIKED_RATING, LIKED_RATING, Dataset

from .attributes import genre_label, item_attributes
from .derive import _by_combination
from .titles import domain_noun

CHUNK = 1 << 22  # (row, interaction) pairs per counting chunk (bounds memory)


def _prefix_counts(
    attrs,
    seq_items: np.ndarray,
    liked: np.ndarray,
    disliked: np.ndarray,
    dec_col: np.ndarray,
    nd: int,
    starts: np.ndarray,
    ends: np.ndarray,
):
    """Per row, counts over seq[starts:ends] of liked genres, disliked genres, liked decades.

    The rows' ranges are expanded to (row, position) pairs in chunks of ~CHUNK pairs and
    counted with `np.bincount`, so nested ranges (several targets per user) cost their length.
    """
    n, ng = len(starts), attrs.n_genres
    like = np.zeros((n, ng), np.int32)
    dis = np.zeros((n, ng), np.int32)
    dec = np.zeros((n, nd), np.int32)
    lengths = np.maximum(ends - starts, 0)
    cum = np.cumsum(lengths)
    lo = 0
    while lo < n:
        base = cum[lo - 1] if lo else 0
        hi = int(np.searchsorted(cum, base + CHUNK, side="right"))
        hi = min(max(hi, lo + 1), n)
        c = lengths[lo:hi]
        m = int(c.sum())
        if m:
            row = np.repeat(np.arange(hi - lo), c)
            pos = np.repeat(starts[lo:hi] - np.r_[0, np.cumsum(c)[:-1]], c) + np.arange(m)
            it = seq_items[pos]
            lk, dk = liked[pos], disliked[pos]
            if ng:  # a catalogue without genres has nothing to count (and reshape(-1, 0) fails)
                # genres: expand each interaction to its item's genres (CSR)
                gc = attrs.genre_count[it]
                grow = np.repeat(row, gc)
                gpos = np.repeat(
                    attrs.genre_ptr[it] - np.r_[0, np.cumsum(gc)[:-1]], gc
                ) + np.arange(int(gc.sum()))
                g = attrs.genre_idx[gpos].astype(np.int64)
                key = grow * ng + g
                size = (hi - lo) * ng
                like[lo:hi] = np.bincount(key[np.repeat(lk, gc)], minlength=size).reshape(-1, ng)
                dis[lo:hi] = np.bincount(key[np.repeat(dk, gc)], minlength=size).reshape(-1, ng)
            ok = lk & (dec_col >= 0)[it]
            if nd:
                dec[lo:hi] = np.bincount(
                    row[ok] * nd + dec_col[it[ok]], minlength=(hi - lo) * nd
                ).reshape(-1, nd)
        lo = hi
    return like, dis, dec


def derive_preferences(
    dataset: Dataset,
    seq_items: np.ndarray,
    seq_ratings: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    seed: int = 0,
) -> np.ndarray:
    """P2 text per row from interactions ``seq_*[starts[r]:ends[r]]`` (all before the target).

    Returns an object array of str ("" when the prefix says nothing, e.g. no genres).
    """
    attrs = item_attributes(dataset)
    seq_items = np.asarray(seq_items, np.int64)
    r = np.asarray(seq_ratings, np.float32)
    implicit = not np.isfinite(r).any()
    liked = np.ones(len(r), bool) if implicit else (r >= LIKED_RATING)
    disliked = np.zeros(len(r), bool) if implicit else (r <= DISLIKED_RATING)
    decades = np.unique(attrs.decade[attrs.decade > 0])
    dec_col = np.where(attrs.decade > 0, np.searchsorted(decades, attrs.decade), -1)
    ng, nd = attrs.n_genres, len(decades)
    like, dis, dec = _prefix_counts(
        attrs,
        seq_items,
        liked,
        disliked,
        dec_col,
        nd,
        np.asarray(starts, np.int64),
        np.asarray(ends, np.int64),
    )
    n = len(starts)
    rows = np.arange(n)
    if ng:
        # favourite genres: liked more often than the catalogue's genre mix predicts (lift),
        # so that "drama and comedy" does not win for everybody
        base = attrs.genre_matrix.mean(axis=0) + 1e-9
        total = like.sum(axis=1, keepdims=True)
        lift = np.where(like >= 2, like - total * base, -np.inf)
        lift[:, :] = np.where(np.isfinite(lift), lift, -1e9)
        top = np.argsort(-lift, axis=1, kind="stable")[:, :2]
        ok1 = like[rows, top[:, 0]] >= 2
        g1 = np.where(ok1, top[:, 0], np.where(total[:, 0] > 0, like.argmax(axis=1), -1))
        g2 = (
            np.where(
                ok1 & (like[rows, top[:, 1]] >= 2) & (lift[rows, top[:, 1]] > 0), top[:, 1], -1
            )
            if ng > 1
            else np.full(n, -1)
        )
        # a disliked genre: disliked more often than liked, and not one of the favourites
        score = np.where(dis > like, dis, 0)
        for g in (g1, g2):
            score[rows, np.maximum(g, 0)] = np.where(g >= 0, 0, score[rows, np.maximum(g, 0)])
        bad = score.argmax(axis=1)
        bad = np.where(score[rows, bad] > 0, bad, -1)
    else:
        g1 = g2 = bad = np.full(n, -1)
    if nd:
        dbase = np.bincount(dec_col[dec_col >= 0], minlength=nd) / max(1, (dec_col >= 0).sum())
        dlift = dec - dec.sum(axis=1, keepdims=True) * dbase
        dtop = dlift.argmax(axis=1)
        dfav = np.where((dec[rows, dtop] >= 2) & (dlift[rows, dtop] > 0), decades[dtop], -1)
    else:
        dfav = np.full(n, -1)
    variant = np.random.default_rng([seed, 3]).integers(0, 3, n)
    nouns = domain_noun(dataset)[1]
    cols = [g1, g2, bad, dfav, variant]
    texts, _ = _by_combination(cols, lambda c: (_text(attrs.genre_names, nouns, *c), None))
    return texts


def _text(names: list[str], nouns: str, g1, g2, bad, dec, variant) -> str:
    if g1 < 0:
        return ""
    likes = genre_label(names[g1]) + (f" and {genre_label(names[g2])}" if g2 >= 0 else "")
    era = f", especially from the {dec}s" if dec > 0 else ""
    dislike = genre_label(names[bad]) if bad >= 0 else ""
    if variant == 0:
        s = f"I like {likes} {nouns}{era}."
        return s + (f" I don't enjoy {dislike} {nouns}." if dislike else "")
    if variant == 1:
        s = f"My favourites are {likes} {nouns}{era}."
        return s + (f" I usually dislike {dislike} {nouns}." if dislike else "")
    s = f"I'm a fan of {likes}{era}."
    return s + (f" Please, no {dislike}." if dislike else "")
