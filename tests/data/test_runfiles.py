"""Run-file helpers: Parquet dataset round trip, arrays without pickles, ragged packing,
clear errors for missing or corrupt files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from instructrec.data.errors import DataError
from instructrec.data.runfiles import (
    PICKLE_MESSAGE,
    csr_arrays,
    csr_from,
    load_arrays,
    pack_ragged,
    read_dataset,
    read_json,
    refuse_pickles,
    save_arrays,
    unpack_ragged,
    write_dataset,
)
from instructrec.testing.datasets import synthetic_dataset


def test_dataset_round_trip_keeps_tables_dtypes_and_tuples(tmp_path):
    ds = synthetic_dataset(n_users=10, n_items=12, per_user=4)
    ds.items.loc[3, "genres"] = np.nan  # an item without genres
    ds.meta["verbs"] = ["watched", "watch"]
    write_dataset(ds, tmp_path / "d")
    back = read_dataset(tmp_path / "d")
    for table in ("interactions", "items", "users"):
        pd.testing.assert_frame_equal(getattr(back, table), getattr(ds, table))
    assert isinstance(back.items["genres"][0], tuple) and back.items["genres"].isna()[3]
    assert back.meta == ds.meta and back.name == ds.name
    assert back.item_index(["i5"])[0] == ds.item_index(["i5"])[0]


def test_arrays_and_ragged_rows(tmp_path):
    rows = [np.array([3, 1], np.int32), np.empty(0, np.int32), np.array([7], np.int32)]
    values, offsets = pack_ragged(rows)
    assert offsets.tolist() == [0, 2, 2, 3]
    m = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]  # not contiguous
    save_arrays(tmp_path / "a.safetensors", {"v": values, "o": offsets, "m": m})
    got = load_arrays(tmp_path / "a.safetensors")
    np.testing.assert_array_equal(got["m"], m)
    for a, b in zip(unpack_ragged(got["v"], got["o"]), rows, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="Python objects"):
        save_arrays(tmp_path / "b.safetensors", {"x": np.array(["a", 1], dtype=object)})


def test_sparse_matrix_as_arrays():
    import scipy.sparse as sp

    m = sp.random(5, 7, density=0.3, format="csr", random_state=0, dtype=np.float32)
    back = csr_from(csr_arrays("m", m), "m")
    assert back.shape == m.shape and (back != m).nnz == 0
    assert csr_from({}, "m") is None


def test_missing_corrupt_and_pickled_files_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="x.json: missing run file"):
        read_json(tmp_path / "x.json")
    (tmp_path / "x.json").write_text("[1,")
    with pytest.raises(DataError, match="not valid JSON"):
        read_json(tmp_path / "x.json")
    (tmp_path / "a.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(DataError, match="a.safetensors: not a readable safetensors"):
        load_arrays(tmp_path / "a.safetensors")
    refuse_pickles(tmp_path)  # no *.pkl: fine
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.pkl").write_bytes(b"")
    with pytest.raises(DataError, match="older instructrec") as e:
        refuse_pickles(tmp_path)
    assert PICKLE_MESSAGE in str(e.value)
