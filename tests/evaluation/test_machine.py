"""`evaluation.manifest.machine` is the one machine record: every benchmark and run uses it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from instructrec.evaluation.manifest import machine

ROOT = Path(__file__).resolve().parents[2]


def test_machine_names_packages_and_device():
    m = machine("numpy", "no-such-package-xyz", device="cpu")
    assert m["numpy"] == np.__version__ and m["no-such-package-xyz"] is None
    assert m["device"] == "cpu" and m["cpu_count"] >= 1 and m["python"]
    assert "device" not in machine()


def test_no_other_machine_function():
    defs = [
        str(p.relative_to(ROOT))
        for p in [*ROOT.glob("benchmarks/*.py"), *ROOT.glob("src/instructrec/**/*.py")]
        if re.search(r"^def (machine|machine_info)\(", p.read_text(), re.M)
    ]
    assert defs == ["src/instructrec/evaluation/manifest.py"]
