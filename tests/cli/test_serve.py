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


def test_serve_says_when_the_store_is_unreachable(tmp_path):
    from instructrec.data import make_split
    from instructrec.recommender import Recommender
    from instructrec.retrieval.itemknn import ItemKNN
    from instructrec.testing.datasets import synthetic_dataset

    ds = synthetic_dataset(n_users=10, n_items=30, per_user=4)
    run = Recommender(ds, ItemKNN()).fit(make_split(ds, seed=0)).save(tmp_path / "run")
    db = "postgresql+psycopg://nobody:x@127.0.0.1:1/none"  # nothing listens on port 1
    r = CliRunner().invoke(main, ["serve", "--model", str(run), "--db", db, "--db-timeout", "1"])
    assert r.exit_code == 1 and "cannot reach the feedback store" in r.output, r.output
    assert "x@" not in r.output  # the password is not printed
