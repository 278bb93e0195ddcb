"""`instructrec.data.settings`: config values checked against dataclass annotations."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from instructrec.data.errors import DataError
from instructrec.data.settings import check_mapping, check_value


@dataclass
class Knobs:
    lr: float = 0.1
    epochs: int = 1
    name: str = "x"
    flag: bool = False
    cap: int | None = None
    layers: list[int] | None = None
    tags: list[str] = field(default_factory=list)
    options: dict = field(default_factory=dict)


@pytest.mark.parametrize(
    "value,hint,expected",
    [
        (3, int, 3),
        (np.int64(3), int, 3),
        (3, float, 3.0),
        ("1e-3", float, 0.001),  # YAML 1.1 reads 1e-3 as a string
        (np.float32(0.5), float, 0.5),
        (None, int | None, None),
        ([1, 2], list[int] | None, [1, 2]),
        ({"a": 1}, dict, {"a": 1}),
        (True, bool, True),
    ],
)
def test_accepted_values(value, hint, expected):
    assert check_value(value, hint, "k") == expected


@pytest.mark.parametrize(
    "value,hint",
    [
        ("fast", float),
        (float("nan"), float),
        (float("inf"), float),
        (10**400, float),
        (True, float),
        ("two", int),
        (1.5, int),
        (True, int),
        (1, bool),
        ("yes", bool),
        (5, str),
        ("a", list[int]),
        (["a"], list[int] | None),
        ([1], dict),
        ("x", int | None),
    ],
)
def test_refused_values_name_the_key_and_file(value, hint):
    with pytest.raises(DataError) as e:
        check_value(value, hint, "training.lr", "c.yaml")
    assert str(e.value).startswith("c.yaml, column 'training.lr': training.lr must be ")
    assert "\n" not in str(e.value)


def test_check_mapping_unknown_key_and_nested_prefix():
    assert check_mapping(Knobs, {"lr": "2e-4", "tags": ["a"]}) == {"lr": 2e-4, "tags": ["a"]}
    with pytest.raises(DataError, match=r"column 'train\.lrr'.*unknown setting"):
        check_mapping(Knobs, {"lrr": 1}, "c.yaml", "train.")
    with pytest.raises(DataError, match=r"column 'train': train must be a mapping"):
        check_mapping(Knobs, [1], "c.yaml", "train.")
    assert check_mapping(Knobs, {"options": 5}, skip=("options",)) == {"options": 5}
