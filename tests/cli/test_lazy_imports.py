"""The CLI imports what a command needs, when it runs: `--help` and the data room's error type
pay for neither torch nor pandas, and `recommend` pays for neither transformers nor peft."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("torch", "transformers", "peft", "pandas", "pyarrow", "sklearn")


def _loaded_after(code: str) -> list[str]:
    """The HEAVY modules in sys.modules after running ``code`` in a fresh interpreter."""
    probe = (
        f"{code}\nimport sys, json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_help_imports_nothing_heavy():
    code = (
        "from instructrec.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "try:\n    main(['recommend', '--help'])\nexcept SystemExit:\n    pass"
    )
    assert _loaded_after(code) == []


def test_data_error_does_not_import_the_readers():
    assert _loaded_after("from instructrec.data import DataError") == []
    # the lazy names still resolve to the submodules' objects
    assert _loaded_after("from instructrec.data import Dataset") != []


def test_lazy_data_names():
    import instructrec.data as data
    from instructrec.data.split import make_split

    assert data.make_split is make_split
    assert "Dataset" in dir(data) and "Dataset" in data.__all__
    try:
        data.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("unknown names must raise AttributeError")
