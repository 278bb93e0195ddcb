"""The Yes/No benchmark's rotation augmentation reads nothing beyond each example's own text."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
bt = pytest.importorskip("bench_tune")


def example(user: int, items: list[int], marks: list[bool], answer: bool) -> dict:
    titles = [f"Movie {i} (1990)" for i in items[:-1]]
    target = f"Movie {items[-1]} (1990)"
    return {
        "user": user, "item": items[-1], "history": items[:-1], "titles": titles,
        "liked": marks, "target": target, "output": "Yes" if answer else "No",
        "instruction": bt.prompt(titles, marks, target),
    }  # fmt: skip


def parse(prompt: str) -> tuple[list[tuple[str, bool]], str]:
    rows = re.findall(r"^\d+\. (.*) - (liked|disliked)$", prompt, flags=re.M)
    target = re.search(r'like the movie "(.*)"\?', prompt).group(1)
    return [(t, m == "liked") for t, m in rows], target


def test_rotated_questions_come_from_the_example_text() -> None:
    marks = [True, False, False, True, True, False, True, False, False, True]
    e = example(7, list(range(100, 111)), marks, answer=False)
    known = dict(zip(e["titles"] + [e["target"]], marks + [False], strict=True))
    rot = bt.rotate([e], 3, seed=0)
    assert len(rot) == 3
    asked = set()
    for r in rot:
        history, target = parse(r["instruction"])
        assert len(history) == bt.HISTORY and target not in dict(history)
        # every mark is the one the original example showed; the label is the target's mark
        assert all(known[t] == m for t, m in history)
        assert r["output"] == ("Yes" if known[target] else "No")
        # the order of the original text is kept, the original target last
        order = [list(known).index(t) for t, _ in history]
        assert order == sorted(order) and history[-1][0] == e["target"]
        asked.add(target)
    assert len(asked) == 3 and e["target"] not in asked
    assert [r["instruction"] for r in bt.rotate([e], 3, seed=0)] == [r["instruction"] for r in rot]
    assert len(bt.rotate([e], 50, seed=0)) == bt.HISTORY


def test_seen_in_flags_rows_rated_in_the_training_text() -> None:
    e = example(7, list(range(100, 111)), [True] * 10, answer=True)
    rows = [{"user": 7, "item": 103}, {"user": 7, "item": 110}, {"user": 8, "item": 103},
            {"user": 7, "item": 111}]  # fmt: skip
    assert bt.seen_in([e], rows).tolist() == [True, True, False, False]


def test_log_questions_come_from_users_outside_the_pool_and_the_test_set() -> None:
    d = bt.build(0)
    logs = d["logs"](500, 0)
    assert len(logs) == 500 and len({(e["user"], e["item"]) for e in logs}) == 500
    used = {e["user"] for part in ("train", "valid", "dev", "test") for e in d[part]}
    assert {e["user"] for e in logs} <= set(d["free_users"])
    assert not set(d["free_users"]) & used
    assert [e["item"] for e in d["logs"](50, 1)] == [e["item"] for e in d["logs"](50, 1)]
    assert [e["item"] for e in d["logs"](50, 1)] != [e["item"] for e in d["logs"](50, 2)]


def test_wide_log_questions_never_show_a_test_or_development_rating() -> None:
    d = bt.build(0)
    wide = d["logs_wide"](30000, 0)
    held = {(e["user"], e["item"]) for part in ("valid", "dev", "test") for e in d[part]}
    shown = {(e["user"], i) for e in wide for i in e["history"] + [e["item"]]}
    assert not shown & held
    assert {e["user"] for e in wide} & {e["user"] for e in d["test"]}  # test users' other rows
    pool = {e["user"] for part in ("train", "valid", "dev") for e in d[part]}
    assert not {e["user"] for e in wide} & pool
