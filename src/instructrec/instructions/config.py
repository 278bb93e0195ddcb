"""`InstructionConfig`: the builder's settings as one typed, YAML-loadable record.

Kept with every run (manifests), so an InstructionSet can be rebuilt exactly:

    cfg = InstructionConfig.from_yaml("instructions.yaml")
    frame = cfg.build(dataset, split)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from instructrec.data.errors import DataError

from .teacher import TeacherConfig


@dataclass
class InstructionConfig:
    """Arguments of `instructrec.instructions.build`, with their defaults."""

    stage: str = "train"  # train | valid | test
    slots: list[list[str]] | None = None  # [[P, I, T], ...]; None: every slot of the templates
    candidates: str | None = "cand10"  # cand10 | cand20 | None (9 sampled negatives)
    templates: str | list[str] = "seen"  # seen | held_out | all | template ids
    seed: int = 0  # template choice, shuffles, negatives, derivation
    per_user: int = 1  # training targets per user (train stage)
    context: bool = False  # prefix "It is a winter evening."
    teacher: TeacherConfig | None = None  # rewrite P2/I1 with a teacher LLM
    extra: dict = field(default_factory=dict)  # free notes kept in manifests

    @classmethod
    def from_dict(cls, raw: dict, source: str = "<dict>") -> InstructionConfig:
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise DataError(
                f"unknown instruction setting(s) {sorted(unknown)}; known: "
                f"{sorted(cls.__dataclass_fields__)}",
                source=source,
            )
        raw = dict(raw)
        if isinstance(raw.get("teacher"), dict):
            raw["teacher"] = TeacherConfig(**raw["teacher"])
        return cls(**raw)

    @classmethod
    def from_yaml(cls, path: str | Path) -> InstructionConfig:
        p = Path(path)
        if not p.exists():
            raise DataError("config file not found", source=str(p))
        raw = yaml.safe_load(p.read_text()) or {}
        if not isinstance(raw, dict):
            raise DataError("expected a mapping of settings", source=str(p))
        return cls.from_dict(raw, str(p))

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["teacher"] and d["teacher"].get("api_key"):
            d["teacher"]["api_key"] = "***"
        return d

    def build(self, dataset, split):
        """`build` with these settings."""
        from .builder import build
        from .teacher import TeacherLLM

        return build(
            dataset,
            split,
            stage=self.stage,
            slots=[tuple(s) for s in self.slots] if self.slots else None,
            candidates=self.candidates,
            templates=self.templates,
            seed=self.seed,
            per_user=self.per_user,
            context=self.context,
            teacher=TeacherLLM(self.teacher) if self.teacher else None,
        )
