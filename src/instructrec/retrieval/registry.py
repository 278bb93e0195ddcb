"""Retrievers by name: build one from a name plus options (a dict or a YAML file), fit it.

r = make_retriever("sasrec", {"hidden": 64, "max_epochs": 30})
r = fit_retriever("itemknn", split, n_users, n_items)
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data.errors import DataError

if TYPE_CHECKING:  # annotations only: `Retriever.save`/`load` look names up here
    from .base import Retriever

RETRIEVERS = {  # name -> "module:Class"; each Class takes its config dataclass or keywords
    "pop": "instructrec.retrieval.pop:Pop",
    "itemknn": "instructrec.retrieval.itemknn:ItemKNN",
    "sasrec": "instructrec.retrieval.sasrec:SASRec",
    "bpr": "instructrec.retrieval.bpr:BPR",
    "ease": "instructrec.retrieval.ease:EASE",
    "titleknn": "instructrec.retrieval.titleknn:TitleKNN",
}
CONFIGS = {
    "pop": "PopConfig",
    "itemknn": "ItemKNNConfig",
    "sasrec": "SASRecConfig",
    "bpr": "BPRConfig",
    "ease": "EASEConfig",
    "titleknn": "TitleKNNConfig",
}


def retriever_class(name: str) -> type[Retriever]:
    """The class registered under ``name`` (a `DataError` listing the names otherwise)."""
    if name not in RETRIEVERS:
        raise DataError(f"unknown retriever {name!r}; choose from {sorted(RETRIEVERS)}")
    module, attr = RETRIEVERS[name].split(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise DataError(f"retriever {name!r} is not available here ({e})") from e


def registry_name(retriever: Retriever) -> str:
    """The name ``retriever``'s class is registered under (what a saved run records)."""
    name = getattr(type(retriever), "name", None)
    if name in RETRIEVERS and retriever_class(name) is type(retriever):
        return name
    raise TypeError(
        f"{type(retriever).__name__} is not in the retriever registry "
        "(instructrec.retrieval.registry.RETRIEVERS), so it cannot be saved as data"
    )


def config_class(name: str):
    module = RETRIEVERS[name].split(":")[0]
    return getattr(importlib.import_module(module), CONFIGS[name])


def load_options(options: dict | str | Path | None) -> dict:
    """Options as a dict: ``None``, a dict, or the path of a YAML file holding a mapping."""
    if options is None:
        return {}
    if isinstance(options, dict):
        return dict(options)

    from ..data.yamlfile import read_yaml_mapping

    return read_yaml_mapping(options, "retriever options (option: value)")


def make_retriever(
    name: str, options: dict | str | Path | None = None, **overrides: Any
) -> Retriever:
    """An unfitted retriever ``name`` with ``options`` (dict or YAML path) and ``overrides``.

    Unknown option names and values of the wrong type are a `DataError` naming the option.
    """
    from ..data.settings import check_mapping

    cls = retriever_class(name)
    opts = {**load_options(options), **overrides}
    source = str(options) if isinstance(options, str | Path) else None
    opts = check_mapping(config_class(name), opts, source, f"{name}.", what="option")
    return cls(config_class(name)(**opts))


def fit_retriever(
    name: str,
    split,
    n_users: int,
    n_items: int,
    options: dict | str | Path | None = None,
    *,
    item_texts: list[str] | None = None,
    text_encoder=None,
    **overrides: Any,
) -> Retriever:
    """Make and fit ``name`` on ``split.train`` (``split.valid`` drives early stopping).
    ``item_texts``: one text per item, and ``text_encoder`` (texts, backbone, max_len) -> vectors
    (`instructrec.models.text_encoder.item_text_vectors`), for a retriever that reads them
    (``titleknn``)."""
    r = make_retriever(name, options, **overrides)
    if getattr(r, "needs_item_texts", False):
        r.item_texts = item_texts
        r.text_encoder = text_encoder
    return r.fit(split.train, n_users, n_items, valid=split.valid)
