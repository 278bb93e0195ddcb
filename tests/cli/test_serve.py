"""`instructrec serve` refuses an admin key it cannot use safely, before loading anything."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from instructrec.cli import main


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--admin-key", "a"], "--admin-key needs --model-root"),
        (["--admin-key", "same", "--api-key", "same", "--model-root", "."], "differ"),
        (["--admin-key", "", "--model-root", "."], "non-empty"),
        (["--model-root", "/definitely/not/here"], "does not exist"),
        (["--db-timeout", "0"], "--db-timeout"),
    ],
)
def test_serve_refuses_unsafe_admin_settings(tmp_path, extra, message):
    r = CliRunner().invoke(main, ["serve", "--model", str(tmp_path / "none"), *extra])
    assert r.exit_code == 2, r.output
    assert message in r.output
