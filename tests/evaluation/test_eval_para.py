"""The paraphrase protocols: hand-written wording, its hash in the manifest, overlap printed."""

import pytest

from instructrec.evaluation import fit_baselines, run
from instructrec.evaluation.intentions import protocol_intentions
from instructrec.evaluation.protocols import get_protocol
from instructrec.instructions.paraphrase import load_paraphrases


@pytest.fixture(scope="module")
def ml100k():
    from instructrec.data import load_movielens_100k, make_split

    ds = load_movielens_100k()
    return ds, make_split(ds, seed=0)


@pytest.mark.parametrize("name", ["vague-para", "search-para"])
def test_para_protocol_uses_paraphrases_and_records_hash(ml100k, name):
    ds, sp = ml100k
    rep = run(name, ds, sp, fit_baselines(ds, sp, ["pop"]), stage="valid", n_boot=50)
    info = rep.manifest["intentions"]
    pset = load_paraphrases()
    assert info["wording"] == "paraphrase" and info["sha256"] == pset.sha256
    # held-out wording: no test text occurs verbatim among the generator's training intentions
    assert info["overlap_with_training"]["verbatim"] == 0.0
    assert any("paraphrase" in n for n in rep.notes)


def test_derived_protocol_overlap_is_total(ml100k):
    ds, sp = ml100k
    rep = run("vague", ds, sp, fit_baselines(ds, sp, ["pop"]), stage="valid", n_boot=50)
    assert rep.manifest["intentions"]["overlap_with_training"]["verbatim"] > 0.9


def test_paraphrase_texts_come_from_the_set(ml100k):
    ds, sp = ml100k
    texts, attrs, _ = protocol_intentions(
        get_protocol("vague-para"), ds, sp.valid["item"].to_numpy()[:50], seed=0
    )
    raw = {e.text for e in load_paraphrases().of_kind("I1")}
    assert all(t in raw for t in texts if t)


def test_para_protocols_keep_only_rows_the_set_can_describe(ml100k):
    """A target without a genre the set names cannot be asked for in its words: the row is
    left out (and left out of the score-mix fit), not scored with an empty request."""
    import dataclasses

    import numpy as np

    from instructrec.evaluation.protocols import select_rows, stage_rows

    ds, sp = ml100k
    targets = sp.valid["item"].to_numpy()
    gone = np.unique(targets)[::4]  # a quarter of the validation targets lose their genres
    items = ds.items.copy()
    items["genres"] = [() if i in set(gone) else g for i, g in enumerate(items["genres"])]
    bare = dataclasses.replace(ds, items=items)
    rows = stage_rows(sp, "valid")
    kept = select_rows(get_protocol("vague-para"), sp, rows, bare)
    expect = ~np.isin(targets, gone)
    assert 0 < len(kept.users) == expect.sum() < len(rows.users)
    assert not np.isin(kept.targets, gone).any()
    assert len(select_rows(get_protocol("vague"), sp, rows, bare).users) == len(rows.users)
    assert len(select_rows(get_protocol("vague-para"), sp, rows, ds).users) == len(rows.users)
    rep = run("vague-para", bare, sp, fit_baselines(bare, sp, ["pop"]), stage="valid", n_boot=20)
    assert rep.manifest["config"]["rows"] == expect.sum() == rep.intervals["n"].iloc[0]
    assert not [n for n in rep.notes if "empty intention" in n]
