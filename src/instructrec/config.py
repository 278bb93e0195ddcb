"""Typed run configuration: one YAML file says how a `Recommender` is built and trained.

    data:       which dataset (a `instructrec.data.spec.DataSpec`: source, column maps, item
                table, genre separator, domain words; the CLI's --data options) and split seed
    retriever:  the first stage (proposes candidates; the `full` protocol reranks its top 20)
    priors:     retrievers whose scores enter the reranker as collaborative prior features
    backbone:   the encoder reranker's architecture (`instructrec.models.encoder.EncoderConfig`)
    reranker:   how training instances are built (`instructrec.rerank.reranker.RerankerConfig`)
    training:   the optimisation loop: a `instructrec.training.config.TrainConfig` (defaults:
                `reranker_training()`; a run trains into RUN/training, whatever output_dir says)

Every section is a dataclass with one-line comments, and its defaults are the shipped values:
``RunConfig()`` is the quickstart model, and ``configs/quickstart.yaml`` (packaged as
``instructrec/configs/quickstart.yaml``) spells the same values out. One loader reads it
(`instructrec.data.settings.load_config`): unknown keys and values of the wrong type or range
are a `DataError` naming the key and the file, raised when the file is read, before anything
is written; ``--set SECTION.KEY=VALUE`` overrides go through the same checks. Nothing writes
into a config after it is loaded; the run folder holds one copy, ``config.yaml``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .data.errors import DataError
from .data.settings import build_config, check_mapping, load_config
from .data.spec import DataSpec, parse_data_spec
from .data.yamlfile import dump_yaml
from .models.encoder_config import EncoderConfig
from .rerank.reranker import RerankerConfig
from .training.config import TrainConfig, reranker_training


@dataclass
class DataConfig(DataSpec):
    """Which data (every `DataSpec` field: source, columns, items, item_columns, users,
    user_columns, meta, genre_sep, noun, nouns, verbs) and which split."""

    seed: int = 0  # split / negative-sampling seed

    @classmethod
    def from_mapping(cls, d: Any, source: str | None = None, prefix: str = "") -> DataConfig:
        """The ``data`` section: the spec keys go through `parse_data_spec` (the CLI's parser)."""
        where = prefix.rstrip(".") or "data"
        if isinstance(d, str):
            d = {"source": d}
        if not isinstance(d, dict):
            raise DataError(
                f"expected a mapping for {where}, got {type(d).__name__}",
                source=source,
                column=where,
            )
        rest = dict(d)
        seed = rest.pop("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise DataError(
                f"{where}.seed must be an integer, got {seed!r}",
                source=source,
                column=f"{where}.seed",
            )
        spec = parse_data_spec(rest, where, source)
        return cls(**{f.name: getattr(spec, f.name) for f in fields(DataSpec)}, seed=seed)


@dataclass
class RetrieverSpec:
    """A retriever by name plus its keyword options."""

    name: str = "sasrec"  # pop | itemknn | sasrec | bpr (instructrec.retrieval.registry)
    options: dict = field(default_factory=dict)  # passed to the retriever's constructor

    @classmethod
    def from_mapping(cls, d: Any, source: str | None = None, prefix: str = "") -> RetrieverSpec:
        """A name (``pop``) or a mapping (name, options); the name is registered and the
        options are fields of its config class, of the right types (`retrieval.registry`)."""
        from .retrieval.registry import RETRIEVERS, config_class

        if isinstance(d, str):
            d = {"name": d}
        kwargs = check_mapping(cls, d, source, prefix, what="setting")
        name = kwargs.get("name", cls.name)
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
        return cls(**kwargs)


# The shipped reranker beyond `RerankerConfig`'s own defaults (which a saved reranker without
# these keys is read with): the cold-item channel with DropoutNet training, cold candidates
# scored as an average warm item (docs/reranker.md, "Cold items").
SHIPPED_RERANKER = {"cold_dropout": 0.1, "cold_fill": "catalogue"}


@dataclass
class RunConfig:
    """Everything needed to rebuild a run. ``RunConfig()`` is the shipped model (the values of
    ``configs/quickstart.yaml``, packaged as ``instructrec/configs/quickstart.yaml``)."""

    data: DataConfig = field(default_factory=DataConfig)
    retriever: RetrieverSpec = field(default_factory=RetrieverSpec)
    priors: list[RetrieverSpec] = field(
        default_factory=lambda: [
            RetrieverSpec("sasrec"),
            RetrieverSpec("itemknn"),
            RetrieverSpec("pop"),
            RetrieverSpec("titleknn"),  # item texts: the one prior a cold item has
            RetrieverSpec("ease", {"l2": 100.0}),  # closed-form item-item (lambda: validation)
        ]
    )
    backbone: EncoderConfig = field(default_factory=EncoderConfig)
    reranker: RerankerConfig = field(default_factory=lambda: RerankerConfig(**SHIPPED_RERANKER))
    training: TrainConfig = field(default_factory=reranker_training)  # a run: RUN/training
    rerank: bool = True  # False: retriever only (a baseline run)

    def __post_init__(self) -> None:
        if "cold_content" in self.backbone.head_options:
            raise DataError(
                "backbone.head_options.cold_content is set by training: use "
                "reranker.cold_content: true",
                column="backbone.head_options.cold_content",
            )
        if self.rerank and self.reranker.text_loss and self.backbone.head != "linear":
            raise DataError(
                f"reranker.text_loss needs the linear head, got {self.backbone.head!r}",
                column="reranker.text_loss",
            )
        if self.rerank and self.reranker.cold_content:  # checked before anything trains
            from .rerank.cold import content_channels

            if self.backbone.head != "linear":
                raise DataError(
                    f"reranker.cold_content needs the linear head, got {self.backbone.head!r}",
                    column="reranker.cold_content",
                )
            if not any(content_channels([p.name for p in self.priors])):
                raise DataError(
                    "reranker.cold_content needs a content-based prior (e.g. titleknn) in priors",
                    column="reranker.cold_content",
                )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_yaml(self, path: str | Path | None = None) -> str:
        """YAML text of the config; also written to ``path`` when given."""
        return dump_yaml(self.to_dict(), path)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str | None = None) -> RunConfig:
        """Build from a mapping (`instructrec.data.settings.build_config`)."""
        return build_config(cls, d or {}, source)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides=()) -> RunConfig:
        """Read a run file, then ``SECTION.KEY=VALUE`` ``overrides`` (the CLI's ``--set``)."""
        return load_config(cls, path, overrides)


QUICKSTART = "quickstart.yaml"  # the shipped run file, inside the package (configs/)


def packaged_config(name: str = QUICKSTART) -> Path:
    """Path of a run file shipped inside the package (``instructrec/configs/NAME``)."""
    return Path(__file__).parent / "configs" / name


def make_retriever(spec: RetrieverSpec):
    """Construct (unfitted) the retriever named by ``spec`` (`instructrec.retrieval.registry`)."""
    from .retrieval.registry import make_retriever as make

    return make(spec.name, dict(spec.options))
