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


def test_bad_recommender_json_is_a_422_naming_it_without_server_paths(
    client, small_run_dir, model_root
):
    run = model_root / "run"
    shutil.copytree(small_run_dir, run)
    for text in ("{", '{"format": 999}', "[]", '"x"'):
        (run / "recommender.json").write_text(text)
        r = _swap(client, run)
        assert r.status_code == 422 and "recommender.json" in r.text, (text, r.text)
        assert str(model_root) not in r.text  # names the file relative to the model root
    assert client.get("/v1/model").json()["version"] == "v1"


def test_an_old_pickled_run_folder_is_refused(client, model_root, tmp_path):
    run = model_root / "old"
    run.mkdir()
    marker = tmp_path / "pwned"
    (run / "dataset.pkl").write_bytes(pickle.dumps(Planted(marker)))
    r = _swap(client, run)
    assert r.status_code == 422 and "instructrec runs convert" in r.text, r.text
    assert not marker.exists()


def test_a_symlink_out_of_the_root_is_403(client, small_run_dir, model_root):
    (model_root / "escape").symlink_to(small_run_dir, target_is_directory=True)
    r = _swap(client, model_root / "escape")
    assert r.status_code == 403 and "model root" in r.json()["detail"], r.text
    assert client.get("/v1/model").json()["version"] == "v1"


def test_a_version_name_cannot_be_reused_for_another_run(client, small_run_dir, model_root):
    shutil.copytree(small_run_dir, model_root / "v3")
    headers = {"X-Admin-Key": "test-admin-key"}
    ok = client.post("/v1/admin/model", json={"run_dir": "v2", "version": "x"}, headers=headers)
    assert ok.status_code == 200, ok.text
    again = client.post("/v1/admin/model", json={"run_dir": "v2", "version": "x"}, headers=headers)
    assert again.status_code == 200  # the same run under the same name: idempotent
    clash = client.post("/v1/admin/model", json={"run_dir": "v3", "version": "x"}, headers=headers)
    assert clash.status_code == 409, clash.text
    assert client.get("/v1/model").json()["version"] == "x"
