"""Thompson sampling over instruction templates (Beta-Bernoulli bandit).

InstructRec phrases one request many ways: templates of a (preference P, intention I, task T)
slot. Which phrasing serves users best is learnt online: each template of a slot is an arm
with a Beta(1 + successes, 1 + failures) posterior; per request we draw one sample per arm
and use the template with the largest draw (Thompson, 1933; Chapelle & Li, 2011). Feedback
is the reward: like / click / rating >= 4 count 1, dislike / skip / rating <= 2 count 0.

Arm state lives in an `ArmState`: the SQL `Store` (shared by all server workers) or
`MemoryArms` (offline simulation).
"""

from __future__ import annotations

import time
from typing import Protocol

import numpy as np


class ArmState(Protocol):
    def ensure_arms(
        self, slot: str, template_ids, source: str = "catalogue", texts: dict | None = None
    ) -> None: ...
    def arms(self, slot: str | None = None) -> dict[str, dict[str, dict]]: ...
    def update_arm(self, slot: str, template_id: str, reward: float) -> None: ...


class MemoryArms:
    """In-process arm state with the `Store`'s interface (for simulation and tests)."""

    def __init__(self) -> None:
        self._arms: dict[str, dict[str, dict]] = {}

    def ensure_arms(self, slot, template_ids, source="catalogue", texts=None) -> None:
        for tid in template_ids:
            self._arms.setdefault(slot, {}).setdefault(
                tid,
                {
                    "successes": 0.0,
                    "failures": 0.0,
                    "pulls": 0,
                    "source": source,
                    "text": (texts or {}).get(tid),
                },
            )

    def arms(self, slot=None):
        if slot is None:
            return {k: dict(v) for k, v in self._arms.items()}
        return {slot: dict(self._arms.get(slot, {}))} if slot in self._arms else {}

    def update_arm(self, slot, template_id, reward) -> None:
        self.ensure_arms(slot, [template_id])
        arm = self._arms[slot][template_id]
        arm["successes"] += float(reward)
        arm["failures"] += 1.0 - float(reward)

    def pull(self, slot: str, template_id: str) -> None:
        self.ensure_arms(slot, [template_id])
        self._arms[slot][template_id]["pulls"] += 1


def slot_of(has_history: bool, instruction: str | None, task: str = "T3") -> str:
    """The (P, I, T) slot of a request: P1 with a history (P0 without), I2 with an explicit
    instruction (the user states what they want), I0 without; T3 (reranking) when serving."""
    p = "P1" if has_history else "P0"
    i = "I2" if instruction else "I0"
    return f"{p}{i}{task}"


def catalogue_templates(slot: str) -> list[str]:
    """Template ids of ``slot`` from the instruction catalogue, or one default id when the
    catalogue has none (a retriever-only model ignores the template)."""
    try:
        from instructrec.instructions.catalogue import TemplateCatalogue

        parts = (slot[0:2], slot[2:4], slot[4:])
        ids = [t.id for t in TemplateCatalogue.default().templates(parts, held_out=False)]
    except ImportError:  # no catalogue installed: one neutral arm
        ids = []
    return ids or [f"{slot}/default"]


def usable_template(template_id: str | None) -> str | None:
    """``template_id`` if the instruction catalogue knows it (so a reranker can render it),
    else None (the neutral default arm of a slot without templates)."""
    if template_id is None or template_id.endswith("/default"):
        return None
    try:
        from instructrec.instructions.catalogue import TemplateCatalogue

        TemplateCatalogue.default().get(template_id)
    except Exception:  # unknown id or no catalogue
        return None
    return template_id


class TemplateBandit:
    """Pick a template per request by Thompson sampling; learn from rewards.

    ``templates`` maps a slot to its template ids (default: `catalogue_templates`).
    """

    def __init__(
        self,
        state: ArmState,
        templates: dict[str, list[str]] | None = None,
        seed: int | None = None,
        prior: tuple[float, float] = (1.0, 1.0),
        refresh_s: float = 0.0,
    ) -> None:
        self.state = state
        self.templates = dict(templates or {})
        self.prior = prior  # Beta(a, b) before any feedback
        self.refresh_s = refresh_s  # re-read arm counts at most this often (0: every call)
        self.rng = np.random.default_rng(seed)
        self._ready: set[str] = set()
        self._cache: dict[str, tuple[float, dict]] = {}  # slot -> (read at, arms)

    def _ensure(self, slot: str) -> None:
        if slot in self._ready:
            return
        ids = self.templates.get(slot) or catalogue_templates(slot)
        self.state.ensure_arms(slot, ids)
        self._ready.add(slot)

    def posterior(self, slot: str) -> dict[str, tuple[float, float]]:
        """{template_id: (alpha, beta)} of the slot's active arms."""
        self._ensure(slot)
        now = time.monotonic()
        hit = self._cache.get(slot)
        if hit is not None and now - hit[0] < self.refresh_s:
            arms = hit[1]
        else:
            arms = self.state.arms(slot).get(slot, {})
            self._cache[slot] = (now, arms)
        a0, b0 = self.prior
        return {t: (a0 + v["successes"], b0 + v["failures"]) for t, v in arms.items()}

    def choose(self, slot: str) -> str:
        """One Thompson draw: the template whose Beta sample is largest."""
        post = self.posterior(slot)
        ids = list(post)
        if len(ids) == 1:
            return ids[0]
        a = np.array([post[t][0] for t in ids])
        b = np.array([post[t][1] for t in ids])
        return ids[int(np.argmax(self.rng.beta(a, b)))]

    def update(self, slot: str, template_id: str, reward: float | None) -> None:
        """Add a Bernoulli reward (None: no information, e.g. a rating of 3)."""
        if reward is None:
            return
        if not 0.0 <= reward <= 1.0:
            raise ValueError(f"reward must be in [0, 1], got {reward}")
        self.state.update_arm(slot, template_id, reward)
        self._cache.pop(slot, None)

    def renderable(self, slot: str, template_id: str | None) -> str | None:
        """``template_id`` if a reranker can render it: a catalogue template, or an adopted
        rewrite (its text is stored with the arm; installed into the catalogue here)."""
        if usable_template(template_id) is not None:
            return template_id
        hit = self._cache.get(slot)
        arms = hit[1] if hit is not None else self.state.arms(slot).get(slot, {})
        text = (arms.get(template_id) or {}).get("text")
        if not text:
            return None
        from .optimize import install_template

        install_template(template_id, slot, text)
        return template_id

    def means(self, slot: str) -> dict[str, float]:
        """Posterior mean reward per template."""
        return {t: a / (a + b) for t, (a, b) in self.posterior(slot).items()}
