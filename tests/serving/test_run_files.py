"""The admin hot swap loads runs as data: a planted pickle is refused (422) without being
executed, a broken run file is a 422 naming it, and the served model stays as it was."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path


class Planted:
    """Unpickling this creates ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _swap(client, run_dir):
    return client.post(
        "/v1/admin/model",
        json={"run_dir": run_dir.name, "version": "bad"},
        headers={"X-Admin-Key": "test-admin-key"},  # conftest.ADMIN_KEY
    )


def test_a_planted_pickle_is_refused_and_never_run(client, small_run_dir, model_root, tmp_path):
    run = model_root / "run"
    shutil.copytree(small_run_dir, run)
    marker = tmp_path / "pwned"
    (run / "retriever" / "model.pkl").write_bytes(pickle.dumps(Planted(marker)))
    r = _swap(client, run)
    assert r.status_code == 422 and "instructrec runs convert" in r.text, r.text
    assert not marker.exists()
    assert client.get("/v1/model").json()["version"] == "v1"


def test_a_broken_run_file_is_a_422_naming_it(client, small_run_dir, model_root, tmp_path):
    run = model_root / "run"
    shutil.copytree(small_run_dir, run)
    (run / "retriever" / "retriever.json").write_text("{")
    r = _swap(client, run)
    assert r.status_code == 422 and "retriever.json" in r.text, r.text
    shutil.rmtree(run)
    shutil.copytree(small_run_dir, run)
    (run / "sequences.safetensors").unlink()
    r = _swap(client, run)
    assert r.status_code == 422 and "sequences.safetensors" in r.text, r.text
    assert client.get("/v1/model").json()["version"] == "v1"
