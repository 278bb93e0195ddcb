"""A harness for malformed-input tests: write files, run one CLI command, check the refusal.

A `Case` names the files to write into a fresh folder, the command line (``{d}`` stands for
the folder) and the text the error must contain (the file name, ``line N``, ``column 'x'``).
`check_refused` runs the command through click's `CliRunner` and asserts what every bad input
must give (issue 18): exit code 2, a single ``error: ...`` line on stderr (no traceback), the
input files byte for byte unchanged, and nothing else left in the folder (no ``--out``, no
temporary directory).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Case:
    """One malformed input: files to write, the command, and what the message must name."""

    id: str  # the pytest id
    files: dict[str, str | bytes]  # relative path -> content (str: UTF-8, "{d}" replaced)
    args: list[str]  # the command line after `instructrec`; "{d}" is the folder
    where: tuple[str, ...] = ()  # substrings of the error line (file, "line 3", "'rating'")
    out: str = "out"  # the --out path (relative) that must not exist afterwards
    extra: dict = field(default_factory=dict)  # "file": the name the message must hold


def write_files(folder: Path, files: dict[str, str | bytes]) -> None:
    """Write ``files`` (relative path -> str or bytes) under ``folder``; ``{d}`` in a str
    content (a config naming a data file) becomes ``folder``."""
    for rel, content in files.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_bytes(content.replace("{d}", str(folder)).encode("utf-8"))


def snapshot(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``folder`` (directories as "<dir>")."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        out[rel] = "<dir>" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def check_refused(case: Case, folder: Path) -> str:
    """Run ``case`` in ``folder`` and assert a clean refusal; returns the error line."""
    from click.testing import CliRunner

    from instructrec.cli import main

    write_files(folder, case.files)
    before = snapshot(folder)
    args = [a.replace("{d}", str(folder)) for a in case.args]
    result = CliRunner().invoke(main, args)
    stderr = result.stderr
    assert result.exit_code == 2, (
        f"exit {result.exit_code}, expected 2; stderr: {stderr!r}; exception: {result.exception!r}"
    )
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one error line, got {stderr!r}"
    line = lines[0]
    assert line.startswith("error: "), line
    assert "Traceback" not in result.output, result.output
    for text in case.where:
        assert text in line, f"{text!r} not in {line!r}"
    # the message names the file at fault: one of the inputs (or extra["file"])
    named = [Path(k).name for k in case.files] + [
        Path(a).name for a in case.args if a.startswith("{d}/")
    ]
    named = [case.extra["file"]] if "file" in case.extra else named
    assert any(n in line for n in named), f"no file of {named} named in {line!r}"
    assert snapshot(folder) == before, "input changed or output left behind"
    assert not (folder / case.out).exists()
    return line
