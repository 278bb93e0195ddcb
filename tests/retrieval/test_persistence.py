"""Retriever persistence beyond the contract: the registry name decides the class, a folder
holding another retriever or unknown options is refused, an unregistered class cannot be
saved, and a retriever made of arrays needs nothing but `array_attrs`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from instructrec.data.errors import DataError
from instructrec.retrieval import ItemKNN, Pop, PopConfig
from instructrec.retrieval.base import Retriever

TRAIN = pd.DataFrame(
    {
        "user": [0, 0, 1, 2, 2],
        "item": [1, 2, 2, 2, 0],
        "rating": 1.0,
        "timestamp": [1.0, 2, 1, 1, 2],
        "order": range(5),
    }
)


def test_the_registry_name_decides_the_class(tmp_path):
    path = Pop().fit(TRAIN, 3, 4).save(tmp_path / "r")
    meta = json.loads((path / "retriever.json").read_text())
    assert meta["name"] == "pop" and meta["config"] == {"seed": 0}
    assert "module" not in json.dumps(meta) and "instructrec." not in json.dumps(meta)
    with pytest.raises(DataError, match="holds a 'pop' retriever, not a ItemKNN"):
        ItemKNN.load(path)
    meta["name"] = "instructrec.retrieval.pop:Pop"
    (path / "retriever.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="unknown retriever"):
        Retriever.load(path)
    meta.update(name="pop", config={"seed": 0, "evil": 1})
    (path / "retriever.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="unknown option"):
        Retriever.load(path)


def test_state_that_does_not_fit_is_a_data_error(tmp_path):
    from instructrec.data.runfiles import save_arrays

    path = ItemKNN().fit(TRAIN, 3, 4).save(tmp_path / "r")
    save_arrays(path / "arrays.safetensors", {"sim.data": np.ones(2, np.float32)})
    with pytest.raises(DataError, match="does not fit"):
        Retriever.load(path)


def test_an_unregistered_retriever_cannot_be_saved(tmp_path):
    class Mine(Pop):
        name = "mine"

    with pytest.raises(TypeError, match="not in the retriever registry"):
        Mine().fit(TRAIN, 3, 4).save(tmp_path / "r")


class Arrays(Pop):
    """A retriever whose state is numpy arrays: it declares them and writes no save/load."""

    name = "arrays-test"
    array_attrs = ("counts", "extra")

    def fit(self, train, n_users, n_items, **kw):
        super().fit(train, n_users, n_items)
        self.extra = np.arange(6, dtype=np.float64).reshape(2, 3)
        return self


ArraysConfig = PopConfig


def test_array_attrs_are_all_a_retriever_of_arrays_declares(tmp_path, monkeypatch):
    """The contract EASE-like models rely on: declare the arrays, inherit save/load."""
    from instructrec.retrieval import registry

    monkeypatch.setitem(registry.RETRIEVERS, "arrays-test", f"{__name__}:Arrays")
    monkeypatch.setitem(registry.CONFIGS, "arrays-test", "ArraysConfig")
    r = Arrays().fit(TRAIN, 3, 4)
    back = Retriever.load(r.save(tmp_path / "r"))
    assert type(back) is Arrays
    np.testing.assert_array_equal(back.extra, r.extra)
    np.testing.assert_array_equal(back.score_all(np.arange(3)), r.score_all(np.arange(3)))
    assert [list(x) for x in back.train_items(np.arange(3))] == [[1, 2], [2], [2, 0]]
