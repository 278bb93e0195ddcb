"""`instructions.phrases.PhraseTable`: words -> attribute values learned from training pairs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from instructrec.data.errors import DataError
from instructrec.instructions.attributes import item_attributes
from instructrec.instructions.phrases import PhraseTable
from instructrec.testing.datasets import synthetic_dataset


@pytest.fixture(scope="module")
def planted():
    ds = synthetic_dataset(n_users=60, n_items=80, seed=3)
    a = item_attributes(ds)
    comedy = a.genre_matrix[:, a.genre_names.index("Comedy")]
    horror = a.genre_matrix[:, a.genre_names.index("Horror")]
    texts, items = [], []
    for j in range(ds.n_items):
        if comedy[j]:
            texts.append("something hilarious please")
            items.append(j)
        if horror[j]:
            texts.append("something creepy tonight")
            items.append(j)
        texts.append("something good")
        items.append(j)
    return ds, PhraseTable().fit(ds, texts, np.array(items)), comedy, horror


def test_levels_mark_the_values_a_learned_word_asks_for(planted):
    ds, table, comedy, horror = planted
    cands = np.tile(np.arange(ds.n_items), (3, 1))
    want, excl = table.levels(ds, ["hilarious", "nothing creepy", "zzz"], cands)
    assert want.shape == excl.shape == cands.shape
    np.testing.assert_array_equal(want[0] > 0, comedy)  # strength-weighted: > 0 exactly there
    assert not excl[0].any()
    np.testing.assert_array_equal(excl[1] > 0, horror)  # negated: excluded, not wanted
    assert not want[1].any() and not want[2].any() and not excl[2].any()
    np.testing.assert_allclose(table.wanted_strength(["hilarious", "zzz"]), [1.0, 0.0])


def test_round_trip_as_json_reads_the_same(planted):
    ds, table, comedy, horror = planted
    back = PhraseTable.from_dict(json.loads(json.dumps(table.to_dict())))
    cands = np.tile(np.arange(ds.n_items), (2, 1))
    texts = ["something hilarious", "not creepy"]
    for a, b in zip(table.levels(ds, texts, cands), back.levels(ds, texts, cands), strict=True):
        np.testing.assert_array_equal(a, b)
    assert back.predict("hilarious") == table.predict("hilarious")


def test_bad_saved_tables_and_other_catalogues_are_refused(planted):
    ds, table, _, _ = planted
    d = table.to_dict()
    with pytest.raises(DataError, match="not a saved phrase table"):
        PhraseTable.from_dict({k: v for k, v in d.items() if k != "labels"})
    bad = {**d, "table": {"hilarious": {str(len(d["labels"]) + 3): 1.0}}}
    with pytest.raises(DataError, match="outside its"):
        PhraseTable.from_dict(bad)
    other = synthetic_dataset(n_users=20, n_items=12, seed=9)  # other years
    with pytest.raises(DataError, match="not the same catalogue"):
        PhraseTable.from_dict(d).levels(other, ["hilarious"], np.zeros((1, 2), np.int64))


def test_coverage_gate_reads_only_requests_in_words_it_has_seen(planted):
    """With ``min_coverage`` 1.0 a request with a word no training intention used is not
    read (the table's reads of other wording are mostly wrong); 0 reads every text."""
    ds, table, comedy, _ = planted
    gated = PhraseTable.from_dict({**table.to_dict(), "min_coverage": 1.0})
    assert table.min_coverage == 0.0 and "hilarious" in gated.vocab
    assert gated.coverage("something hilarious please") == 1.0
    assert gated.coverage("something hilarious mate") == pytest.approx(2 / 3)
    cands = np.tile(np.arange(ds.n_items), (2, 1))
    texts = ["something hilarious please", "something hilarious mate"]
    want, _ = gated.levels(ds, texts, cands)
    np.testing.assert_array_equal(want[0] > 0, comedy)
    assert not want[1].any()  # an unseen word: nothing read
    assert table.levels(ds, texts, cands)[0][1].any()  # ungated: read anyway
    np.testing.assert_allclose(gated.wanted_strength(texts), [1.0, 0.0])
    half = PhraseTable.from_dict({**table.to_dict(), "min_coverage": 0.6})
    assert half.levels(ds, texts[1:], cands[:1])[0].any()
    # a table saved before the vocabulary existed reads every text, as it did
    old = {k: v for k, v in gated.to_dict().items() if k not in ("vocab", "min_coverage")}
    assert PhraseTable.from_dict(old).levels(ds, texts[1:], cands[:1])[0].any()
    with pytest.raises(DataError, match="min_coverage"):
        PhraseTable(min_coverage=1.5)
