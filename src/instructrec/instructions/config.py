"""`InstructionConfig`: the builder's settings as one typed, YAML-loadable record.

Kept with every run (manifests), so an InstructionSet can be rebuilt exactly:

    cfg = InstructionConfig.from_yaml("instructions.yaml")
    frame = cfg.build(dataset, split)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from instructrec.data.settings import build_config, load_config

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
        """Build from a mapping (`instructrec.data.settings.build_config`): unknown keys and
        values of the wrong type are a `DataError` naming the key and ``source``."""
        return build_config(cls, raw, source)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides=()) -> InstructionConfig:
        return load_config(cls, path, overrides)

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
