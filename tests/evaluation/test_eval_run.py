"""`run` / `evaluate_all` end to end on small synthetic data (fast) and behaviour of protocols."""

import json

import numpy as np
import pytest

from instructrec.data import DataError, load_split, make_split, save_split
from instructrec.evaluation import PROTOCOLS, evaluate_all, fit_baselines, run
from instructrec.evaluation.adapters import AttributeFilterModel, RetrieverModel
from instructrec.retrieval import ItemKNN, Pop
from instructrec.testing.datasets import synthetic_dataset
from instructrec.testing.retriever import planted_dataset


@pytest.fixture(scope="module")
def setup():
    ds = synthetic_dataset(n_users=80, n_items=50, per_user=12, seed=0)
    split = make_split(ds, seed=0)
    models = fit_baselines(ds, split, ["pop", "itemknn"])
    return ds, split, models


class Oracle:
    """Knows the target: always column 0 of a candidate list / the split's test item."""

    def __init__(self, split, retriever):
        self.target = dict(zip(split.test["user"], split.test["item"], strict=True))
        self.retriever = retriever
        self.seen_intentions = None

    def score_candidates(self, users, candidates, histories, intentions=None, templates=None):
        self.seen_intentions = intentions
        t = np.array([self.target[int(u)] for u in users])
        return (np.asarray(candidates) == t[:, None]).astype(np.float32)


class Constant:
    def score_candidates(self, users, candidates, histories, intentions=None, templates=None):
        return np.zeros(np.shape(candidates), np.float32)


def test_cand10_report_shape_and_oracle_bounds(setup, tmp_path):
    ds, split, models = setup
    rep = run(
        "cand10",
        ds,
        split,
        {**models, "oracle": Oracle(split, models["pop"]), "constant": Constant()},
        out_dir=tmp_path,
    )
    assert list(rep.table.columns) == list(PROTOCOLS["cand10"].metrics)
    assert list(rep.table.index) == ["pop", "itemknn", "oracle", "constant"]
    assert (rep.table.loc["oracle"] == 1.0).all()
    assert (rep.table.loc["constant"] == 0.0).all()  # ties are pessimistic
    iv = rep.intervals
    assert ((iv.ci_low <= iv["mean"]) & (iv["mean"] <= iv.ci_high)).all()
    # oracle and constant are tested against both baselines; itemknn against pop only
    pairs = set(zip(rep.comparisons.model, rep.comparisons.baseline, strict=True))
    assert pairs == {
        ("itemknn", "pop"),
        ("oracle", "pop"),
        ("oracle", "itemknn"),
        ("constant", "pop"),
        ("constant", "itemknn"),
    }
    worse = rep.comparisons.query("model == 'constant' and metric == 'HR@5'")
    assert (worse["diff"] < 0).all()
    assert len(rep.per_user["pop"]) == len(split.test)
    for f in ("report.md", "report.json", "manifest.json", "per_user.csv", "plot.png"):
        assert (tmp_path / f).stat().st_size > 0
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["protocol"] == "cand10" and man["dataset"]["fingerprint"] == ds.fingerprint()
    assert "torch" in man["packages"] and man["seed"] == 0
    assert "| oracle | 1.0000" in rep.to_markdown()


def test_same_seed_same_metrics_and_hashes_recorded(setup, tmp_path):
    ds, split, _ = setup
    save_split(split, tmp_path / "split", ds)
    loaded = load_split(tmp_path / "split", ds)
    a = run("cand20", ds, loaded, fit_baselines(ds, loaded, ["pop", "itemknn"], seed=0), seed=0)
    b = run("cand20", ds, loaded, fit_baselines(ds, loaded, ["pop", "itemknn"], seed=0), seed=0)
    assert a.table.equals(b.table) and a.intervals.equals(b.intervals)
    assert a.comparisons.equals(b.comparisons)
    assert a.manifest["split_files"]["cand20.test.npy"] == loaded.hashes["cand20.test.npy"]
    c = run("cand20", ds, loaded, fit_baselines(ds, loaded, ["pop", "itemknn"]), seed=1)
    assert a.table.equals(c.table) and not a.intervals.equals(c.intervals)  # only the CI moves


def test_full_protocol_reranks_the_retriever_head(setup):
    ds, split, models = setup
    oracle = Oracle(split, models["itemknn"])
    rep = run("full", ds, split, {**models, "oracle": oracle, "headless": Constant()})
    assert "headless" not in rep.table.index
    assert any("headless" in n for n in rep.notes)
    # the oracle puts the target first whenever the retriever's top 20 holds it
    knn = rep.per_user["itemknn"]["Recall@10"]
    orc = rep.per_user["oracle"]
    from instructrec.evaluation.protocols import test_rows

    rows = test_rows(split)
    head = models["itemknn"].candidates(
        rows.users, 20, histories=rows.histories, seen=rows.histories
    )[0]
    in_head = (head == rows.targets[:, None]).any(axis=1)
    np.testing.assert_array_equal(orc["MRR"].to_numpy()[in_head], 1.0)
    assert (orc["Recall@10"].to_numpy()[~in_head] == 0).all()
    assert (orc["Recall@10"].to_numpy() >= knn.to_numpy()).all()


def test_full_ranks_exclude_history(setup):
    ds, split, models = setup
    rep = run("full", ds, split, {"pop": models["pop"]})
    from instructrec.evaluation.metrics import ranks_full
    from instructrec.evaluation.protocols import test_rows

    rows = test_rows(split)
    counts = models["pop"].score_all(rows.users, rows.histories)
    r = ranks_full(counts, rows.targets, rows.histories)
    np.testing.assert_allclose(rep.per_user["pop"]["MRR"].to_numpy(), 1 / (r + 1))


def test_pointwise_auc(setup):
    ds, split, models = setup
    liked = split.test["rating"].to_numpy() >= 4

    class Knows:
        def score_pointwise(self, users, items, histories):
            return liked.astype(float)

        def score_candidates(self, *a, **k):  # pragma: no cover - not used by pointwise
            raise AssertionError

    rep = run("pointwise", ds, split, {**models, "knows": Knows()})
    assert rep.mean("knows", "AUC") == 1.0
    assert 0.0 <= rep.mean("pop", "AUC") <= 1.0
    assert rep.comparisons.query("model == 'knows'")["diff"].gt(0).all()
    rep2 = run("pointwise", ds, split, models, pointwise_negatives=2)
    assert len(rep2.per_user["pop"]) == 3 * len(split.test)


def test_search_and_vague_pass_intentions_and_add_filter_rival(monkeypatch, setup):
    ds, split, models = setup
    import instructrec.instructions as ins

    calls = []

    def fake_derive(dataset, items, kind="I2", seed=0):
        calls.append(kind)
        items = np.asarray(items)
        return [f"want {i}" for i in items], [{"item": int(i)} for i in items]

    def fake_matches(dataset, attrs, candidates):
        return np.asarray(candidates) == np.array([a["item"] for a in attrs])[:, None]

    monkeypatch.setattr(ins, "derive_intentions", fake_derive)
    monkeypatch.setattr(ins, "intention_matches", fake_matches)
    sas = Pop().fit(split.train, ds.n_users, ds.n_items)  # stands in for SASRec (fast)
    oracle = Oracle(split, sas)
    rep = run("search", ds, split, {"sasrec": sas, "lm": oracle})
    # the protocol's intentions, then the training intentions its overlap is measured against
    assert calls == ["I2", "I2"]
    assert oracle.seen_intentions[0] == f"want {split.test['item'].iloc[0]}"
    assert "sasrec+oracle-filter" in rep.table.index
    assert rep.mean("sasrec+oracle-filter", "HR@1") == 1.0  # the filter matches only the target here
    assert "sasrec+oracle-filter" in set(rep.comparisons.baseline)
    run("vague", ds, split, {"pop": sas})
    assert calls[2:] == ["I1", "I1"]


def test_search_with_real_intentions(setup):
    ds, split, models = setup
    rep = run("search", ds, split, {"sasrec": models["itemknn"]})
    # the rival ranks intention-matching candidates first: the target always matches its own
    # intention, so the filter can only help
    assert rep.mean("sasrec+oracle-filter", "HR@1") >= rep.mean("sasrec", "HR@1")


def test_a_given_filter_is_not_joined_by_the_oracle(setup):
    """The learned `sasrec+filter` (or any model of that name) is the run's filter; the oracle
    that reads the intention's true attributes is added only when no filter was given."""
    ds, split, models = setup
    learned = RetrieverModel(models["itemknn"])  # stands in for the learned filter
    rep = run("search", ds, split, {"sasrec": models["itemknn"], "sasrec+filter": learned})
    assert "sasrec+filter" in rep.table.index
    assert "sasrec+oracle-filter" not in rep.table.index


def test_attribute_filter_model_orders_matches_first():
    ds = planted_dataset()
    split = make_split(ds, seed=0, sets={"cand10": 9})
    r = ItemKNN().fit(split.train, ds.n_users, ds.n_items)
    m = AttributeFilterModel(r, ds)
    cands = split.candidates["cand10"]["test"][:3]
    base = RetrieverModel(r).score_candidates(split.test["user"][:3], cands, None)
    out = m.score_candidates(split.test["user"][:3], cands, None, attrs=None)
    np.testing.assert_allclose(out, base)


def test_errors_are_clear(setup):
    ds, split, models = setup
    with pytest.raises(DataError, match="unknown protocol"):
        run("cand7", ds, split, models)
    with pytest.raises(DataError, match="no models"):
        run("cand10", ds, split, {})
    with pytest.raises(TypeError, match="score_candidates"):
        run("cand10", ds, split, {"x": object()})
    bare = make_split(ds, seed=0, sets={"cand10": 9})
    with pytest.raises(DataError, match="cand20"):
        run("cand20", ds, bare, models)


def test_evaluate_all_writes_summary(setup, tmp_path):
    ds, split, models = setup
    reps = evaluate_all(["cand10", "full"], ds, split, models, out_dir=tmp_path, n_boot=100)
    assert set(reps) == {"cand10", "full"}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["full"]["pop"]["MRR"] == pytest.approx(reps["full"].mean("pop", "MRR"))
    assert (tmp_path / "cand10" / "report.md").exists()


def test_unfitted_retriever_is_fitted_on_train(setup):
    ds, split, models = setup
    rep = run("cand10", ds, split, {"knn": ItemKNN()})
    fitted = run("cand10", ds, split, {"knn": models["itemknn"]})
    assert rep.table.equals(fitted.table)
