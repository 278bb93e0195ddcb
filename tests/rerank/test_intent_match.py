"""The reranker's intent-match prior channel is computed from the intention TEXT."""

from __future__ import annotations

import numpy as np

from instructrec.instructions import derive_intentions, intention_matches, parse_intention
from instructrec.instructions.attributes import item_attributes
from instructrec.rerank.intentions import EXCLUDED_MATCH, intention_match


def test_comedy_text_marks_comedies_and_no_intention_gives_zeros(ml100k):
    a = item_attributes(ml100k)
    g = a.genre_names.index("Comedy")
    comedy = np.flatnonzero(a.genre_matrix[:, g])[:5]
    other = np.flatnonzero(~a.genre_matrix[:, g])[:5]
    cands = np.stack([np.r_[comedy, other]] * 3)
    m = intention_match(ml100k, ["a comedy", None, ""], cands)
    assert m.shape == cands.shape and m.dtype == np.float32
    np.testing.assert_array_equal(m[0], np.r_[np.ones(5), np.zeros(5)])
    assert not m[1:].any()  # no intention: all zeros
    assert not intention_match(ml100k, None, cands).any()
    assert not intention_match(ml100k, ["zzz qqq"] * 3, cands).any()  # nothing parsed


def test_graded_match_is_the_fraction_of_parsed_attributes(ml100k):
    a = item_attributes(ml100k)
    g = a.genre_names.index("Comedy")
    both = np.flatnonzero(a.genre_matrix[:, g] & (a.decade == 1990))[0]
    genre_only = np.flatnonzero(a.genre_matrix[:, g] & (a.decade == 1970))[0]
    neither = np.flatnonzero(~a.genre_matrix[:, g] & (a.decade == 1970))[0]
    m = intention_match(ml100k, ["a comedy from the 90s"], np.array([[both, genre_only, neither]]))
    np.testing.assert_allclose(m[0], [1.0, 0.5, 0.0])


def test_each_named_genre_counts_as_one_attribute(ml100k):
    a = item_attributes(ml100k)
    d, r = a.genre_names.index("Drama"), a.genre_names.index("Romance")
    both = np.flatnonzero(a.genre_matrix[:, d] & a.genre_matrix[:, r])[0]
    one = np.flatnonzero(a.genre_matrix[:, d] & ~a.genre_matrix[:, r])[0]
    m = intention_match(ml100k, ["a drama and romance movie"], np.array([[both, one]]))
    np.testing.assert_allclose(m[0], [1.0, 0.5])


# ---------------------------------------------------------------------- negation
def test_excluded_candidates_get_minus_one_and_the_rest_keep_their_grade(ml100k):
    a = item_attributes(ml100k)
    c, h = a.genre_names.index("Comedy"), a.genre_names.index("Horror")
    comedy90 = np.flatnonzero(a.genre_matrix[:, c] & ~a.genre_matrix[:, h] & (a.decade == 1990))
    horror90 = np.flatnonzero(a.genre_matrix[:, h] & ~a.genre_matrix[:, c] & (a.decade == 1990))
    comedy70 = np.flatnonzero(a.genre_matrix[:, c] & ~a.genre_matrix[:, h] & (a.decade == 1970))
    neither = np.flatnonzero(~a.genre_matrix[:, c] & ~a.genre_matrix[:, h] & (a.decade == 1970))
    horror_comedy = np.flatnonzero(a.genre_matrix[:, c] & a.genre_matrix[:, h])
    cands = np.array([[comedy90[0], comedy70[0], neither[0], horror90[0], horror_comedy[0]]] * 3)
    texts = ["something funny from the 90s, no horror", "no horror", "something funny from the 90s"]
    m = intention_match(ml100k, texts, cands)
    assert EXCLUDED_MATCH == -1.0
    np.testing.assert_allclose(m[0], [1.0, 0.5, 0.0, -1.0, -1.0])  # excluded: -1 whatever else
    np.testing.assert_allclose(m[1], [0.0, 0.0, 0.0, -1.0, -1.0])
    np.testing.assert_allclose(
        m[2], [1.0, 0.5, 0.0, 0.5, 0.5 + 0.5 * (a.decade[cands[0, 4]] == 1990)]
    )


def _reference(dataset, text, cands):
    """The intent-match value before negation: mean over parsed units of the matches."""
    d = parse_intention(dataset, text) if text else {}
    units = [{"genres": [g]} for g in d.get("genres_any", ())]
    units += [{k: v} for k, v in d.items() if k not in ("genres_any", "excluded")]
    if not units:
        return np.zeros(len(cands), np.float32)
    got = [intention_matches(dataset, [u], cands[None])[0] for u in units]
    return np.mean(got, axis=0).astype(np.float32)


def test_rows_without_exclusions_are_unchanged(ml100k):
    rng = np.random.default_rng(0)
    targets = rng.choice(ml100k.n_items, 60, replace=False)
    i1, _ = derive_intentions(ml100k, targets[:30], "I1", seed=0)
    i2, _ = derive_intentions(ml100k, targets[30:], "I2", seed=0)
    texts = list(i1) + list(i2) + ["", None, "a comedy, no horror"]
    cands = rng.integers(0, ml100k.n_items, (len(texts), 20))
    m = intention_match(ml100k, texts, cands)
    for r, t in enumerate(texts[:-1]):
        np.testing.assert_array_equal(m[r], _reference(ml100k, t, cands[r]))
    assert (m[:-1] >= 0).all() and (m[-1] < 0).any()
    # a negated row in the batch does not move the others
    np.testing.assert_array_equal(intention_match(ml100k, texts[:-1], cands[:-1]), m[:-1])


def test_excluded_genre_sinks_in_the_reranker_head_and_the_filter_rival(ml100k, ml100k_split):
    """End to end on ML-100K: retriever priors (z-scored) + the intent-match channel through
    the reranker's linear head with the weight the prior fit gives it (~34), and the
    "SASRec + attribute filter" rival fed the parsed request."""
    import torch

    from instructrec.evaluation.adapters import AttributeFilterModel
    from instructrec.models.encoder_config import zscore
    from instructrec.models.heads import make_head
    from instructrec.retrieval.itemknn import ItemKNN
    from instructrec.retrieval.pop import Pop

    split = ml100k_split
    knn = ItemKNN().fit(split.train, ml100k.n_users, ml100k.n_items)
    pop = Pop().fit(split.train, ml100k.n_users, ml100k.n_items)
    a = item_attributes(ml100k)
    horror = a.genre_matrix[:, a.genre_names.index("Horror")]
    scream = int(np.flatnonzero(ml100k.items["title"].to_numpy() == "Scream")[0])
    users = split.test["user"].to_numpy(np.int64)[:8]
    seqs = split.sequences("test")
    hists = [seqs[int(u)] for u in users]
    # candidates: the 90s items the retriever likes best, with Scream among them
    top = knn.candidates(users, 200, exclude_seen=True, histories=hists, seen=hists)[0]
    cands = np.stack(
        [np.r_[scream, [i for i in row if a.decade[i] == 1990 and i != scream][:29]] for row in top]
    )
    prior = zscore(np.stack([r.score(users, cands, histories=hists) for r in (knn, pop)], -1))
    head = make_head("linear", 16, 3)
    head.init_prior_weights(torch.tensor([1.0, 0.5, 34.0]))
    g = torch.Generator().manual_seed(0)
    q, v = torch.randn(len(users), 16, generator=g), torch.randn(*cands.shape, 16, generator=g)
    hist, mask = torch.zeros(len(users), 1, 16), torch.zeros(len(users), 1, dtype=torch.bool)

    def ranked(text):
        match = intention_match(ml100k, [text] * len(users), cands)
        z = torch.as_tensor(np.concatenate([prior, match[..., None]], -1))
        with torch.no_grad():
            s = head(q, v, hist, mask, z).numpy()
        return np.take_along_axis(cands, np.argsort(-s, axis=1, kind="stable"), 1)

    before, after = (
        ranked("something funny from the 90s"),
        ranked("something funny from the 90s, no horror"),
    )
    assert any(scream in row[:10] for row in before)  # 1996: half a match, and popular
    for row in after:
        hits = horror[row]
        assert hits.any() and not hits[: np.argmax(hits)].any()  # every horror film ...
        assert hits[np.argmax(hits) :].all()  # ... below every other candidate
        assert scream not in row[:5]
    # the attribute-filter rival on the parsed request
    rival = AttributeFilterModel(knn, ml100k)
    attrs = [parse_intention(ml100k, "something funny from the 90s, no horror")] * len(users)
    s = rival.score_candidates(users, cands, hists, attrs=attrs)
    order = np.take_along_axis(cands, np.argsort(-s, axis=1, kind="stable"), 1)
    for row in order:
        hits = horror[row]
        assert hits[np.argmax(hits) :].all() and hits[-1]


def test_learned_phrases_read_only_the_rows_the_parser_cannot(ml100k):
    """``reranker.intent_phrases``: a phrase table fills the channel where the parser reads
    nothing; rows it reads keep exactly the parser's values."""
    from instructrec.instructions.phrases import PhraseTable

    a = item_attributes(ml100k)
    comedy = a.genre_matrix[:, a.genre_names.index("Comedy")]
    horror = a.genre_matrix[:, a.genre_names.index("Horror")]
    planted = [("zorbly", comedy), ("grimwald", horror)]  # words no parser list holds
    texts = [w for w, m in planted for _ in range(int(m.sum()))] + ["a film"] * ml100k.n_items
    items = np.concatenate([np.flatnonzero(m) for _, m in planted] + [np.arange(ml100k.n_items)])
    table = PhraseTable().fit(ml100k, texts, items)
    assert set(table.predict("zorbly")[0]) == {"genre:Comedy"}
    cands = np.stack([np.arange(40)] * 4)
    rows = ["a comedy from the 90s", "something zorbly", "zorbly, but no grimwald", ""]
    assert parse_intention(ml100k, rows[1]) == {} == parse_intention(ml100k, rows[2])
    plain = intention_match(ml100k, rows, cands)
    learned = intention_match(ml100k, rows, cands, table)
    np.testing.assert_array_equal(learned[0], plain[0])  # the parser read it: unchanged
    assert not plain[1:].any()
    np.testing.assert_array_equal(learned[1], comedy[:40].astype(np.float32))
    expect = np.where(horror[:40], EXCLUDED_MATCH, comedy[:40]).astype(np.float32)
    np.testing.assert_array_equal(learned[2], expect)
    assert not learned[3].any()
