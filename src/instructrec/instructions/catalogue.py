"""The InstructRec template catalogue: instruction templates as data (templates.yaml).

InstructRec (Zhang et al. 2023, "Recommendation as Instruction Following") writes every
recommendation request as a natural-language instruction built from three parts: the user's
preference (P0 none, P1 implicit history, P2 explicit text), intention (I0 none, I1 vague,
I2 specific) and the task (T0 pointwise Yes/No, T1 pairwise, T2 matching, T3 reranking). A
template fills one (P, I, T) slot; held-out templates are kept for zero-shot evaluation.

    cat = TemplateCatalogue.default()
    cat.slots()                         # [("P0", "I1", "T2"), ...]
    cat.templates(("P1", "I0", "T3"), held_out=False)
    cat.select("held_out:P1I1T3")       # the held-out templates of one slot (also in render)
    cat.get("p1i0t3-a").text
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from instructrec.data.errors import DataError
from instructrec.data.yamlfile import safe_load

from .titles import DOMAIN_FIELDS

PREFERENCES = ("P0", "P1", "P2")
INTENTIONS = ("I0", "I1", "I2")
TASKS = ("T0", "T1", "T2", "T3", "R")  # R: reverse (item -> a request it answers)
# {noun} {nouns} {Noun} {a_noun} {consumed} {consume}: the domain's words (titles.domain_words)
FIELDS = ("history", "preference", "intention", "candidates", "item") + DOMAIN_FIELDS
Slot = tuple[str, str, str]


@dataclass(frozen=True)
class Template:
    """One instruction template: ``text`` (the query) + ``choices`` (names the candidates)."""

    id: str  # unique name, e.g. "p1i0t3-a"
    slot: Slot  # (P, I, T)
    text: str  # str.format-style with the fields of FIELDS; no candidates here
    choices: str = ""  # appended after ``text`` for T0/T1/T3; holds {candidates}
    held_out: bool = False  # never used for training when True
    fields: tuple[str, ...] = field(default=(), compare=False)  # fields used, in order

    @property
    def P(self) -> str:  # noqa: N802 (the paper's names)
        return self.slot[0]

    @property
    def I(self) -> str:  # noqa: N802,E743
        return self.slot[1]

    @property
    def T(self) -> str:  # noqa: N802
        return self.slot[2]


def parse_pieces(text: str) -> list[tuple[str, str]]:
    """Split a format string into ``("lit", text)`` and ``("field", name)`` pieces."""
    out: list[tuple[str, str]] = []
    for lit, name, spec, conv in string.Formatter().parse(text):
        if lit:
            out.append(("lit", lit))
        if name is not None:
            if name in FIELDS and (spec or conv):
                raise ValueError(f"field {{{name}}} takes no conversion or format spec")
            if name not in FIELDS:
                known = " ".join("{" + f + "}" for f in FIELDS)
                raise ValueError(f"unknown field {{{name}}} (known fields: {known})")
            out.append(("field", name))
    return out


def _check(t: Template, where: str) -> None:
    p, i, task = t.slot
    if p not in PREFERENCES or i not in INTENTIONS or task not in TASKS:
        raise DataError(
            f"template {t.id!r}: slot {list(t.slot)} is not (P0-2, I0-2, T0-3|R)", source=where
        )
    if p == "P0" and i == "I0":
        raise DataError(
            f"template {t.id!r}: slot P0 I0 gives the model nothing to go on", source=where
        )
    try:
        names = [n for k, n in parse_pieces(t.text) + parse_pieces(t.choices) if k == "field"]
    except ValueError as e:
        raise DataError(f"template {t.id!r}: {e}", source=where) from None
    need = {"P1": "history", "P2": "preference"}.get(p)
    if need and need not in names:
        raise DataError(f"template {t.id!r}: slot {p} needs the field {{{need}}}", source=where)
    if i != "I0" and task != "R" and "intention" not in names:
        raise DataError(f"template {t.id!r}: slot {i} needs the field {{intention}}", source=where)
    if task in ("T0", "T1", "T3") and ("field", "candidates") not in parse_pieces(t.choices):
        raise DataError(
            f"template {t.id!r}: task {task} needs {{candidates}} in `choices`", source=where
        )
    if "candidates" in [n for k, n in parse_pieces(t.text) if k == "field"]:
        raise DataError(
            f"template {t.id!r}: {{candidates}} belongs in `choices`, not `text`", source=where
        )
    if task == "R" and "item" not in names:
        raise DataError(f"template {t.id!r}: reverse task needs {{item}}", source=where)


class TemplateCatalogue:
    """An ordered, validated set of `Template`s with lookups by id and by slot."""

    def __init__(self, templates: list[Template]) -> None:
        self._list = list(templates)
        self._by_id = {}
        for t in self._list:
            if t.id in self._by_id:
                raise DataError(f"duplicate template id {t.id!r}")
            self._by_id[t.id] = t

    @classmethod
    def from_yaml(cls, path: str | Path | None = None) -> TemplateCatalogue:
        """Load ``path`` (default: the packaged templates.yaml)."""
        if path is None:
            text = (
                resources.files("instructrec.instructions").joinpath("templates.yaml").read_text()
            )
            where = "instructrec/instructions/templates.yaml"
        else:
            p = Path(path)
            if not p.exists():
                raise DataError("template file not found", source=str(p))
            text, where = p.read_text(encoding="utf-8"), str(p)
        try:
            raw = safe_load(text)
        except yaml.YAMLError as e:
            raise DataError(f"not valid YAML: {e}", source=where) from None
        if not isinstance(raw, dict) or not isinstance(raw.get("templates"), list):
            raise DataError("expected a mapping with a `templates:` list", source=where)
        out = []
        for n, entry in enumerate(raw["templates"]):
            if not isinstance(entry, dict):
                raise DataError(f"template #{n} is not a mapping", source=where)
            for key in ("id", "slot", "text"):
                if key not in entry:
                    raise DataError(
                        f"template #{n} ({entry.get('id', '?')}) lacks `{key}`",
                        source=where,
                        column=key,
                    )
            slot = entry["slot"]
            if not (isinstance(slot, list | tuple) and len(slot) == 3):
                raise DataError(f"template {entry['id']!r}: slot must be [P, I, T]", source=where)
            t = Template(
                id=str(entry["id"]),
                slot=tuple(str(s) for s in slot),
                text=str(entry["text"]),
                choices=str(entry.get("choices", "") or ""),
                held_out=bool(entry.get("held_out", False)),
            )
            _check(t, where)
            names = tuple(
                n for k, n in parse_pieces(t.text) + parse_pieces(t.choices) if k == "field"
            )
            out.append(Template(t.id, t.slot, t.text, t.choices, t.held_out, names))
        return cls(out)

    @classmethod
    def default(cls) -> TemplateCatalogue:
        """The packaged catalogue (cached)."""
        global _DEFAULT
        if _DEFAULT is None:
            _DEFAULT = cls.from_yaml()
        return _DEFAULT

    def add(self, template: Template, replace: bool = False) -> Template:
        """Validate and add ``template`` (e.g. one proposed by a template optimiser).

        Returns the stored template (with ``fields`` filled in). An existing id raises
        `DataError` unless ``replace``.
        """
        _check(template, "<added template>")
        names = tuple(
            n
            for k, n in parse_pieces(template.text) + parse_pieces(template.choices)
            if k == "field"
        )
        t = Template(
            template.id,
            tuple(template.slot),
            template.text,
            template.choices,
            template.held_out,
            names,
        )
        if t.id in self._by_id:
            if not replace:
                raise DataError(f"duplicate template id {t.id!r}")
            self._list[self._list.index(self._by_id[t.id])] = t
        else:
            self._list.append(t)
        self._by_id[t.id] = t
        return t

    def __len__(self) -> int:
        return len(self._list)

    def __iter__(self):
        return iter(self._list)

    def get(self, template_id: str) -> Template:
        """The template named ``template_id``; `DataError` listing close names if unknown."""
        try:
            return self._by_id[template_id]
        except KeyError:
            raise DataError(
                f"unknown template id {template_id!r}; known: {', '.join(sorted(self._by_id))}"
            ) from None

    def slots(self) -> list[Slot]:
        """Every (P, I, T) slot with at least one template, in catalogue order."""
        return list(dict.fromkeys(t.slot for t in self._list))

    def templates(self, slot: Slot | None = None, held_out: bool | None = None) -> list[Template]:
        """Templates of ``slot`` (all slots if None); ``held_out`` True/False filters, None keeps all."""
        return [
            t
            for t in self._list
            if (slot is None or t.slot == tuple(slot))
            and (held_out is None or t.held_out == held_out)
        ]

    def select(
        self, which: str | list[str] | tuple[str, ...], slot: Slot | str | None = None
    ) -> list[Template]:
        """Templates named by ``which``: "seen", "held_out", "all", a template id, or a list of
        ids. A set may be narrowed to one slot, either with ``slot`` (("P1", "I1", "T3") or
        "P1I1T3") or inside the name as "held_out:P1I1T3" (also "seen:..." / "all:..."), a
        form that also works as an element of a list and wherever a template set is named
        (``render(template_ids=...)``, the reranker's ``templates=``, ``build``, the CLI)."""
        if not isinstance(which, str):
            return [t for w in which for t in self.select(w, slot)]
        if ":" in which:
            which, _, part = which.partition(":")
            if slot is not None and _slot(part) != _slot(slot):
                raise DataError(f"template set {which}:{part} conflicts with slot {slot!r}")
            slot = part
        sets = {"seen": False, "held_out": True, "held-out": True, "heldout": True, "all": None}
        if which in sets:
            return self.templates(_slot(slot) if slot is not None else None, held_out=sets[which])
        t = self.get(which)
        if slot is not None and t.slot != _slot(slot):
            raise DataError(f"template {which!r} is of slot {''.join(t.slot)}, not {slot!r}")
        return [t]


def _slot(slot: Slot | str) -> Slot:
    """("P1", "I1", "T3") from a tuple or from "P1I1T3" (`DataError` when malformed)."""
    if isinstance(slot, str):
        m = re.fullmatch(r"\s*(P\d)\s*,?\s*(I\d)\s*,?\s*(T\d|R)\s*", slot.upper())
        if not m:
            raise DataError(f"slot {slot!r} is not of the form P1I1T3")
        return (m.group(1), m.group(2), m.group(3))
    return tuple(slot)


_DEFAULT: TemplateCatalogue | None = None
