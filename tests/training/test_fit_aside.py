"""The stacked twin fitted in a second process equals the in-process fit."""

import os

import numpy as np
import pytest

from instructrec.data import make_split
from instructrec.rerank.reranker import RerankerConfig
from instructrec.retrieval import ItemKNN, SASRec, SASRecConfig
from instructrec.testing.datasets import synthetic_dataset
from instructrec.training import fit_aside
from instructrec.training.fit_aside import FitAside, fits_aside
from instructrec.training.fit_reranker import fit_stacked, start_stacked_aside

SMALL = dict(hidden=16, n_layers=1, n_heads=1, inner=32, max_epochs=3, patience=3, seed=5)


@pytest.fixture(scope="module")
def data():
    ds = synthetic_dataset(n_users=50, n_items=30, per_user=10, seed=1)
    return ds, make_split(ds, seed=0)


def test_aside_fit_equals_in_process_fit(data, monkeypatch):
    ds, split = data
    monkeypatch.setattr(fit_aside, "usable_cpus", lambda: 2)
    priors = [SASRec(SASRecConfig(**SMALL)), ItemKNN()]
    for p in priors:
        p.fit(split.train, ds.n_users, ds.n_items)
    jobs = start_stacked_aside(priors, split, ds, RerankerConfig(holdout=2))
    assert list(jobs) == [0]  # SASRec only: item-kNN is cheap
    aside = fit_stacked(priors, split, ds, 2, jobs)
    here = fit_stacked(priors, split, ds, 2)
    users = np.arange(ds.n_users)
    for a, b in zip(aside, here, strict=True):
        assert type(a) is type(b)
        np.testing.assert_array_equal(a.score_all(users), b.score_all(users))
    # the stacked twin has not seen the held-out items: it differs from the full fit
    assert not np.array_equal(aside[0].score_all(users), priors[0].score_all(users))


def test_a_following_twin_equals_the_capped_in_process_fit(data, monkeypatch):
    """stack_epochs "match": the twin fitting aside learns the first stage's kept epoch when
    the first stage is fitted; it gives the weights of an in-process fit capped there."""
    from instructrec.training.fit_reranker import cap_stacked_aside, stacked_epochs

    ds, split = data
    monkeypatch.setattr(fit_aside, "usable_cpus", lambda: 2)
    cfg = {**SMALL, "max_epochs": 6, "patience": 6, "lr": 2e-2}  # keeps an early epoch
    priors = [SASRec(SASRecConfig(**cfg)), ItemKNN()]
    jobs = start_stacked_aside(priors, split, ds, RerankerConfig(holdout=2))  # "match"
    assert jobs[0].follow
    for p in priors:
        p.fit(split.train, ds.n_users, ds.n_items, **({"valid": split.valid} if p is priors[0]
                                                      else {}))  # fmt: skip
    kept = stacked_epochs(priors[0])
    assert kept == priors[0].best_epoch and stacked_epochs(priors[1]) is None
    cap_stacked_aside(priors, jobs)
    aside = fit_stacked(priors, split, ds, 2, jobs, match_epochs=True)
    here = fit_stacked(priors, split, ds, 2, match_epochs=True)
    users = np.arange(ds.n_users)
    np.testing.assert_array_equal(aside[0].score_all(users), here[0].score_all(users))
    assert kept < 6 and len(aside[0].history_) == kept
    own = fit_stacked(priors, split, ds, 2)  # its own stopping: six epochs here
    assert len(own[0].history_) == 6


def test_an_uncapped_following_twin_does_not_wait_for_ever(data):
    ds, split = data
    job = FitAside.start(SASRec(SASRecConfig(**SMALL)), split.train, ds.n_users, ds.n_items,
                         follow=True)  # fmt: skip
    twin = job.result()  # nobody sent a cap: result() sends "no limit"
    assert len(twin.history_) == SMALL["max_epochs"]


def test_stack_epochs_is_checked():
    from instructrec.data.errors import DataError

    with pytest.raises(DataError, match="stack_epochs must be 'match' or 'own'"):
        RerankerConfig(stack_epochs="best")


def test_fits_aside_rules(monkeypatch):
    monkeypatch.setattr(fit_aside, "usable_cpus", lambda: 2)
    assert fits_aside(SASRec(SASRecConfig(threads=1, device="cpu")))
    assert not fits_aside(SASRec(SASRecConfig(threads=2, device="cpu")))
    assert not fits_aside(ItemKNN())
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not fits_aside(SASRec(SASRecConfig(threads=1, device="cpu")))
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setattr(fit_aside, "usable_cpus", lambda: 1)
    assert not fits_aside(SASRec(SASRecConfig(threads=1, device="cpu")))


def test_child_failure_is_one_line_and_cleans_up(data):
    ds, split = data
    bad = SASRec(SASRecConfig(**{**SMALL, "hidden": 15, "n_heads": 2}))  # 15 % 2: the net fails
    job = FitAside.start(bad, split.train, ds.n_users, ds.n_items)
    with pytest.raises(RuntimeError, match="fitting sasrec in a second process failed"):
        job.result()
    assert not job.folder.exists()


def test_cancel_stops_the_child(data):
    ds, split = data
    job = FitAside.start(
        SASRec(SASRecConfig(**{**SMALL, "max_epochs": 500, "patience": 500})),
        split.train,
        ds.n_users,
        ds.n_items,
    )
    job.cancel()
    assert job.proc.poll() is not None
    assert not job.folder.exists()


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc (Linux)")
def test_the_child_exits_when_its_parent_is_killed(data, tmp_path):
    """A parent killed with SIGKILL runs no cleanup: the orphan notices and exits."""
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    ds, split = data
    rows = tmp_path / "rows.parquet"
    split.train.to_parquet(rows)
    script = textwrap.dedent(
        f"""
        import pandas as pd, time
        from instructrec.retrieval import SASRec, SASRecConfig
        from instructrec.training.fit_aside import FitAside
        job = FitAside.start(SASRec(SASRecConfig(hidden=16, n_layers=1, n_heads=1, inner=32,
                             max_epochs=100000, patience=100000)),
                             pd.read_parquet({str(rows)!r}), {ds.n_users}, {ds.n_items})
        print(job.proc.pid, job.folder, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    pid, folder = parent.stdout.readline().split()
    pid = int(pid)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()

    def running(pid: int) -> bool:  # an exited orphan may stay a zombie nobody reaps
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not running(pid):
            break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("the orphaned child kept running")
    deadline = time.monotonic() + 5
    while os.path.exists(folder) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(folder)
