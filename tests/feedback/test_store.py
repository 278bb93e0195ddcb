"""The feedback store on SQLite and PostgreSQL: requests, idempotent feedback, arms, versions."""

from __future__ import annotations

import threading

import pytest

from instructrec.feedback.records import Conflict, NotFound, reward_of
from instructrec.feedback.store import Store

ITEMS = [("i1", 1, 0.9), ("i2", 2, 0.5), ("i3", 3, 0.1)]


def _request(store, slot="P1I0T3", template="p1i0t3-a"):
    store.ensure_arms(slot, ["p1i0t3-a", "p1i0t3-b"])
    return store.record_request(
        "u1", None, "a comedy", 3, ITEMS, slot=slot, template_id=template, model_version="v1"
    )


def test_request_roundtrip(store):
    rid = _request(store)
    got = store.get_request(rid)
    assert got["user_id"] == "u1" and got["instruction"] == "a comedy"
    assert [it["item_id"] for it in got["items"]] == ["i1", "i2", "i3"]
    assert got["template_id"] == "p1i0t3-a" and got["model_version"] == "v1"
    assert store.get_request("nope") is None
    assert store.arms("P1I0T3")["P1I0T3"]["p1i0t3-a"]["pulls"] == 1


def test_feedback_is_idempotent(store):
    rid = _request(store)
    a = store.add_feedback(rid, "i2", "like", "key-1")
    b = store.add_feedback(rid, "i2", "like", "key-1")
    assert a.created and not b.created and a.id == b.id
    frame = store.feedback_frame()
    assert len(frame) == 1 and frame.loc[0, "rank"] == 2 and frame.loc[0, "reward"] == 1.0
    # the replay did not count twice in the bandit either
    assert store.arms("P1I0T3")["P1I0T3"]["p1i0t3-a"]["successes"] == 1.0
    with pytest.raises(Conflict):
        store.add_feedback(rid, "i3", "like", "key-1")


def test_replay_with_other_text_is_a_conflict(store):
    """Every field of a replay must match, the free text included (it would be dropped)."""
    rid = _request(store)
    a = store.add_feedback(rid, "i1", "like", "key-t", text="great")
    assert store.add_feedback(rid, "i1", "like", "key-t", text="great").id == a.id
    for text in ("other", None):
        with pytest.raises(Conflict):
            store.add_feedback(rid, "i1", "like", "key-t", text=text)
    store.add_feedback(rid, "i2", "like", "key-u")
    with pytest.raises(Conflict):
        store.add_feedback(rid, "i2", "like", "key-u", text="added later")


def test_feedback_unknown_request_or_item(store):
    rid = _request(store)
    with pytest.raises(NotFound, match="unknown request_id"):
        store.add_feedback("missing", "i1", "like", "k")
    with pytest.raises(NotFound, match="was not shown"):
        store.add_feedback(rid, "i9", "like", "k")
    with pytest.raises(ValueError, match="signal"):
        store.add_feedback(rid, "i1", "love", "k")
    assert store.stats()["feedback"] == 0


def test_rewards_update_arms(store):
    rid = _request(store, template="p1i0t3-b")
    store.add_feedback(rid, "i1", "dislike", "k1")
    store.add_feedback(rid, "i2", "rating", "k2", rating=5)
    store.add_feedback(rid, "i3", "rating", "k3", rating=3)  # no information
    arm = store.arms("P1I0T3")["P1I0T3"]["p1i0t3-b"]
    assert (arm["successes"], arm["failures"]) == (1.0, 1.0)
    assert store.stats()["by_signal"] == {"dislike": 1, "rating": 2}


def test_reward_mapping():
    assert reward_of("like") == reward_of("click") == reward_of("rating", 4) == 1.0
    assert reward_of("dislike") == reward_of("skip") == reward_of("rating", 2) == 0.0
    assert reward_of("rating", 3) is None


def test_concurrent_same_key_stores_one_row(store):
    rid = _request(store)
    results, errors = [], []

    def worker(i):
        try:
            results.append(store.add_feedback(rid, "i1", "click", "same-key"))
            store.add_feedback(rid, "i1", "click", f"own-{i}")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({r.id for r in results}) == 1 and sum(r.created for r in results) == 1
    assert store.stats()["feedback"] == 9


def test_model_versions(store):
    store.register_model("v1", "/runs/a")
    store.register_model("v2", "/runs/b", parent="v1", metrics={"hr@1": 0.3})
    assert store.active_model()["version"] == "v2"
    assert [m["version"] for m in store.model_versions()] == ["v1", "v2"]
    assert store.model_versions()[1]["metrics"] == {"hr@1": 0.3}
    store.register_model("v1", "/runs/a")  # re-activating an old version
    assert store.active_model()["version"] == "v1"


def test_sqlite_file_uses_wal(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'x.db'}")
    with s.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    s.close()


def _hold_write_lock(path):
    """Another connection (as another process would) holding SQLite's write lock."""
    import sqlite3

    other = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_sqlite_lock_fails_within_the_timeout(tmp_path):
    """A write lock held elsewhere makes writes fail (OperationalError, after the bounded
    busy timeout) instead of waiting; reads go on (WAL); writes work again once released."""
    from sqlalchemy.exc import OperationalError

    s = Store(f"sqlite:///{tmp_path / 'l.db'}", timeout=0.2)
    rid = _request(s)
    assert s.ping(write=True)
    other = _hold_write_lock(tmp_path / "l.db")
    try:
        with pytest.raises(OperationalError, match="locked"):
            _request(s)  # the group-commit path
        with pytest.raises(OperationalError, match="locked"):
            s.add_feedback(rid, "i1", "like", "k-lock")
        with pytest.raises(OperationalError, match="locked"):
            s.ping(write=True)
        assert s.ping() and s.get_request(rid) is not None  # reads are not blocked
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert s.add_feedback(rid, "i1", "like", "k-lock").created
    assert s.ping(write=True)
    s.close()


def test_timeout_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="timeout"):
        Store(f"sqlite:///{tmp_path / 't.db'}", timeout=0)
