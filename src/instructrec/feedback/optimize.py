"""OPRO-style template rewrites: a teacher LLM proposes new instruction templates.

"Large Language Models as Optimizers" (OPRO, Yang et al. 2023): show an LLM the solutions
tried so far with their scores, ascending, and ask for a better one. Here a solution is an
instruction template of one (P, I, T) slot and its score is what users said about it (the
bandit's posterior mean reward) or an offline validation metric. A proposal is adopted only
if (1) it is a well-formed template of the slot (the slot's fields, no unknown ones) and (2)
its offline validation metric is not worse than the best existing template's. Adopted
templates become new arms of the bandit (source "opro") and are added to the in-process
instruction catalogue so the reranker can render them.

The teacher is `instructrec.instructions.teacher.TeacherLLM` (the one teacher client: any
OpenAI-compatible chat endpoint, ``POST {url}/v1/chat/completions``, retries with backoff),
built by `opro_teacher` with OPRO's sampling settings (temperature 1, no answer cache).
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field

from ..data.errors import DataError
from ..instructions.catalogue import FIELDS

KNOWN_FIELDS = set(FIELDS)  # the catalogue's: {history} ... {noun} {a_noun} {consumed} {consume}
SYSTEM = (
    "You write instruction templates for a recommender system that follows natural-"
    "language instructions. Placeholders in curly braces are filled in by the system."
)


OPRO_SAMPLING = {  # TeacherConfig settings of a proposal request
    "temperature": 1.0,  # OPRO samples at high temperature for diversity
    "max_tokens": 256,  # one template is short
    "cache_dir": None,  # every proposal is a fresh sample, never a cached answer
}


def opro_teacher(url: str, model: str = "teacher", **settings):
    """The `TeacherLLM` that proposes templates: ``url`` as `TeacherConfig.url` (a base URL;
    ``/v1/chat/completions`` is appended unless given), the key from
    INSTRUCTREC_TEACHER_KEY, OPRO's sampling settings; ``settings`` override any of them."""
    from ..instructions.teacher import TeacherConfig, TeacherLLM

    return TeacherLLM(TeacherConfig.from_env(url=url, model=model, **{**OPRO_SAMPLING, **settings}))


@dataclass
class Proposal:
    """One rewrite and what happened to it."""

    text: str
    template_id: str
    valid: bool
    score: float | None = None  # offline validation metric (None when invalid)
    best_before: float | None = None
    adopted: bool = False
    reason: str = ""


@dataclass
class OptimizeResult:
    slot: str
    proposals: list[Proposal] = field(default_factory=list)

    @property
    def adopted(self) -> list[Proposal]:
        return [p for p in self.proposals if p.adopted]


def required_fields(slot: str) -> set[str]:
    """Fields a template of ``slot`` ("P1I2T3") must contain."""
    need = set()
    if slot[:2] == "P1":
        need.add("history")
    if slot[:2] == "P2":
        need.add("preference")
    if slot[2:4] in ("I1", "I2"):
        need.add("intention")
    return need


def template_fields(text: str) -> list[str]:
    """Field names used by a str.format template; DataError when it does not parse."""
    try:
        return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as e:
        raise DataError(f"template does not parse: {e}") from None


def check_template(text: str, slot: str) -> str:
    """'' when ``text`` is a usable template of ``slot``, else the reason it is not."""
    if not text or len(text) > 1000:
        return "empty or longer than 1000 characters"
    try:
        names = template_fields(text)
    except DataError as e:
        return str(e)
    unknown = set(names) - KNOWN_FIELDS
    if unknown:
        return f"unknown fields {sorted(unknown)}"
    missing = required_fields(slot) - set(names)
    if missing:
        return f"missing fields {sorted(missing)}"
    if "candidates" in names:
        return "the candidate list is appended by the system; do not use {candidates}"
    return ""


def opro_prompt(slot: str, scored: list[tuple[str, float]]) -> str:
    """The meta-prompt: past templates with scores, worst first (OPRO's ordering)."""
    need = ", ".join("{" + f + "}" for f in sorted(required_fields(slot))) or "none"
    lines = [
        f"Below are instruction templates for the slot {slot} with their scores "
        "(higher is better), from worst to best:",
        "",
    ]
    for text, score in sorted(scored, key=lambda x: x[1]):
        lines.append(f"text: {text}\nscore: {score:.4f}\n")
    lines += [
        "Write a new template that is different from all of the above and scores higher.",
        f"It must contain the placeholders {need}; it may use {{noun}}, {{nouns}}, {{a_noun}} "
        '(e.g. "movie", "movies", "a movie"), {consumed} and {consume} (e.g. "watched", '
        '"watch"); it must not list candidates. Reply with the template only, between '
        "<TEMPLATE> and </TEMPLATE>.",
    ]
    return "\n".join(lines)


def extract_template(reply: str) -> str:
    """The text between <TEMPLATE> tags (or the whole reply), stripped of quotes."""
    m = re.search(r"<TEMPLATE>(.*?)</TEMPLATE>", reply, flags=re.S | re.I)
    text = (m.group(1) if m else reply).strip()
    return text.strip('"').strip()


def install_template(template_id: str, slot: str, text: str, choices: str = "") -> None:
    """Make ``template_id`` renderable by the reranker in this process (added to the default
    instruction catalogue; a no-op when it is already there)."""
    from ..instructions.catalogue import Template, TemplateCatalogue

    cat = TemplateCatalogue.default()
    try:
        cat.get(template_id)
        return
    except DataError:
        pass
    parts = (slot[0:2], slot[2:4], slot[4:])
    if not choices:  # keep the slot's way of listing candidates (T0/T1/T3 need one)
        same = cat.templates(parts, held_out=None)
        choices = same[0].choices if same else ""
    cat.add(
        Template(
            id=template_id,
            slot=parts,
            text=text,
            choices=choices,
            held_out=False,
            fields=tuple(template_fields(text) + template_fields(choices)),
        )
    )


def optimize_slot(
    slot: str,
    scored: list[tuple[str, float]],
    evaluate: Callable[[str], float],
    teacher,
    proposals: int = 3,
    state=None,
    baseline: float | None = None,
) -> OptimizeResult:
    """One OPRO step for ``slot``.

    ``scored``: (template text, score) of the templates tried so far (the prompt);
    ``teacher``: a `TeacherLLM` (`opro_teacher`), asked once per proposal.
    ``evaluate(text) -> metric`` scores a candidate template offline (higher is better);
    ``baseline`` is the best existing template's metric (default: the best of ``evaluate``
    over ``scored``). Adopted templates are added as arms of ``state`` (a `Store` or
    `MemoryArms`) when given.
    """
    if not scored:
        raise DataError(f"no scored templates for slot {slot}: nothing to optimise from")
    best = baseline if baseline is not None else max(evaluate(t) for t, _ in scored)
    result = OptimizeResult(slot)
    seen = {t for t, _ in scored}
    prompt = opro_prompt(slot, scored)
    replies = [teacher.complete(prompt, system=SYSTEM) for _ in range(proposals)]
    for reply in replies:
        text = extract_template(reply)
        tid = f"{slot.lower()}-opro-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
        problem = check_template(text, slot) or (
            "a copy of an existing template" if text in seen else ""
        )
        p = Proposal(
            text=text, template_id=tid, valid=not problem, best_before=best, reason=problem
        )
        if p.valid:
            seen.add(text)
            p.score = float(evaluate(text))
            p.adopted = p.score >= best  # only if the validation metric is not worse
            p.reason = (
                "not worse than the best existing template"
                if p.adopted
                else f"validation {p.score:.4f} < best {best:.4f}"
            )
            if p.adopted and state is not None:
                state.ensure_arms(slot, [tid], source="opro", texts={tid: text})
        result.proposals.append(p)
    return result


def validation_evaluator(
    recommender,
    split,
    slot: str = "P1I0T3",
    rows: int = 200,
    candidates: str = "cand10",
    seed: int = 0,
) -> Callable[[str], float]:
    """``evaluate(text)``: HR@1 of ``recommender`` on ``rows`` validation rows of the
    ``candidates`` file with the template ``text`` installed for ``slot`` (I0 slots: the
    validation protocol has no stated intention)."""
    import numpy as np

    cand = split.candidates[candidates]["valid"]
    hists = split.histories("valid")
    users = split.valid["user"].to_numpy()
    pick = np.random.default_rng(seed).permutation(len(cand))[:rows]

    def evaluate(text: str) -> float:
        tid = f"{slot.lower()}-eval-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
        install_template(tid, slot, text)
        scores = recommender.score_candidates(
            users[pick], cand[pick], [hists[i] for i in pick], templates=[tid]
        )
        scores = np.asarray(scores)
        # ties count against the target (column 0)
        return float((scores[:, 0] > scores[:, 1:].max(axis=1)).mean())

    return evaluate
