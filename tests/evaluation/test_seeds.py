"""Multi-seed combination: means, per-seed tests, pooled paired test, Holm, verdicts."""

import numpy as np
import pandas as pd
import pytest

from instructrec import stats as S
from instructrec.evaluation.report import Report
from instructrec.evaluation.seeds import combine, holm, to_markdown


def _report(protocol, per_user: dict[str, np.ndarray], metric="HR@1", seed=0):
    users = [str(i) for i in range(len(next(iter(per_user.values()))))]
    table = pd.DataFrame({metric: {m: float(v.mean()) for m, v in per_user.items()}})
    idx = S.resample_indices(len(users), 200, seed)
    cmps = []
    names = list(per_user)
    for m in names[:1]:
        for b in names[1:]:
            pb = S.paired_bootstrap(per_user[m], per_user[b], idx)
            cmps.append(
                {
                    "model": m,
                    "baseline": b,
                    "metric": metric,
                    "diff": pb["diff"],
                    "diff_low": pb["diff_ci"][0],
                    "diff_high": pb["diff_ci"][1],
                    "p_bootstrap": pb["p_bootstrap"],
                }
            )
    pu = {
        m: pd.DataFrame({metric: v}, index=pd.Index(users, name="user"))
        for m, v in per_user.items()
    }
    return Report(protocol, [metric], table, pd.DataFrame(), pd.DataFrame(cmps), pu, {"seed": seed})


def _study(gap: float, n=400, seeds=(0, 1, 2)):
    out = {}
    for s in seeds:
        rng = np.random.default_rng(s)
        base = (rng.random(n) < 0.5).astype(float)
        better = np.where(rng.random(n) < gap, 1.0, base)
        noise = (rng.random(n) < 0.5).astype(float)
        out[s] = {
            "cand10": _report(
                "cand10", {"instructrec": better, "sasrec": base, "pop": noise * 0.6}, seed=s
            )
        }
    return out


def test_holm_matches_hand_computation():
    p = [0.01, 0.04, 0.03, float("nan")]
    adj = holm(p)
    # sorted 0.01, 0.03, 0.04 -> 3*0.01, 2*0.03, max(0.06, 1*0.04)
    assert adj[0] == pytest.approx(0.03)
    assert adj[2] == pytest.approx(0.06)
    assert adj[1] == pytest.approx(0.06)
    assert np.isnan(adj[3])


def test_combine_means_and_verdicts():
    c = combine(_study(gap=0.3), n_boot=300)
    m = c.means[(c.means.model == "instructrec") & (c.means.metric == "HR@1")].iloc[0]
    assert m["mean"] == pytest.approx(np.mean([m["seed0"], m["seed1"], m["seed2"]]))
    t = c.tests.set_index("rival")
    assert t.loc["sasrec", "verdict"] == "beats"
    assert t.loc["sasrec", "diff_low"] > 0
    assert c.strongest_rival("cand10") == "sasrec"
    assert "beats" in to_markdown(c)


def test_combine_ties_when_models_equal():
    study = {}
    for s in (0, 1, 2):
        rng = np.random.default_rng(s)
        a = (rng.random(300) < 0.5).astype(float)
        b = a.copy()
        b[:3] = 1 - b[:3]
        study[s] = {"cand10": _report("cand10", {"instructrec": a, "sasrec": b}, seed=s)}
    c = combine(study, n_boot=300)
    assert c.tests.iloc[0]["verdict"] == "ties"
    assert c.tests.iloc[0]["diff_low"] <= 0 <= c.tests.iloc[0]["diff_high"]


def test_headline_names_the_strongest_rival_and_verdict():
    from instructrec.evaluation.seeds import headline

    c = combine(_study(gap=0.3), n_boot=300)
    text = headline(c)
    row = next(line for line in text.splitlines() if line.startswith("| cand10"))
    assert "sasrec (" in row and row.rstrip(" |").endswith("beats")


def test_measurement_rows_are_not_rivals_and_get_their_own_table():
    """score-mix+lm (score-mix plus the reranker's score) is tested against score-mix in its
    own table, never picked as the model's strongest rival."""
    from instructrec.evaluation.seeds import MEASUREMENTS, stacked_markdown

    rng = np.random.default_rng(0)

    def vals(lm: bool):
        out = {"instructrec": rng.random(300) < 0.5, "score-mix": rng.random(300) < 0.5}
        if lm:
            out["score-mix+lm"] = rng.random(300) < 0.9  # would be the strongest rival
        return {k: v.astype(float) for k, v in out.items()}

    study = {s: {"cand10": _report("cand10", vals(True), seed=s)} for s in (0, 1)}
    c = combine(study, n_boot=200)
    assert "score-mix+lm" in MEASUREMENTS
    assert set(c.tests.rival) == {"score-mix"}
    assert c.strongest_rival("cand10") == "score-mix"
    md = stacked_markdown(study, n_boot=200)
    row = [line for line in md.splitlines() if line.startswith("| cand10")]
    assert len(row) == 1 and row[0].endswith("| beats |")
    # asked for by name it is a rival like any other
    c2 = combine(study, rivals=["score-mix+lm"], n_boot=200)
    assert set(c2.tests.rival) == {"score-mix+lm"}
    # no report holds it: no table
    plain = {s: {"cand10": _report("cand10", vals(False), seed=s)} for s in (0, 1)}
    assert stacked_markdown(plain, n_boot=200) == ""
