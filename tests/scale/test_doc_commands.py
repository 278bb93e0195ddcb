"""The commands docs/scale.md gives for large backbones and clusters stay runnable:
benchmarks/check_gpu_commands.py reads them from the doc; here every `instructrec` command
line is parsed by the real CLI, every file it names exists, the YAML it ships loads, and (slow)
the single-process 7B recipe runs end to end on a tiny Llama. The whole list, with 2-process
launches, runs with `python benchmarks/check_gpu_commands.py` (about 3 minutes on 2 cores)."""

from __future__ import annotations

import importlib.util
import shlex
import sys
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checker():
    spec = importlib.util.spec_from_file_location(
        "check_gpu_commands", ROOT / "benchmarks" / "check_gpu_commands.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def steps(checker, tmp_path_factory):
    found = checker.doc_steps(checker.DOC.read_text())
    models = checker.model_dirs(tmp_path_factory.mktemp("models"))
    for s in found:
        checker.rewrite(s, models, gpu=False, gpus=0, max_steps=2)
    return found


def _cli_args(tokens: list[str]) -> list[str] | None:
    """The arguments of the `instructrec` CLI in a command line, if it runs it."""
    if tokens[0] == "instructrec":
        return tokens[1:]
    if "instructrec.cli" in tokens:
        return tokens[tokens.index("instructrec.cli") + 1 :]
    return None


def _parse(args: list[str]) -> click.Command:
    """Parse ``args`` like the `instructrec` command would, without running anything."""
    from instructrec.cli import main

    cmd, ctx = main, None
    while isinstance(cmd, click.Group):
        ctx = click.Context(cmd, info_name=cmd.name, parent=ctx)
        name, args = args[0], args[1:]
        cmd = cmd.get_command(ctx, name)
        assert cmd is not None, f"no command {name!r}"
    cmd.make_context(cmd.name, list(args), parent=ctx)  # raises on a bad option or value
    return cmd


def test_the_doc_commands_are_found(steps):
    sections = {s.section.split(" (")[0] for s in steps}
    assert sections == {
        "Check your own cluster",
        "On CPUs",
        "2. Large backbones with LoRA",
    }
    commands = [s.documented for s in steps if s.kind == "command"]
    assert sum("flan-t5-xl" in c for c in commands) == 2  # one GPU, 8 GPUs
    assert sum("tune-7b.yaml" in c for c in commands) == 2  # one GPU, 4 GPUs
    assert [s.file for s in steps if s.kind == "file"] == ["tune-7b.yaml"]
    launched = [s for s in steps if "accelerate launch" in s.documented]
    assert launched and all(s.processes == 2 for s in launched)  # on CPU: 2 processes
    for s in steps:
        if s.kind == "command" and "tune" in s.command.split():
            assert s.command.endswith("--set train.max_steps=2") and "cuda" not in s.command


def test_every_cli_command_parses_as_documented(steps):
    """The documented lines themselves (hub ids and all), through the real click parser."""
    parsed = 0
    for s in steps:
        if s.kind != "command":
            continue
        args = _cli_args(shlex.split(s.documented, comments=True))
        if args is not None:
            _parse(args)
            parsed += 1
    assert parsed == 7


def test_readme_gpu_commands_are_the_checked_ones(checker, steps):
    """The README's GPU section repeats commands of docs/scale.md, so they are run too."""
    readme = checker.doc_steps(
        (ROOT / "README.md").read_text(), ("### A 3B seq2seq or 7B causal backbone",)
    )
    assert len(readme) == 5
    checked = {s.documented for s in steps}
    for s in readme:
        assert s.documented in checked, s.documented


def test_files_the_commands_name_exist_and_load(steps, tmp_path):
    from accelerate.commands.config.config_args import load_config_from_file

    from instructrec.training.tune_config import TuneConfig

    for s in steps:
        if s.kind == "file":
            (tmp_path / s.file).write_text(s.documented)
            cfg = TuneConfig.from_yaml(tmp_path / s.file)
            assert cfg.kind == "causal" and cfg.dtype == "bfloat16"
            assert cfg.train.mixed_precision == "bf16" and cfg.train.grad_accum == 4
            continue
        tokens = shlex.split(s.documented, comments=True)
        if "--config_file" in tokens:
            path = ROOT / tokens[tokens.index("--config_file") + 1]
            assert load_config_from_file(str(path)).num_processes >= 1


@pytest.mark.slow
def test_the_7b_recipe_runs_on_a_tiny_llama(checker, tmp_path):
    """Documented steps of section 2, verbatim but for the model path and cuda -> cpu: build
    the Alpaca file, write tune-7b.yaml, `instructrec tune --config tune-7b.yaml` (one
    process, bf16 autocast, bf16 weights, LoRA on q/k/v/o), 2 steps. About 25 s."""
    import os

    found = checker.doc_steps(checker.DOC.read_text())
    models = checker.build_models(tmp_path / "models")
    wanted = [
        s
        for s in found
        if "instructions build" in s.documented
        or s.kind == "file"
        or ("tune-7b.yaml" in s.documented and "accelerate" not in s.documented)
    ]
    assert len(wanted) == 3
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "OMP_NUM_THREADS": "1",
    }
    for s in wanted:
        checker.rewrite(s, models, gpu=False, gpus=0, max_steps=2)
        checker.run_step(s, tmp_path, env, timeout=300)
        assert checker.check(s, 2) == [], s.tail
    c = wanted[-1].checks
    assert c["steps"] == 2 and c["processes_seen"] == 1 and c["model_saved"]
    assert (c["device"], c["mixed_precision"]) == ("cpu", "bf16")
