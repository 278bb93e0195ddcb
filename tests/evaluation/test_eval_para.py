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
