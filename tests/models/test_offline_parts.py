"""A backbone whose zip is split over several pinned packages (all-mpnet-base-v2): joined and
unpacked once into the cache, its weights' hash checked, clear errors when a part is missing."""

import hashlib
import io
import zipfile

import pytest

from instructrec.data.errors import DataError
from instructrec.models import offline
from instructrec.models.offline import (
    OFFLINE_BACKBONES,
    OfflineBackbone,
    check_available,
    offline_path,
)

WEIGHTS = b"not really safetensors" * 50


def _parts(tmp_path, weights=WEIGHTS, n=3):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("m/", "")
        z.writestr("m/config.json", '{"model_type": "mpnet"}')
        z.writestr("m/model.safetensors", weights)
        z.writestr("m/desktop.ini", "x")
        z.writestr("m/1_Pooling/config.json", "{}")
    data = buf.getvalue()
    step = len(data) // n + 1
    paths = []
    for i in range(n):
        p = tmp_path / f"zip.{i:03d}"
        p.write_bytes(data[i * step : (i + 1) * step])
        paths.append(p)
    return paths


@pytest.fixture()
def fake(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTRUCTREC_CACHE", str(tmp_path / "cache"))
    entry = OfflineBackbone(
        package="fake-part-001",
        module="",
        version="0.0.1",
        kind="encoder",
        file="model.safetensors",
        sha256=hashlib.sha256(WEIGHTS).hexdigest(),
        subdir="m",
        parts=("fake-part-001", "fake-part-002", "fake-part-003"),
    )
    monkeypatch.setitem(OFFLINE_BACKBONES, "fake-encoder", entry)
    return entry


def test_parts_are_joined_once_and_checked(fake, tmp_path, monkeypatch):
    paths = dict(zip(fake.parts, _parts(tmp_path), strict=True))
    calls = []

    def part_file(entry, key, package):
        calls.append(package)
        return paths[package]

    monkeypatch.setattr(offline, "_part_file", part_file)
    directory, gguf = offline_path("fake-encoder")
    assert gguf is None
    assert (directory / "model.safetensors").read_bytes() == WEIGHTS
    assert (directory / "1_Pooling" / "config.json").is_file()
    assert not (directory / "desktop.ini").exists()  # the archive's Windows clutter is skipped
    assert calls == list(fake.parts)
    assert offline_path("fake-encoder")[0] == directory  # the second time from the cache
    assert calls == list(fake.parts)
    check_available("fake-encoder")  # unpacked: the parts are not looked up again
    assert calls == list(fake.parts)
    assert not [p for p in directory.parent.iterdir() if p.name.startswith(".")]  # no tmp left
    (directory / "model.safetensors").write_bytes(WEIGHTS + b"!")  # tampered with
    with pytest.raises(DataError, match="SHA-256 of model.safetensors"):
        offline_path("fake-encoder")


def test_a_missing_part_names_the_install_command(fake):
    check_available(None)  # the shipped default
    with pytest.raises(DataError, match="fake-part-001 missing"):
        check_available("fake-encoder")  # before anything trains (`instructrec train`)
    with pytest.raises(DataError, match="fake-part-001 missing") as e:
        offline_path("fake-encoder")
    msg = str(e.value)
    assert "EXTRA_BACKBONES=fake-encoder" in msg
    assert "fake-part-003==0.0.1" in msg
    assert "\n" not in msg


def test_the_mpnet_entry_is_pinned():
    entry = OFFLINE_BACKBONES["all-mpnet-base-v2"]
    assert entry.version == "0.0.1" and len(entry.parts) == 5 and len(entry.sha256) == 64
    assert entry.install_hint().count("==0.0.1") == 5


def test_train_with_a_backbone_that_cannot_load_stops_before_training(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from instructrec.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "run"
    r = CliRunner().invoke(
        main, ["train", "--set", f"backbone.backbone={tmp_path / 'none'}", "--out", str(out)]
    )
    assert r.exit_code == 2, r.output
    assert "is not a local directory" in r.output and "Traceback" not in r.output
    assert not out.exists() and list(tmp_path.iterdir()) == []
