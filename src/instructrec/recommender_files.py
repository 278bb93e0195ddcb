"""The saved `Recommender` folder: what `Recommender.save` writes and `Recommender.load` reads.

Everything is data, read without running code (a folder holding pickles is refused):
recommender.json (format, rerank depth, retriever/prior folders, reranker registry name, fit
timings), config.yaml (when built from a config), dataset/ (Parquet tables + dataset.json),
sequences.safetensors (serving histories: users, items, offsets), retriever/ and prior-<i>/
(`Retriever.save`), reranker/ (its own ``save``). The reranker's class is recorded by its
name in `RERANKERS`, never as a module path.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .data.errors import DataError
from .data.runfiles import (
    FORMAT,
    inside,
    json_ready,
    load_arrays,
    pack_ragged,
    read_dataset,
    read_json,
    refuse_pickles,
    save_arrays,
    unpack_ragged,
    write_dataset,
    write_json,
)
from .retrieval.base import Retriever

if TYPE_CHECKING:
    from .recommender import Recommender

RERANKERS = {  # registry name -> "module:Class" (the name is what a saved run records)
    "instruction": "instructrec.rerank.reranker:InstructionReranker",
}
SEQUENCES_FILE = "sequences.safetensors"
RUNTIMES = ("torch", "numpy", "auto")  # `load_recommender`'s runtime: what scores the models


def reranker_name(reranker: Any) -> str:
    """The registry name of ``reranker``'s class (a `TypeError` when it is not registered)."""
    for name in RERANKERS:
        if reranker_class(name) is type(reranker):
            return name
    raise TypeError(
        f"{type(reranker).__name__} is not in instructrec.recommender_files.RERANKERS, "
        "so it cannot be saved as data"
    )


def reranker_class(name: str) -> type:
    """The reranker class registered under ``name`` (a `DataError` for unknown names)."""
    import importlib

    if not isinstance(name, str) or name not in RERANKERS:
        raise DataError(f"unknown reranker {name!r}; known: {sorted(RERANKERS)}")
    module, attr = RERANKERS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def save_recommender(rec: Recommender, directory: str | Path) -> Path:
    """Save ``rec`` into ``directory`` (`Recommender.save`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_dataset(rec.dataset, directory / "dataset")
    users = np.array(sorted(rec.sequences), np.int64)
    items, offsets = pack_ragged([rec.sequences[int(u)] for u in users])
    save_arrays(directory / SEQUENCES_FILE, {"users": users, "items": items, "offsets": offsets})
    rec.retriever.save(directory / "retriever")
    prior_dirs = []
    for i, r in enumerate(rec.priors):
        if r is rec.retriever:
            prior_dirs.append("retriever")
        else:
            r.save(directory / f"prior-{i}")
            prior_dirs.append(f"prior-{i}")
    meta = {
        "format": FORMAT,
        "rerank_depth": rec.rerank_depth,
        "retriever": "retriever",
        "priors": prior_dirs,
        "reranker": None,
        "fit_info": json_ready(rec.fit_info),
    }
    if rec.config is not None:
        rec.config.to_yaml(directory / "config.yaml")
    if rec.reranker is not None:
        meta["reranker"] = reranker_name(rec.reranker)
        rec.reranker.save(directory / "reranker")
    write_json(directory / "recommender.json", meta)
    return directory


def load_recommender(
    cls: type[Recommender],
    directory: str | Path,
    inference_only: bool,
    rerank_depth: int,
    runtime: str = "torch",
) -> Recommender:
    """A ``cls`` saved by `save_recommender` (`Recommender.load`); ``rerank_depth``: the
    depth of a folder whose recommender.json records none; ``runtime``: see `resolve_runtime`."""
    if runtime not in RUNTIMES:
        raise DataError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    directory = Path(directory)
    if not (directory / "recommender.json").exists():
        refuse_pickles(directory)
        raise DataError("not a saved Recommender (no recommender.json)", source=str(directory))
    refuse_pickles(directory)
    try:
        return _read(cls, directory, inference_only, rerank_depth, runtime)
    except FileNotFoundError as e:
        raise DataError("missing run file", source=str(e.filename or directory)) from e
    except DataError:
        raise
    except (ValueError, KeyError, TypeError, RuntimeError, RecursionError) as e:
        # a hand-edited or truncated file: a clear error, never a server 500
        raise DataError(f"broken run ({type(e).__name__}: {e})", source=str(directory)) from e


def resolve_runtime(directory: Path, meta: dict, runtime: str) -> str:
    """The runtime a load uses: ``runtime`` itself, or for "auto" NumPy when the saved
    reranker, if any, is one the NumPy runtime scores (`models.np_encoder.unsupported`), else
    torch. "numpy" for a run it cannot score is a `DataError` naming why."""
    if runtime == "torch":
        return "torch"
    if not meta.get("reranker"):  # retrievers alone: every one scores in NumPy
        return "numpy"
    from .models.encoder_config import EncoderConfig
    from .models.np_encoder import unsupported

    path = directory / "reranker" / "encoder" / "encoder.json"
    try:
        why = unsupported(EncoderConfig(**read_json(path)["config"]))
    except (KeyError, TypeError) as e:
        why = f"unreadable {path.name} ({e})"
    if why is None:
        return "numpy"
    if runtime == "numpy":
        raise DataError(f"the NumPy runtime cannot score this run: {why}", source=str(path))
    return "torch"


def _read(
    cls: type[Recommender], directory: Path, inference_only: bool, rerank_depth: int, runtime: str
) -> Recommender:
    meta = read_json(directory / "recommender.json")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(
            f"recommender.json: unknown run format {meta.get('format') if isinstance(meta, dict) else meta!r}"
            f" (this instructrec reads format {FORMAT})",
            source=str(directory),
        )
    runtime = resolve_runtime(directory, meta, runtime)
    dataset = read_dataset(directory / "dataset")
    retriever = Retriever.load(inside(directory, meta.get("retriever", "retriever")), runtime)
    reranker = None
    if meta.get("reranker"):
        extra = {"inference_only": True} if inference_only else {}
        if runtime == "numpy":
            extra["runtime"] = "numpy"
        reranker = reranker_class(meta["reranker"]).load(directory / "reranker", **extra)
    priors = [
        retriever
        if d == meta.get("retriever", "retriever")
        else Retriever.load(inside(directory, d), runtime)
        for d in meta.get("priors", ["retriever"])
    ]
    config = None
    if (directory / "config.yaml").exists():
        from .config import RunConfig

        config = RunConfig.from_yaml(directory / "config.yaml")
    rec = cls(
        dataset,
        retriever,
        reranker,
        int(meta.get("rerank_depth", rerank_depth)),
        priors=priors,
        config=config,
    )
    rec.fit_info = dict(meta.get("fit_info") or {})
    rec.runtime = runtime
    seq = load_arrays(directory / SEQUENCES_FILE)
    try:
        rows = unpack_ragged(seq["items"], seq["offsets"])
        rec.sequences = {int(u): r for u, r in zip(seq["users"], rows, strict=True)}
    except (KeyError, ValueError) as e:
        raise DataError(
            f"not a sequences file ({e})", source=str(directory / SEQUENCES_FILE)
        ) from e
    return rec
