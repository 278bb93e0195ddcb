"""Typed run configuration: one YAML file says how a `Recommender` is built and trained.

    data:       which dataset (a `instructrec.data.spec.DataSpec`: source, column maps, item
                table, genre separator, domain words; the CLI's --data options) and split seed
    retriever:  the first stage (proposes candidates; the `full` protocol reranks its top 20)
    priors:     retrievers whose scores enter the reranker as collaborative prior features
    backbone:   the encoder reranker's architecture (`instructrec.models.encoder.EncoderConfig`)
    reranker:   how training instances are built (`instructrec.rerank.reranker.RerankerConfig`)
    training:   the optimisation loop (`instructrec.training.config.TrainConfig`, minus output_dir)

Every section is a dataclass with one-line comments; unknown keys and values of the wrong type
or range (`instructrec.data.settings`) are a `DataError` naming the key and the file, raised
when the file is read, before anything is written. The whole config is dumped into every run
directory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from .data.errors import DataError
from .data.settings import check_mapping, check_value, field_types
from .data.spec import DataSpec, load_data_spec, parse_data_spec
from .data.yamlfile import dump_yaml, read_yaml_mapping
from .models.encoder import EncoderConfig
from .rerank.reranker import RerankerConfig
from .training.config import DEVICES, MIXED_PRECISION, TrainConfig


@dataclass
class DataConfig(DataSpec):
    """Which data (every `DataSpec` field: source, columns, items, item_columns, users,
    user_columns, meta, genre_sep, noun, nouns, verbs) and which split."""

    seed: int = 0  # split / negative-sampling seed

    @classmethod
    def from_mapping(cls, d: Any, source: str | None = None) -> DataConfig:
        """The ``data`` section: the spec keys go through `parse_data_spec` (the CLI's parser)."""
        if isinstance(d, str):
            d = {"source": d}
        if not isinstance(d, dict):
            raise DataError(
                f"expected a mapping for data, got {type(d).__name__}", source=source, column="data"
            )
        rest = dict(d)
        seed = rest.pop("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise DataError(
                f"data.seed must be an integer, got {seed!r}", source=source, column="data.seed"
            )
        spec = parse_data_spec(rest, "data", source)
        return cls(**{f.name: getattr(spec, f.name) for f in fields(DataSpec)}, seed=seed)


@dataclass
class RetrieverSpec:
    """A retriever by name plus its keyword options."""

    name: str = "sasrec"  # pop | itemknn | sasrec | bpr (instructrec.retrieval.registry)
    options: dict = field(default_factory=dict)  # passed to the retriever's constructor


@dataclass
class TrainingSection:
    """The TrainConfig fields a run file may set (output_dir comes from the command line)."""

    lr: float = 1e-3  # peak AdamW learning rate (LoRA + head)
    weight_decay: float = 0.0  # AdamW weight decay
    epochs: int = 2  # passes over the training instances
    max_steps: int | None = None  # hard cap on optimizer steps (None: epochs decide)
    batch_size: int = 64  # instances per step
    grad_accum: int = 1  # micro-batches per optimizer step
    warmup_ratio: float = 0.05  # linear warm-up share
    eval_every: int = 100  # validate (HR@1 on valid cand10) every N steps
    patience: int = 3  # evaluations without improvement before stopping
    metric: str = "hr@1"  # early-stopping metric on validation
    seed: int = 0  # seeds everything
    progress: bool = True  # tqdm bar
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    mixed_precision: str = "no"  # "no" | "bf16" | "fp16" (autocast through accelerate)

    # values a key may take; checked when a run file is read (the error names the key)
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "device": DEVICES,
        "mixed_precision": MIXED_PRECISION,
    }


@dataclass
class RunConfig:
    """Everything needed to rebuild a run."""

    data: DataConfig = field(default_factory=DataConfig)
    retriever: RetrieverSpec = field(default_factory=RetrieverSpec)
    priors: list[RetrieverSpec] = field(
        default_factory=lambda: [
            RetrieverSpec("sasrec"),
            RetrieverSpec("itemknn"),
            RetrieverSpec("pop"),
        ]
    )
    backbone: EncoderConfig = field(default_factory=EncoderConfig)
    reranker: RerankerConfig = field(default_factory=RerankerConfig)
    training: TrainingSection = field(default_factory=TrainingSection)
    rerank: bool = True  # False: retriever only (a baseline run)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_yaml(self, path: str | Path | None = None) -> str:
        """YAML text of the config; also written to ``path`` when given."""
        return dump_yaml(self.to_dict(), path)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str | None = None) -> RunConfig:
        return _build(cls, d or {}, source, "")

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        d = read_yaml_mapping(path, "run settings")
        return cls.from_dict(d, source=str(path))


def _build(cls, d: Any, source: str | None, prefix: str):
    """Recursively build dataclass ``cls`` from a mapping, naming unknown/bad keys.

    Every value is type-checked against the field's annotation (`data.settings.check_value`)
    and the training section against `TrainConfig`'s ranges, so a bad value is a `DataError`
    naming the file and the key before anything is built or written."""
    if isinstance(d, str) and cls is RetrieverSpec:
        d = {"name": d}
    if cls is DataConfig:
        return DataConfig.from_mapping(d, source)
    if not isinstance(d, dict):
        raise DataError(
            f"expected a mapping for {prefix.rstrip('.') or 'the config'}, got {type(d).__name__}",
            source=source,
            column=prefix.rstrip(".") or None,
        )
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(str(k) for k in d if k not in known)
    if unknown:
        raise DataError(
            f"unknown setting(s) {[prefix + u for u in unknown]}; expected some of {sorted(known)}",
            source=source,
            column=prefix + unknown[0],
        )
    kwargs = {}
    hints = field_types(cls)
    defaults = cls()
    choices = getattr(cls, "CHOICES", {})
    for name, value in d.items():
        if name in choices and value is False and "no" in choices[name]:
            value = "no"  # YAML 1.1 reads a bare `no` as false
        if name in choices and value not in choices[name]:
            raise DataError(
                f"{prefix}{name} must be one of {list(choices[name])}, got {value!r}",
                source=source,
                column=prefix + name,
            )
        current = getattr(defaults, name)
        if dataclasses.is_dataclass(current):
            kwargs[name] = _build(type(current), value, source, f"{prefix}{name}.")
        elif name == "priors":
            if not isinstance(value, list):
                raise DataError(
                    "priors must be a list of retrievers", source=source, column=prefix + name
                )
            kwargs[name] = [
                _build(RetrieverSpec, v, source, f"{prefix}priors[{i}].")
                for i, v in enumerate(value)
            ]
        else:
            kwargs[name] = check_value(value, hints[name], prefix + name, source)
    if cls is RetrieverSpec:
        _check_retriever(kwargs.get("name", defaults.name), kwargs, source, prefix)
    try:
        built = cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise DataError(
            f"bad value in {prefix.rstrip('.') or 'config'}: {e}", source=source
        ) from None
    if cls is TrainingSection:
        _check_training(built, source, prefix)
    return built


def _check_retriever(name: str, kwargs: dict, source: str | None, prefix: str) -> None:
    """The retriever's name is registered and its options are fields of its config class,
    of the right types (`retrieval.registry`)."""
    from .retrieval.registry import RETRIEVERS, config_class

    if name not in RETRIEVERS:
        raise DataError(
            f"unknown retriever {name!r}; choose from {sorted(RETRIEVERS)}",
            source=source,
            column=prefix + "name",
        )
    if "options" in kwargs:
        kwargs["options"] = check_mapping(
            config_class(name), kwargs["options"], source, prefix + "options.", what="option"
        )


def _check_training(section: TrainingSection, source: str | None, prefix: str) -> None:
    """The training section's values within `TrainConfig`'s ranges (checked when it is read,
    not when training starts)."""
    values = {f.name: getattr(section, f.name) for f in fields(section)}
    try:
        TrainConfig(output_dir=".", **values)
    except DataError as e:
        key = prefix + e.column if e.column else None
        message = str(e).split(": ", 1)[-1] if e.column else str(e)
        raise DataError(message, source=source, column=key) from None


def make_retriever(spec: RetrieverSpec):
    """Construct (unfitted) the retriever named by ``spec`` (`instructrec.retrieval.registry`)."""
    from .retrieval.registry import make_retriever as make

    return make(spec.name, dict(spec.options))


def load_data(spec: Any, **kwargs):
    """A `Dataset` from a data spec (a source string, a ``data`` section or a `DataSpec`; see
    `instructrec.data.spec`): the one loader the config and the CLI share."""
    from_config = isinstance(spec, DataConfig)
    if from_config:
        spec = DataSpec(**{f.name: getattr(spec, f.name) for f in fields(DataSpec)})
    if kwargs:
        spec = {**asdict(parse_data_spec(spec)), **kwargs}
    try:
        return load_data_spec(spec)
    except DataError as e:
        if not from_config or e.column is not None or "no such file" not in str(e):
            raise
        message = str(e).split(": ", 1)[-1] if e.source else str(e)
        raise DataError(message, source=e.source, column="data.source") from None
