"""Convert a run saved by an older instructrec (pickles) into today's data-only layout.

    instructrec runs convert OLD_MODEL_DIR NEW_MODEL_DIR      # CLI
    convert_run("runs/qs/model", "runs/qs/model-v2")          # Python

Until format 2, a saved `Recommender` held pickles (``dataset.pkl``, ``sequences.pkl``,
``retriever.pkl``, ``prior-<i>.pkl``, ``reranker/text.pkl``) and a pickled torch file
(``reranker/encoder/weights.pt``). Unpickling runs whatever code the file names, so
`Recommender.load` refuses such folders. This module is the one place that unpickles, and only
when a person asks for it on a folder they trust: it loads the old files and writes the new
ones (JSON, safetensors, Parquet) into a fresh folder. The source folder is not changed.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .data.errors import DataError
from .data.runfiles import FORMAT, read_json, write_json

# (module, name) recorded in an old pickle -> where the class lives now (for moved classes)
RENAMED: dict[tuple[str, str], str] = {
    # the reranker's modules moved from training/ to rerank/ (issue 13); an old run pickled
    # only its TextSide (reranker/text.pkl) from them
    ("instructrec.training.instances", "TextSide"): "instructrec.rerank.instances:TextSide",
}
# files an old run may hold besides its pickles that are copied as they are (plain data)
DATA_SUFFIXES = {".json", ".yaml", ".yml", ".npy", ".npz", ".txt", ".md", ".parquet"}


class _TrustedUnpickler(pickle.Unpickler):
    """A plain unpickler that also finds classes that moved since the file was written."""

    def find_class(self, module: str, name: str) -> Any:
        target = RENAMED.get((module, name))
        if target is not None:
            import importlib

            module, name = target.split(":")
            return getattr(importlib.import_module(module), name)
        return super().find_class(module, name)


def _unpickle(path: Path) -> Any:
    if not path.exists():
        raise DataError("missing file of the old layout", source=str(path))
    with open(path, "rb") as fh:
        return _TrustedUnpickler(fh).load()


def upgrade_retriever(obj: Any, source: str = "<pickle>"):
    """An unpickled retriever of the old layout, made whole for `Retriever.save`: configs
    pickled as dicts become their dataclasses, SASRec's ``_weights`` become its network."""
    from .retrieval.base import Retriever
    from .retrieval.registry import config_class, registry_name

    if not isinstance(obj, Retriever):
        raise DataError(f"holds a {type(obj).__name__}, not a retriever", source=source)
    name = registry_name(obj)
    if isinstance(getattr(obj, "config", None), dict):
        obj.config = config_class(name)(**obj.config)
    if name == "sasrec":
        import torch

        from .retrieval.sasrec import _net

        weights = obj.__dict__.pop("_weights", None)
        obj.net = None
        if weights is not None:
            obj.net = _net(obj.n_items, obj.config)
            obj.net.load_state_dict(
                {k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()}
            )
            obj.net.eval()
    return obj


def _convert_reranker(src: Path, dst: Path) -> None:
    """reranker/: text.pkl -> text.json, encoder/weights.pt -> weights.safetensors, the rest
    (JSON, .npy, .npz) copied; reranker.json gains the format number."""
    import torch
    from safetensors.torch import save_file

    from .rerank.instances import TextSide

    shutil.copytree(
        src, dst, ignore=shutil.ignore_patterns("*.pkl", "*.pt", "*.pth", "*.bin", "*.safetensors")
    )
    text = _unpickle(src / "text.pkl")
    if not isinstance(text, TextSide):
        raise DataError(f"holds a {type(text).__name__}, not a TextSide", source=str(src))
    text_data = text.to_dict()
    text_data["words"] = text.fields()  # a TextSide pickled before `words` existed: derive them
    write_json(dst / "text.json", text_data)
    meta = read_json(src / "reranker.json")
    meta["format"] = FORMAT
    write_json(dst / "reranker.json", meta)
    old = src / "encoder" / "weights.pt"
    new = src / "encoder" / "weights.safetensors"
    if old.exists():
        state = torch.load(old, map_location="cpu", weights_only=True)
        save_file(
            {k: v.detach().contiguous().clone() for k, v in state.items()},
            str(dst / "encoder" / "weights.safetensors"),
        )
    elif new.exists():
        shutil.copy2(new, dst / "encoder" / "weights.safetensors")
    else:
        raise DataError("no encoder weights (weights.pt)", source=str(src / "encoder"))


def convert_run(src: str | Path, dst: str | Path) -> Path:
    """Read the old-layout `Recommender` folder ``src`` (TRUSTED: its pickles are executed)
    and write it in today's layout to ``dst`` (a new or empty folder). Returns ``dst``;
    `Recommender.load(dst)` then loads it without running code."""
    from .data.dataset import Dataset
    from .recommender import RERANK_DEPTH, Recommender

    src, dst = Path(src), Path(dst)
    if not (src / "recommender.json").exists():
        hint = " (a training run keeps it in model/)" if (src / "model").is_dir() else ""
        raise DataError(f"not a saved Recommender (no recommender.json){hint}", source=str(src))
    if dst.exists() and any(dst.iterdir()):
        raise DataError("the destination exists and is not empty", source=str(dst))
    meta = read_json(src / "recommender.json")
    if meta.get("format") == FORMAT:
        raise DataError("already in the current format: nothing to convert", source=str(src))
    dataset = _unpickle(src / "dataset.pkl")
    if not isinstance(dataset, Dataset):
        raise DataError(f"holds a {type(dataset).__name__}, not a Dataset", source="dataset.pkl")
    retriever = upgrade_retriever(_unpickle(src / "retriever.pkl"), str(src / "retriever.pkl"))
    priors = [
        retriever if f == "retriever.pkl" else upgrade_retriever(_unpickle(src / f), str(src / f))
        for f in meta.get("priors", ["retriever.pkl"])
    ]
    sequences = _unpickle(src / "sequences.pkl")
    if not isinstance(sequences, dict):
        raise DataError("not a dict of sequences", source=str(src / "sequences.pkl"))
    rec = Recommender(
        dataset, retriever, None, int(meta.get("rerank_depth", RERANK_DEPTH)), priors=priors
    )
    rec.sequences = {int(u): np.asarray(s, np.int32) for u, s in sequences.items()}
    rec.fit_info = dict(meta.get("fit_info") or {})
    dst.mkdir(parents=True, exist_ok=True)
    rec.save(dst)
    for extra in src.iterdir():  # config.yaml and other plain files beside the pickles
        if extra.is_file() and extra.suffix in DATA_SUFFIXES and extra.name != "recommender.json":
            shutil.copy2(extra, dst / extra.name)
    if meta.get("reranker"):
        if not str(meta["reranker"]).endswith(":InstructionReranker"):
            raise DataError(f"unknown reranker {meta['reranker']!r}", source=str(src))
        _convert_reranker(src / "reranker", dst / "reranker")
        new_meta = read_json(dst / "recommender.json")
        new_meta["reranker"] = "instruction"
        write_json(dst / "recommender.json", new_meta)
    return dst
