"""`InstructionConfig`: the builder's settings as one typed, YAML-loadable record.

Kept with every run (manifests), so an InstructionSet can be rebuilt exactly:

    cfg = InstructionConfig.from_yaml("instructions.yaml")
    frame = cfg.build(dataset, split)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from instructrec.data.errors import DataError
from instructrec.data.settings import check_mapping
from instructrec.data.yamlfile import read_yaml_mapping

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
        """Build from a mapping; unknown keys and values of the wrong type are a `DataError`
        naming the key and ``source``."""
        raw = check_mapping(cls, raw, source, skip=("teacher",), what="instruction setting")
        if isinstance(raw.get("teacher"), dict):
            raw["teacher"] = TeacherConfig(
                **check_mapping(TeacherConfig, raw["teacher"], source, "teacher.", what="setting")
            )
        elif raw.get("teacher") is not None:
            raise DataError(
                "teacher must be a mapping of teacher settings or null",
                source=source,
                column="teacher",
            )
        return cls(**raw)

    @classmethod
    def from_yaml(cls, path: str | Path) -> InstructionConfig:
        return cls.from_dict(read_yaml_mapping(path, "instruction settings"), str(path))

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
