"""A split folder: what `save_split` writes and `load_split` reads back, hash-checked.

train/valid/test Parquet files, one ``NAME.STAGE.npy`` per candidate file (a
``NAME.note.json`` beside those made by a ranking or a builder), ``cold_items.npy``, and
``split.json``: the seed, the item count, the candidate sets and their stages, the dataset's
name and fingerprint, and a SHA-256 of every file. `load_split` refuses a folder whose files
changed after they were written, so every model sees the same candidates;
`add_candidate_files` adds the candidate files a later evaluation built (see `data.split`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .dataset import Dataset
from .errors import DataError
from .split import STAGES, Split, array_sha256


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_split(split: Split, directory: str | Path, dataset: Dataset | None = None) -> Path:
    """Write train/valid/test Parquet files, one ``.npy`` per candidate set and stage (a
    ``NAME.note.json`` beside those made by a ranking or a builder), ``cold_items.npy``, and
    ``split.json`` with the seed and a SHA-256 of every file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for stage in ("train", "valid", "test"):
        p = directory / f"{stage}.parquet"
        split.frame(stage).to_parquet(p, index=False)
        files[p.name] = _sha256(p)
    for name, by_stage in split.candidates.items():
        for stage, arr in by_stage.items():
            p = directory / f"{name}.{stage}.npy"
            np.save(p, arr)
            files[p.name] = _sha256(p)
    for name, note in split.notes.items():
        p = directory / f"{name}.note.json"
        p.write_text(json.dumps(note, indent=2, sort_keys=True))
        files[p.name] = _sha256(p)
    p = directory / "cold_items.npy"
    np.save(p, np.asarray(split.cold_items, np.int32))
    files[p.name] = _sha256(p)
    manifest = {
        "seed": split.seed,
        "n_items": split.n_items,
        "files": files,
        "candidate_sets": {
            k: int(next(iter(v.values())).shape[1]) for k, v in split.candidates.items() if v
        },
        "candidate_stages": {k: sorted(v) for k, v in split.candidates.items() if v},
        "cold_items": len(split.cold_items),
        "dataset": None
        if dataset is None
        else {"name": dataset.name, "fingerprint": dataset.fingerprint()},
    }
    (directory / "split.json").write_text(json.dumps(manifest, indent=2))
    split.hashes = files
    return directory


def add_candidate_files(split: Split, directory: str | Path) -> list[str]:
    """Write the candidate files ``split`` holds that the split folder ``directory`` (made by
    `save_split`) does not list yet (e.g. `hard` negatives an evaluation built), with their
    notes, and list them in its ``split.json`` (replaced atomically); the files already there
    are left as they are. Returns the names written. Later runs that load the folder use the
    same candidates."""
    directory = Path(directory)
    mpath = directory / "split.json"
    manifest = json.loads(mpath.read_text())
    files = manifest["files"]
    stages_of = manifest.setdefault("candidate_stages", {})
    written, names = [], set()
    for name, by_stage in split.candidates.items():
        for stage, arr in by_stage.items():
            fname = f"{name}.{stage}.npy"
            if fname in files:
                continue
            tmp = directory / f".{fname}.tmp"
            with open(tmp, "wb") as f:
                np.save(f, arr)
            tmp.replace(directory / fname)
            files[fname] = array_sha256(arr)  # the saved file's hash, without reading it back
            written.append(fname)
            names.add(name)
            stages_of[name] = sorted({*stages_of.get(name, []), stage})
            manifest.setdefault("candidate_sets", {})[name] = int(arr.shape[1])
    for name in names & set(split.notes):
        p = directory / f"{name}.note.json"
        p.write_text(json.dumps(split.notes[name], indent=2, sort_keys=True))
        files[p.name] = _sha256(p)
    if written:
        tmp = directory / ".split.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=2))
        tmp.replace(mpath)
        split.hashes.update({k: files[k] for k in written})
    return written


def load_split(directory: str | Path, dataset: Dataset | None = None) -> Split:
    """Read a split written by `save_split`, verifying every file's hash (and the dataset's
    fingerprint when ``dataset`` is given)."""
    directory = Path(directory)
    mpath = directory / "split.json"
    if not mpath.exists():
        raise DataError(
            "no split.json here: not a split directory (make one with `instructrec data split`)",
            source=str(directory),
        )
    manifest = json.loads(mpath.read_text())
    for name, digest in manifest["files"].items():
        p = directory / name
        if not p.exists():
            raise DataError("file listed in split.json is missing", source=str(p))
        if _sha256(p) != digest:
            raise DataError(
                "content hash does not match split.json: the split or candidate "
                "file was modified after it was written",
                source=str(p),
            )
    recorded = manifest.get("dataset")
    if dataset is not None and recorded and recorded["fingerprint"] != dataset.fingerprint():
        raise DataError(
            f"split was made from a different dataset ({recorded['name']}, "
            f"fingerprint {recorded['fingerprint']}) than {dataset.name} "
            f"({dataset.fingerprint()})",
            source=str(mpath),
        )
    frames = {s: pd.read_parquet(directory / f"{s}.parquet") for s in ("train", "valid", "test")}
    split = Split(
        **frames, n_items=manifest["n_items"], seed=manifest["seed"], hashes=manifest["files"]
    )
    stages = manifest.get("candidate_stages", {})
    for name in manifest.get("candidate_sets", {}):
        split.candidates[name] = {
            stage: np.load(directory / f"{name}.{stage}.npy") for stage in stages.get(name, STAGES)
        }
        if f"{name}.note.json" in manifest["files"]:
            split.notes[name] = json.loads((directory / f"{name}.note.json").read_text())
    if "cold_items.npy" in manifest["files"]:  # older splits: no cold items
        split.cold_items = np.load(directory / "cold_items.npy").astype(np.int32)
    return split
