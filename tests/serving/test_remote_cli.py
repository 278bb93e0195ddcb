"""`instructrec recommend --server URL`: the command line asks a running service instead of
loading the model; same answer as a local load, the service's errors as one line (exit 2),
and the path imports neither torch nor pandas."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from instructrec.cli import main


@pytest.fixture()
def base(small_run_dir, server, tmp_path):
    _, url = server(small_run_dir, f"sqlite:///{tmp_path / 'remote.db'}")
    return url


def _items(output: str) -> list[str]:
    return [line for line in output.splitlines() if line[:4].strip().rstrip(".").isdigit()]


def test_remote_answer_is_the_local_answer(small_run_dir, base, api_key):
    args = ["recommend", "--user", "u3", "-n", "4"]
    local = CliRunner().invoke(main, [*args, "--model", str(small_run_dir)])
    remote = CliRunner().invoke(main, [*args, "--server", base, "--api-key", api_key])
    assert local.exit_code == 0 and remote.exit_code == 0, remote.output
    assert len(_items(remote.output)) == 4
    titles = [line.split("  ")[0] for line in _items(remote.output)]
    assert titles == [line.split("  ")[0] for line in _items(local.output)]
    rid = remote.output.splitlines()[-1]
    assert rid.startswith("request: ") and len(rid) > len("request: ")
    as_json = CliRunner().invoke(
        main, [*args, "--server", base, "--json"], env={"INSTRUCTREC_API_KEY": api_key}
    )
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert len(data["items"]) == 4 and data["request_id"] and data["model_version"] == "v1"


def test_service_errors_are_one_line(base, api_key):
    wrong_key = CliRunner().invoke(main, ["recommend", "--server", base, "--user", "u3"])
    assert wrong_key.exit_code == 2 and "401" in wrong_key.output
    assert len(wrong_key.output.strip().splitlines()) == 1
    unknown = CliRunner().invoke(
        main, ["recommend", "--server", base, "--api-key", api_key, "--user", "nobody"]
    )
    assert unknown.exit_code == 2 and "404" in unknown.output and "nobody" in unknown.output
    assert "Traceback" not in unknown.output
    zero = CliRunner().invoke(
        main, ["recommend", "--server", base, "--api-key", api_key, "--user", "u3", "-n", "0"]
    )  # the service's validation error names the field
    assert zero.exit_code == 2 and "422" in zero.output and "body.n:" in zero.output
    assert len(zero.output.strip().splitlines()) == 1


def test_nothing_listening_and_no_source_are_named():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    out = CliRunner().invoke(main, ["recommend", "--server", f"http://127.0.0.1:{port}"])
    assert out.exit_code == 2 and "cannot reach the service" in out.output
    neither = CliRunner().invoke(main, ["recommend", "--user", "u3"])
    assert (
        neither.exit_code == 2 and "--model DIR" in neither.output and "--server" in neither.output
    )
    bad = CliRunner().invoke(main, ["recommend", "--server", "localhost:8000"])
    assert bad.exit_code == 2 and "http://" in bad.output


def test_remote_path_imports_neither_torch_nor_pandas(base, api_key):
    code = (
        "import sys, json\nfrom instructrec.cli import main\n"
        f"try:\n    main(['recommend', '--server', {base!r}, '--api-key', {api_key!r}, "
        "'--user', 'u3', '-n', '2'])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print(json.dumps([m for m in ('torch', 'pandas', 'numpy') if m in sys.modules]))"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
