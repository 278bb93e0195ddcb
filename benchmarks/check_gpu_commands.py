"""Run the exact commands of docs/scale.md (large backbones with LoRA, cluster checks) here,
with tiny stand-ins, so every documented command is known to parse and run end to end.

The commands are read from the doc itself (its bash blocks and the ``tune-7b.yaml`` block of
sections 1 and 2), not copied, so the check follows the doc. Each one runs verbatim except:

- hub ids and model paths (``google/flan-t5-xl``, ``/models/Llama-2-7b-hf``,
  ``./flan-t5-small``) point to tiny random models of the same architectures (T5 with
  Flan-T5's gated-GELU, Llama with q/k/v/o projections) built here from configs, with a
  byte-level BPE tokenizer (`instructrec.testing.tiny`): no hub, no download;
- without ``--gpu``: ``--set train.device=cuda`` / ``device: cuda`` become ``cpu``, and
  ``--num_processes N`` becomes 2 (DDP over gloo: accelerate starts torchrun, the engine asks
  for the CPU); with ``--gpu``: N becomes min(N, GPUs) and devices stay;
- ``tune`` commands get ``--set train.max_steps=2`` (``--max-steps`` to change), and launchers a free
  port (``--main_process_port`` / ``--master_port``) so they do not collide with other jobs.

``bf16`` stays: on CPU, accelerate's autocast runs in bfloat16 too. Everything runs in one
working directory (``data/``, ``runs/``, ``configs`` linked to the repository's), as a user
would from the repository root; ``runs/`` is cleared before each training command so that no
run resumes from the previous one's checkpoints.

    python benchmarks/check_gpu_commands.py                 # CPU, ~3 min on 2 busy cores
    python benchmarks/check_gpu_commands.py --list          # the commands, rewritten
    PYTHONPATH=src python benchmarks/check_gpu_commands.py --gpu --out-dir "$OUT"

Writes <out-dir>/gpu_commands.{json,md} (``gpu_commands_gpu`` with ``--gpu``); the default
out-dir is benchmarks/results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "scale.md"
# sections of docs/scale.md whose commands are checked (headings, as they start)
SECTIONS = ("### Check your own cluster", "### On CPUs", "## 2. Large backbones")
# model names in the doc -> (builder, architecture) of the tiny stand-in
MODELS = {
    "google/flan-t5-xl": ("t5", None),
    "./flan-t5-small": ("t5", None),
    "/models/Llama-2-7b-hf": ("causal", "llama"),
}


@dataclass
class Step:
    """One documented command (or file), as written and as run."""

    section: str
    documented: str  # the command as the doc writes it (continuations joined)
    command: str = ""  # what runs here
    kind: str = "command"  # "command" | "file"
    file: str | None = None  # for kind "file": the file name the doc gives it
    processes: int = 1
    rc: int | None = None
    seconds: float | None = None
    checks: dict = field(default_factory=dict)
    tail: str = ""


def doc_steps(text: str, sections: tuple[str, ...] = SECTIONS) -> list[Step]:
    """The commands (and named YAML files) of ``sections`` (headings, as they start) of a
    markdown text, in order."""
    steps: list[Step] = []
    chapter = subsection = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            chapter, subsection = line, ""
        elif line.startswith("### "):
            subsection = line
        elif line.startswith("```"):
            lang = line[3:].strip()
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            body = "\n".join(lines[i + 1 : j])
            keep = chapter.startswith(sections) or subsection.startswith(sections)
            section = (subsection or chapter).lstrip("#").strip()
            if keep and lang == "bash":
                joined = re.sub(r"\\\n\s*", "", body)
                for cmd in joined.splitlines():
                    if cmd.strip() and not cmd.lstrip().startswith("#"):
                        steps.append(Step(section, cmd.strip()))
            elif keep and lang == "yaml":
                m = re.match(r"#\s*(\S+\.ya?ml)\b", body)
                if m:
                    steps.append(Step(section, body, kind="file", file=m.group(1)))
            i = j
        i += 1
    return steps


def model_dirs(directory: Path) -> dict[str, Path]:
    """Where the stand-in of each documented model name goes."""
    return {k: directory / re.sub(r"[^A-Za-z0-9.-]+", "-", k.strip("./")) for k in MODELS}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rewrite(step: Step, models: dict[str, Path], gpu: bool, gpus: int, max_steps: int) -> None:
    """Fill ``step.command`` (or the file text) from ``step.documented``."""
    text = step.documented
    for name, path in models.items():
        text = text.replace(name, str(path))
    if step.kind == "file":
        if not gpu:
            text = re.sub(r"(?m)^(\s*device:\s*)cuda\b", r"\1cpu", text)
        step.command = text
        return
    tokens = shlex.split(text, comments=True)
    out: list[str] = []
    k = 0
    while k < len(tokens):
        tok = tokens[k]
        if (
            tok == "--set"
            and k + 1 < len(tokens)
            and tokens[k + 1] == "train.device=cuda"
            and not gpu
        ):
            out += ["--set", "train.device=cpu"]
            k += 2
            continue
        if tok == "--num_processes" and k + 1 < len(tokens):
            n = int(tokens[k + 1])
            out += [tok, str(min(n, gpus) if gpu else 2)]
            k += 2
            continue
        out.append(tok)
        if tok == "launch" and out[:1] == ["accelerate"]:
            out += ["--main_process_port", str(_free_port())]
        if tok == "torchrun":
            out += ["--master_port", str(_free_port())]
        k += 1
    if _is_tune(out):
        out += ["--set", f"train.max_steps={max_steps}"]
    step.processes = _processes(out)
    step.command = shlex.join(out)


def _is_tune(tokens: list[str]) -> bool:
    return "tune" in tokens and ("instructrec" in tokens or "instructrec.cli" in tokens)


def _processes(tokens: list[str]) -> int:
    for flag in ("--num_processes", "--nproc_per_node"):
        if flag in tokens:
            return int(tokens[tokens.index(flag) + 1])
    if "--config_file" in tokens:
        import yaml

        cfg = Path(tokens[tokens.index("--config_file") + 1])
        return int(yaml.safe_load((ROOT / cfg).read_text()).get("num_processes", 1))
    return 1


def build_models(directory: Path) -> dict[str, Path]:
    sys.path.insert(0, str(ROOT / "src"))
    from instructrec.testing.tiny import tiny_causal, tiny_t5

    texts = [
        "Recommend a movie. The user watched Toy Story (1995), Heat (1995), Fargo (1996).",
        "Which of the following movies will the user watch next? Candidates: Babe, Emma.",
    ]
    out = model_dirs(directory)
    for name, (builder, arch) in MODELS.items():
        if builder == "t5":
            tiny_t5(out[name], texts)
        else:
            tiny_causal(out[name], texts, arch=arch)
    return out


def _output_dir(step: Step, work: Path) -> Path | None:
    tokens = shlex.split(step.command)
    if "--out" in tokens:
        return work / tokens[tokens.index("--out") + 1]
    if "--config" in tokens:
        import yaml

        cfg = yaml.safe_load((work / tokens[tokens.index("--config") + 1]).read_text())
        return work / cfg["train"]["output_dir"]
    return None


def run_step(step: Step, work: Path, env: dict[str, str], timeout: int) -> None:
    if step.kind == "file":
        (work / step.file).write_text(step.command + "\n")
        step.rc, step.seconds = 0, 0.0
        return
    tokens = shlex.split(step.command)
    tune = _is_tune(tokens)
    if tune:
        shutil.rmtree(work / "runs", ignore_errors=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            ["bash", "-c", step.command],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        step.rc, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
        step.rc, output = 124, f"timed out after {timeout} s\n{e.stdout or ''}{e.stderr or ''}"
    step.seconds = round(time.perf_counter() - t0, 1)
    step.tail = "\n".join(
        ln for ln in output.splitlines()[-15:] if "Warning" not in ln and ln.strip()
    )
    if tune and step.rc == 0:
        out = _output_dir(step, work)
        metrics = json.loads((out / "metrics.json").read_text())
        ckpt = sorted((out / "checkpoints").glob("step-*"))[-1]
        train = _yaml(out / "tune.yaml")["train"]  # the TrainConfig the engine ran with
        step.checks = {
            "steps": metrics["steps"],
            "n_train": metrics["n_train"],
            "valid_loss": (round(metrics["valid"]["loss"], 4) if metrics.get("valid") else None),
            "examples_per_s": round(metrics["examples_per_s"], 1),
            "processes_seen": len(list(ckpt.glob("rng-*.json"))),  # one RNG file per rank
            "model_saved": (out / "model").is_dir(),
            "mixed_precision": train["mixed_precision"],
            "device": train["device"],
        }
    elif step.rc == 0 and "--format" in tokens:  # instructions build
        data = json.loads((work / tokens[tokens.index("--out") + 1]).read_text())
        step.checks = {"rows": len(data)}
    elif step.rc == 0 and "instructrec.scale.invariant" in tokens:
        summary = json.loads((work / tokens[tokens.index("--out") + 1]).read_text())
        step.checks = {"world": summary["world"], "steps": summary["steps"]}
    elif step.rc == 0 and "compare_trajectories" in step.command:
        step.checks = {"printed": output.strip().splitlines()[-1]}


def _yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def check(step: Step, max_steps: int) -> list[str]:
    """What went wrong with a step (empty: it ran as documented)."""
    problems = []
    if step.rc != 0:
        problems.append(f"exit code {step.rc}")
    c = step.checks
    if "steps" in c and "n_train" in c:
        if c["steps"] != max_steps:
            problems.append(f"{c['steps']} steps, not {max_steps}")
        if c["processes_seen"] != step.processes:
            problems.append(f"{c['processes_seen']} processes, not {step.processes}")
        if not c["model_saved"]:
            problems.append("no model saved")
    if "world" in c and c["world"] != step.processes:
        problems.append(f"world {c['world']}, not {step.processes}")
    return problems


def to_markdown(res: dict) -> str:
    lines = [
        "# The commands of docs/scale.md, run with tiny stand-ins",
        "",
        f"`{res['invocation']}` on {res['machine']['platform']} "
        f"({res['machine']['cpu_count']} CPUs, torch {res['versions']['torch']}, "
        f"accelerate {res['versions']['accelerate']}, GPUs: {res['machine']['gpus']}). "
        "Models: tiny random T5 (for google/flan-t5-xl, ./flan-t5-small) and Llama (for "
        "/models/Llama-2-7b-hf) built from configs; `--max-steps "
        f"{res['max_steps']}` added to tune commands"
        + ("." if res["gpu"] else "; cuda -> cpu; --num_processes N -> 2.")
        + " These are not GPU figures: they show that each command parses and runs end to end.",
        "",
        "| # | documented command | processes | seconds | result |",
        "|---|---|---|---|---|",
    ]
    for i, s in enumerate(res["steps"], 1):
        doc = s["documented"] if s["kind"] == "command" else f"(writes {s['file']})"
        doc = doc if len(doc) <= 110 else doc[:107] + "..."
        c = s["checks"]
        if s["problems"]:
            result = "FAILED: " + "; ".join(s["problems"])
        elif "n_train" in c:
            result = (
                f"ok: {c['steps']} steps x {c['processes_seen']} proc., {c['n_train']} train "
                f"rows, {c['device']}/{c['mixed_precision']}, valid loss {c['valid_loss']}, "
                "model saved"
            )
        elif c:
            result = "ok: " + ", ".join(f"{k} {v}" for k, v in c.items())
        else:
            result = "ok"
        lines.append(
            f"| {i} | `{doc.replace('|', '/')}` | {s['processes']} | {s['seconds']} | {result} |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gpu", action="store_true", help="keep cuda devices (a GPU machine)")
    ap.add_argument("--max-steps", type=int, default=2, help="added to every tune command")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per command")
    ap.add_argument(
        "--workdir", default=None, help="where to run (default: a temp dir, removed on success)"
    )
    ap.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--list", action="store_true", help="print the rewritten commands only")
    args = ap.parse_args(argv)

    import torch

    gpus = torch.cuda.device_count()
    if args.gpu and gpus == 0:
        ap.error("--gpu: no CUDA device here")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="gpu-commands-"))
    work.mkdir(parents=True, exist_ok=True)
    steps = doc_steps(DOC.read_text())
    models = model_dirs(work / "models") if args.list else build_models(work / "models")
    for s in steps:
        rewrite(s, models, args.gpu, gpus, args.max_steps)
    if args.list:
        for s in steps:
            print(f"# {s.section}\n{s.command if s.kind == 'command' else s.file}\n")
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
        return 0

    # as from the repository root: configs/ is the repository's; inputs the doc assumes exist
    if not (work / "configs").exists():
        (work / "configs").symlink_to(ROOT / "configs")
    (work / "pairs.tsv").write_text(
        "".join(
            f"Is movie {i} a comedy? Genre: {'Comedy' if i % 2 else 'Drama'}\t"
            f"{'yes' if i % 2 else 'no'}\n"
            for i in range(64)
        )
    )
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "TQDM_DISABLE": "1",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    env.pop("ACCELERATE_USE_CPU", None)
    results = []
    for s in steps:
        run_step(s, work, env, args.timeout)
        problems = check(s, args.max_steps)
        results.append({**asdict(s), "problems": problems})
        status = "ok" if not problems else "FAILED " + "; ".join(problems)
        print(f"[{s.seconds:6.1f} s] {status}: {s.command if s.kind == 'command' else s.file}")
        if problems:
            print("    " + s.tail.replace("\n", "\n    "))
        sys.stdout.flush()

    import accelerate
    import transformers

    res = {
        "invocation": "python benchmarks/check_gpu_commands.py" + (" --gpu" if args.gpu else ""),
        "gpu": args.gpu,
        "max_steps": args.max_steps,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "gpus": [torch.cuda.get_device_name(i) for i in range(gpus)] or "none",
        },
        "versions": {
            "torch": torch.__version__,
            "accelerate": accelerate.__version__,
            "transformers": transformers.__version__,
        },
        "steps": results,
    }
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "gpu_commands_gpu" if args.gpu else "gpu_commands"
    (out_dir / f"{stem}.json").write_text(json.dumps(res, indent=1))
    (out_dir / f"{stem}.md").write_text(to_markdown(res))
    if args.workdir is None and not any(r["problems"] for r in results):
        shutil.rmtree(work, ignore_errors=True)  # keep it only to look at a failure
    failed = [r for r in results if r["problems"]]
    print(
        f"{len(results) - len(failed)}/{len(results)} ran as documented; wrote {out_dir}/{stem}.md"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
