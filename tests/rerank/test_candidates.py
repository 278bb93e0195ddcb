"""Instruction-aware candidates: seen items never come back (tiny catalogues included), the
parsed instruction reaches the whole catalogue, instruction-only requests, explicit lists."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from instructrec.data import Dataset
from instructrec.data.split import leave_one_out
from instructrec.instructions import item_attributes
from instructrec.recommender import Recommender
from instructrec.rerank.candidates import (
    MATCHED,
    RETRIEVED,
    instruction_candidates,
    match_grades,
    rank_order,
)
from instructrec.retrieval.itemknn import ItemKNN
from instructrec.retrieval.pop import Pop


class LargestIdFirst:
    """A stand-in reranker that loves large item ids (it would revive any seen item given)."""

    def __init__(self) -> None:
        self.calls: list[np.ndarray] = []

    def score_candidates(
        self, users, candidates, histories, intentions=None, templates=None, prior=None
    ):
        self.calls.append(np.asarray(candidates))
        return np.asarray(candidates, np.float32) * 10.0


def tiny_catalogue(n_items: int = 12) -> Dataset:
    """12 items (half comedies), 6 users; u0 has seen 9 of them."""
    genres = [("Comedy",) if j % 2 == 0 else ("Drama",) for j in range(n_items)]
    items = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(n_items)],
            "title": [f"Film {j}" for j in range(n_items)],
            "year": pd.array([1990 + j for j in range(n_items)], dtype="Int64"),
            "genres": genres,
        }
    )
    rows = [("u0", f"i{j}", 4.0, float(t)) for t, j in enumerate(range(9))]
    rng = np.random.default_rng(0)
    for u in range(1, 6):
        for t, j in enumerate(rng.choice(n_items, 5, replace=False)):
            rows.append((f"u{u}", f"i{j}", 3.0, 100.0 * u + t))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return Dataset.from_frames("tiny", inter, items)


@pytest.fixture()
def tiny_rec():
    ds = tiny_catalogue()
    knn = ItemKNN()
    return Recommender(ds, knn, priors=[knn, Pop()]).fit(leave_one_out(ds, 0, 0.0))  # no negatives


@pytest.mark.parametrize("reranker", [False, True])
@pytest.mark.parametrize("instruction", [None, "a comedy", "something nice"])
def test_no_seen_item_on_a_tiny_catalogue(tiny_rec, reranker, instruction):
    rec = tiny_rec
    if reranker:
        rec.reranker = LargestIdFirst()
    uid = int(rec.dataset.user_index(["u0"])[0])
    seen = set(rec.dataset.item_ids[rec.sequences[uid]])
    assert len(seen) >= 8  # most of the catalogue
    answer = rec.answer(user="u0", instruction=instruction, n=10)
    got = [r.item_id for r in answer.items]
    assert not seen & set(got)
    assert len(got) == len(set(got)) == rec.dataset.n_items - len(seen)  # fewer, not padded
    assert answer.message and f"only {len(got)} unseen items to offer" in answer.message
    if instruction == "a comedy":  # i10 is the only comedy u0 has not seen
        assert answer.n_matching == 1 and answer.understood == "Comedy"
        assert "only 1 unseen item matches 'Comedy'" in answer.message
        assert answer.items[0].item_id == "i10" and answer.items[0].reason.startswith("matches")
    if reranker:  # the reranker was never even shown a seen item
        shown = set(rec.dataset.item_ids[np.concatenate([c.ravel() for c in rec.reranker.calls])])
        assert not seen & shown


def test_explicit_candidates_drop_seen_items_and_duplicates(tiny_rec):
    rec = tiny_rec
    uid = int(rec.dataset.user_index(["u0"])[0])
    seen = list(rec.dataset.item_ids[rec.sequences[uid]])
    df = rec.recommend(user="u0", candidates=[seen[0], "i10", "i11", "i10"], n=5)
    assert sorted(df["item_id"]) == ["i10", "i11"]
    assert (
        "i0" in rec.recommend(user="u0", candidates=["i0"], exclude_seen=False)["item_id"].tolist()
    )


def test_matching_items_come_from_the_whole_catalogue(ml100k, ml100k_split):
    """A taste the history never shows: the parsed path still finds every unseen noir."""
    knn = ItemKNN().fit(ml100k_split.train, ml100k.n_users, ml100k.n_items)
    seqs = ml100k_split.sequences("test")
    users = ml100k_split.test["user"].to_numpy(np.int64)[:3]
    hists = [seqs[int(u)] for u in users]
    cs = instruction_candidates(
        ml100k, knn, users, hists, ["a film noir"] * 3, depth=20, n_match=500, n_dense=0
    )
    a = item_attributes(ml100k)
    noir = a.genre_matrix[:, a.genre_names.index("Film-Noir")]
    for i, h in enumerate(hists):
        row = cs.row(i)
        assert not np.isin(row, h).any() and len(row) == len(set(row))
        unseen_noirs = set(np.flatnonzero(noir)) - set(h.tolist())
        assert unseen_noirs <= set(row.tolist())
        assert cs.n_matching[i] == len(unseen_noirs)
        src = cs.source[i][cs.valid[i]]
        assert (src[np.isin(row, list(unseen_noirs))] & MATCHED).all()
        assert (src & RETRIEVED).sum() == 20


def test_grades_order_and_exclusions(ml100k):
    from instructrec.instructions import parse_intention

    p = parse_intention(ml100k, "a romantic comedy from the 90s, no horror")
    grade, match = match_grades(ml100k, p)
    a = item_attributes(ml100k)
    g = {n: a.genre_matrix[:, a.genre_names.index(n)] for n in ("Comedy", "Romance", "Horror")}
    full = g["Comedy"] & g["Romance"] & (a.decade == 1990) & ~g["Horror"]
    assert (grade[full] == 1).all() and (grade[g["Horror"]] == -1).all()
    assert not match[g["Horror"]].any()
    scores = np.array([[5.0, 1.0, 9.0, 3.0]])
    order = rank_order(scores, np.array([[1.0, 1.0, 0.5, -1.0]]), np.ones((1, 4), bool))
    assert order[0].tolist() == [0, 1, 2, 3]  # grade first, then score
    order = rank_order(scores, np.zeros((1, 4)), np.array([[True, True, False, True]]))
    assert order[0].tolist() == [0, 3, 1, 2]  # padding last


def test_an_exclusion_alone_matches_everything_else(ml100k):
    """ "no horror" asks for nothing positive: every item without Horror matches it (the answer
    used to say no unseen movie matched 'not Horror')."""
    from instructrec.instructions import parse_intention
    from instructrec.rerank.explain import message

    p = parse_intention(ml100k, "no horror")
    assert p.get("excluded") and not _conditions_of(p)
    grade, match = match_grades(ml100k, p)
    a = item_attributes(ml100k)
    horror = a.genre_matrix[:, a.genre_names.index("Horror")]
    np.testing.assert_array_equal(match, ~horror)
    assert (grade[horror] == -1).all() and (grade[~horror] == 0).all()
    n_matching = int(match.sum())
    assert message(p, "no horror", 10, 10, n_matching, ("movie", "movies")) is None
    assert "no unseen movie" in message(p, "no horror", 10, 10, 0, ("movie", "movies"))


def _conditions_of(parsed):
    from instructrec.rerank.candidates import units

    return units(parsed)


def test_instruction_only_request(tiny_rec):
    rec = tiny_rec
    answer = rec.answer(instruction="a comedy", n=3)
    a = item_attributes(rec.dataset)
    comedy = a.genre_matrix[:, a.genre_names.index("Comedy")]
    ids = rec.dataset.item_index([r.item_id for r in answer.items])
    assert len(ids) == 3 and comedy[ids].all()
    assert answer.understood == "Comedy"
    assert all("popular" in r.reason and "matches Comedy" in r.reason for r in answer.items)
    with pytest.raises(Exception, match="give a user id, an explicit history or an instruction"):
        rec.answer(n=3)
