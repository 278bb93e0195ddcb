"""A hub id that cannot be had fails at once (no retries) with a one-line `DataError`."""

from __future__ import annotations

import pytest

from instructrec.data.errors import DataError
from instructrec.models import loading


def test_offline_hub_id_fails_before_any_download(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(loading, "_hub_reachable", lambda timeout=2.0: pytest.fail("probed"))
    with pytest.raises(DataError, match="HF_HUB_OFFLINE is on"):
        loading.check_hub_id("nobody/nothing-here")


def test_no_network_hub_id_fails_without_the_hub_clients_retries(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(loading, "_hub_reachable", lambda timeout=2.0: False)
    with pytest.raises(DataError, match="no network") as err:
        loading.load_config("nobody/nothing-here")
    assert "\n" not in str(err.value)


def test_local_directories_are_not_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loading.check_hub_id(str(tmp_path))  # exists: transformers reads it
