"""Thompson sampling over templates: state in memory or in the store; learns the better arm."""

from __future__ import annotations

import numpy as np
import pytest

from instructrec.feedback.bandit import (
    MemoryArms,
    TemplateBandit,
    catalogue_templates,
    slot_of,
    usable_template,
)
from instructrec.feedback.store import Store


def _run(bandit: TemplateBandit, slot: str, p: dict[str, float], steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    picks = []
    for _ in range(steps):
        t = bandit.choose(slot)
        bandit.update(slot, t, float(rng.random() < p[t]))
        picks.append(t)
    return picks


@pytest.mark.parametrize("state", ["memory", "store"])
def test_learns_the_better_template(state, tmp_path):
    arms = MemoryArms() if state == "memory" else Store(f"sqlite:///{tmp_path / 'b.db'}")
    bandit = TemplateBandit(arms, {"S": ["good", "bad", "worse"]}, seed=1)
    picks = _run(bandit, "S", {"good": 0.6, "bad": 0.3, "worse": 0.1}, 300)
    assert picks[-100:].count("good") > 70
    means = bandit.means("S")
    assert means["good"] > means["bad"] > 0 and max(means, key=means.get) == "good"


def test_posterior_counts_and_no_information():
    bandit = TemplateBandit(MemoryArms(), {"S": ["a", "b"]}, seed=0)
    bandit.update("S", "a", 1.0)
    bandit.update("S", "a", 0.0)
    bandit.update("S", "b", None)  # e.g. rating 3: nothing learnt
    assert bandit.posterior("S") == {"a": (2.0, 2.0), "b": (1.0, 1.0)}
    with pytest.raises(ValueError):
        bandit.update("S", "a", 2.0)


def test_explores_before_feedback():
    bandit = TemplateBandit(MemoryArms(), {"S": ["a", "b", "c"]}, seed=0)
    assert {bandit.choose("S") for _ in range(60)} == {"a", "b", "c"}


def test_slots_and_catalogue():
    assert slot_of(True, None) == "P1I0T3" and slot_of(True, "a comedy") == "P1I2T3"
    assert slot_of(False, None) == "P0I0T3"
    ids = catalogue_templates("P1I0T3")
    assert len(ids) >= 2 and all(usable_template(t) == t for t in ids)
    assert catalogue_templates("P9I9T9") == ["P9I9T9/default"]
    assert usable_template("P9I9T9/default") is None and usable_template("nope") is None


def test_adopted_rewrite_becomes_renderable(tmp_path):
    from instructrec.instructions.catalogue import TemplateCatalogue

    store = Store(f"sqlite:///{tmp_path / 'b.db'}")
    store.ensure_arms(
        "P1I0T3",
        ["p1i0t3-opro-abc"],
        source="opro",
        texts={"p1i0t3-opro-abc": "Since you liked {history}, a {noun}?"},
    )
    bandit = TemplateBandit(store, seed=0)
    assert bandit.renderable("P1I0T3", "p1i0t3-opro-abc") == "p1i0t3-opro-abc"
    assert TemplateCatalogue.default().get("p1i0t3-opro-abc").text.startswith("Since you")
    assert bandit.renderable("P1I0T3", "p1i0t3-a") == "p1i0t3-a"
    assert bandit.renderable("P1I0T3", "unknown-arm") is None
