"""``reranker.intent_phrases``: the intent channel also reads a phrase table learned from
training intentions; it is learned in `fit_reranker`, saved as data, read at inference and
given to the score-mix rival."""

from __future__ import annotations

import numpy as np
import pytest

from instructrec.data import make_split
from instructrec.data.errors import DataError
from instructrec.evaluation.rivals import ScoreMix
from instructrec.instructions import parse_intention
from instructrec.instructions.attributes import item_attributes
from instructrec.instructions.phrases import PhraseTable
from instructrec.models.encoder_config import EncoderConfig
from instructrec.rerank.intentions import intention_match
from instructrec.rerank.rerank_features import score_priors
from instructrec.rerank.reranker import InstructionReranker, RerankerConfig
from instructrec.retrieval.itemknn import ItemKNN
from instructrec.retrieval.pop import Pop
from instructrec.testing.datasets import synthetic_dataset
from instructrec.training.config import TrainConfig
from instructrec.training.fit_reranker import fit_reranker


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    ds = synthetic_dataset(n_users=50, n_items=40, per_user=12, seed=1)
    split = make_split(ds, seed=0)
    priors = [
        ItemKNN().fit(split.train, ds.n_users, ds.n_items),
        Pop().fit(split.train, ds.n_users, ds.n_items),
    ]
    config = RerankerConfig(
        n_random=5, n_hard=2, hard_pool=10, valid_rows=30, copies=1,
        slots=["P1I0", "P1I1", "P1I2"], intent_match=True, intent_phrases=True, pointwise=False,
    )  # fmt: skip
    tc = TrainConfig(
        output_dir=str(tmp_path_factory.mktemp("ph")), lr=3e-3, batch_size=32, patience=0,
        metric="mix", progress=False, device="cpu", max_steps=2,
    )  # fmt: skip
    enc = EncoderConfig(lora_r=4, max_query_len=40, cf_dim=0)
    rr = fit_reranker(ds, split, priors, enc, config, tc)
    return ds, split, priors, rr


def _planted(ds) -> PhraseTable:
    """A table that reads "zorbly" as Comedy (a word no parser list holds)."""
    a = item_attributes(ds)
    comedy = np.flatnonzero(a.genre_matrix[:, a.genre_names.index("Comedy")])
    texts = ["zorbly"] * len(comedy) + ["a film"] * ds.n_items
    return PhraseTable().fit(ds, texts, np.r_[comedy, np.arange(ds.n_items)])


def test_fit_learns_the_table_from_training_intentions(world):
    ds, split, priors, rr = world
    assert isinstance(rr.phrases, PhraseTable) and rr.phrases.table
    reference = PhraseTable.from_training(
        ds, split, seed=rr.config.seed, min_coverage=rr.config.intent_phrases_coverage
    )
    assert rr.phrases.to_dict() == reference.to_dict()
    assert rr.phrases.min_coverage == 1.0  # the shipped gate: words seen in training only
    assert rr.phrases.vocab  # saved with the table (phrases.json)


@pytest.fixture
def planted_rr(world):
    ds, split, priors, rr = world
    learned, rr.phrases = rr.phrases, _planted(ds)
    yield rr
    rr.phrases = learned


def test_saved_as_data_and_read_back(world, planted_rr, tmp_path):
    ds, split, priors, _ = world
    rr = planted_rr
    assert parse_intention(ds, "something zorbly") == {}
    u = split.valid["user"].to_numpy()[:6]
    c = split.candidates["cand10"]["valid"][:6]
    seqs = split.sequences("valid")
    h = [seqs[int(x)] for x in u]
    p = score_priors(priors, u, c, h)
    texts = ["something zorbly"] * len(u)
    z = rr.prior_features(c, texts, p)
    np.testing.assert_array_equal(z[:, :, 2], intention_match(ds, texts, c, rr.phrases))
    assert z[:, :, 2].any()
    before = rr.score_candidates(u, c, h, intentions=texts, prior=p)
    folder = rr.save(tmp_path / "rr")
    assert (folder / "phrases.json").exists()
    back = InstructionReranker.load(folder)
    back.dataset = ds
    np.testing.assert_allclose(back.score_candidates(u, c, h, intentions=texts, prior=p), before)
    (folder / "phrases.json").unlink()
    with pytest.raises(DataError, match="no phrases.json"):
        InstructionReranker.load(folder)


def test_a_reranker_without_a_table_is_saved_as_it_behaves(world, tmp_path):
    """intent_phrases on in the config but no table (built by hand, or intent_match off):
    saved with intent_phrases off, so the folder loads (a folder whose reranker.json says
    on and that lacks phrases.json is still refused, above)."""
    ds, split, priors, rr = world
    learned, rr.phrases = rr.phrases, None
    try:
        assert rr.config.intent_phrases
        folder = rr.save(tmp_path / "bare")
    finally:
        rr.phrases = learned
    assert rr.config.intent_phrases  # the object's config is not touched
    assert not (folder / "phrases.json").exists()
    back = InstructionReranker.load(folder)
    assert back.phrases is None and back.config.intent_phrases is False


def test_a_reranker_saved_before_the_table_existed_loads_as_it_was(world, tmp_path):
    """A reranker.json without ``intent_phrases`` (saved before the key, when the channel read
    the parser only) loads with it off, though the shipped default is now on."""
    import json

    ds, split, priors, rr = world
    folder = rr.save(tmp_path / "old")
    (folder / "phrases.json").unlink()
    meta = json.loads((folder / "reranker.json").read_text())
    for key in ("intent_phrases", "intent_phrases_coverage", "stack_epochs"):
        del meta["config"][key]
    (folder / "reranker.json").write_text(json.dumps(meta))
    back = InstructionReranker.load(folder)
    assert back.config.intent_phrases is False and back.phrases is None
    assert RerankerConfig().intent_phrases  # the shipped default
    # its stacked SASRec stopped on its own (the record says how it was trained)
    assert back.config.stack_epochs == "own" and RerankerConfig().stack_epochs == "match"


def test_score_mix_reads_the_same_channel(world):
    ds, split, priors, rr = world
    table = _planted(ds)
    u = split.valid["user"].to_numpy()[:6]
    c = split.candidates["cand10"]["valid"][:6]
    h = [np.empty(0, np.int64)] * len(u)
    texts = ["something zorbly"] * len(u)
    with_table = ScoreMix(ds, split.train, priors, phrases=table)
    without = ScoreMix(ds, split.train, priors)
    j = with_table.feature_names.index("intent_match")
    got = with_table.features(u, c, h, intentions=texts)[:, :, j]
    np.testing.assert_array_equal(got, intention_match(ds, texts, c, table))
    assert got.any() and not without.features(u, c, h, intentions=texts)[:, :, j].any()
