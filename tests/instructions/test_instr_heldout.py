"""Held-out templates for every slot the test protocols render, selectable per slot, never
used for training; adding them leaves the seen templates (what training draws) unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from instructrec.data.errors import DataError
from instructrec.instructions import TemplateCatalogue, render
from instructrec.instructions.catalogue import parse_pieces
from instructrec.rerank.instances import TextSide

# the slots the protocols render: cand10/cand20/full/hard/cold, vague, search(-hard), P2, pointwise
TEST_SLOTS = ["P1I0T3", "P1I1T3", "P1I2T3", "P2I0T3", "P1I0T0"]
# seen template ids per slot, in catalogue order, as at 2328a15 (before held-out templates were
# added): training draws among exactly these, so the reranker's training data stays the same
SEEN_AT_HEAD = {
    "P1I0T3": ["p1i0t3-a", "p1i0t3-b", "p1i0t3-c"], "P1I1T3": ["p1i1t3-a", "p1i1t3-b"],
    "P1I2T3": ["p1i2t3-a", "p1i2t3-b"], "P2I0T3": ["p2i0t3-a", "p2i0t3-b"],
    "P2I1T3": ["p2i1t3-a", "p2i1t3-b"], "P2I2T3": ["p2i2t3-a", "p2i2t3-b"],
    "P0I1T3": ["p0i1t3-a", "p0i1t3-b"], "P0I2T3": ["p0i2t3-a"],
    "P1I0T2": ["p1i0t2-a", "p1i0t2-b"], "P1I1T2": ["p1i1t2-a", "p1i1t2-b"],
    "P1I2T2": ["p1i2t2-a", "p1i2t2-b"], "P2I0T2": ["p2i0t2-a", "p2i0t2-b"],
    "P0I1T2": ["p0i1t2-a", "p0i1t2-b"], "P0I2T2": ["p0i2t2-a", "p0i2t2-b"],
    "P1I0T0": ["p1i0t0-a", "p1i0t0-b"], "P2I0T0": ["p2i0t0-a", "p2i0t0-b"],
    "P1I2T0": ["p1i2t0-a", "p1i2t0-b"], "P0I2T0": ["p0i2t0-a", "p0i2t0-b"],
    "P1I0T1": ["p1i0t1-a", "p1i0t1-b"], "P2I0T1": ["p2i0t1-a", "p2i0t1-b"],
    "P1I2T1": ["p1i2t1-a", "p1i2t1-b"], "P0I2R": ["r-i2-a", "r-i2-b"], "P0I1R": ["r-i1-a"],
}  # fmt: skip


def _literals(text: str) -> list[str]:
    return [v for k, v in parse_pieces(text) if k == "lit" and len(v.split()) >= 3]


def test_seen_templates_per_slot_are_unchanged():
    cat = TemplateCatalogue.default()
    seen: dict[str, list[str]] = {}
    for t in cat.select("seen"):
        seen.setdefault("".join(t.slot), []).append(t.id)
    assert seen == SEEN_AT_HEAD
    assert [t.id for t in cat.select("seen")] == [t.id for t in cat if not t.held_out]


@pytest.mark.parametrize("slot", TEST_SLOTS)
def test_every_test_slot_has_held_out_templates_worded_apart(slot):
    cat = TemplateCatalogue.default()
    held = cat.select(f"held_out:{slot}")
    assert len(held) >= 2 and all(t.held_out and "".join(t.slot) == slot for t in held)
    assert held == cat.select("held_out", slot=slot) == cat.templates(cat.select(
        "held_out", slot=slot)[0].slot, held_out=True)  # fmt: skip
    seen_text = " ".join(t.text + " " + t.choices for t in cat.select("seen", slot=slot))
    for t in held:  # no literal stretch of a held-out template is copied from a seen one
        assert not [lit for lit in _literals(t.text) if lit.strip(" .,?") in seen_text], t.id


def test_select_by_slot_errors():
    cat = TemplateCatalogue.default()
    with pytest.raises(DataError, match="P1I1T3"):
        cat.select("held_out:P1-I1")
    with pytest.raises(DataError, match="slot"):
        cat.select("p1i0t3-a", slot="P1I1T3")
    assert [t.id for t in cat.select(["p1i0t3-a", "held_out:P2I0T3"])][0] == "p1i0t3-a"


def test_held_out_templates_never_reach_training(ml_train):
    held = {t.id for t in TemplateCatalogue.default().select("held_out")}
    assert not set(ml_train["template_id"]) & held
    # the reranker's training instances render with "seen"
    side = TextSide(np.array([f"Film {i}" for i in range(10)], dtype=object), "movie", "movies")
    hists = [np.array([1, 2, 3])] * 40
    slots = ["P1I0", "P1I1", "P1I2", "P2I0"] * 10
    texts = side.render(
        hists,
        [None, "x", "y", None] * 10,
        templates="seen",
        preferences=["I like war."] * 40,
        history=3,
        slots=slots,
    )
    held_bits = [
        lit for t in TemplateCatalogue.default().select("held_out") for lit in _literals(t.text)
    ]
    assert not [t for t in texts for b in held_bits if b in t]


@pytest.mark.parametrize("slot", TEST_SLOTS)
def test_rendering_with_the_held_out_templates_of_a_slot(ml100k, slot):
    p, i, task = slot[:2], slot[2:4], slot[4:]
    cat = TemplateCatalogue.default()
    held = cat.select(f"held_out:{slot}")
    n = 40
    hists = [np.array([j, j + 1, j + 2]) for j in range(n)]
    intent = {"I0": None, "I1": "got any old cowboy flicks?", "I2": "a noir from the forties"}[i]
    k = 1 if task == "T0" else 5
    out = render(
        ml100k,
        hists,
        [intent] * n,
        task=task,
        template_ids=f"held_out:{slot}",
        preferences=["I like westerns."] * n if p == "P2" else None,
        candidates=[np.arange(k) + j for j in range(n)],
        with_candidates=True,
        vague=i == "I1",
    )
    used = {t.id for t in held for o in out if all(lit in o for lit in _literals(t.text))}
    assert len(used) >= 2, used  # the seeded choice spreads over the slot's held-out set
    assert all(intent in o for o in out) if intent else True
    # the reranker's query path with the same selector
    if task == "T3":
        side = TextSide.of(ml100k)
        q = side.render(
            hists,
            [intent] * n,
            templates=f"held_out:{slot}",
            preferences=["I like westerns."] * n if p == "P2" else None,
            history=3,
            slots=[p + i] * n,
        )
        got = {t.id for t in held for o in q if all(lit in o for lit in _literals(t.text))}
        assert len(got) >= 2, got
