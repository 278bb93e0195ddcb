"""The `instructrec` command: one group, each command a thin face over the Python API.

Commands live in sibling modules and are imported only when invoked, so `instructrec --help`
stays fast and no command pays for another's imports. A `DataError` (bad input) prints one
line and exits with code 2; it is never shown as a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

# command name -> "module:attribute" (module relative to instructrec.cli)
COMMANDS = {
    "data": "data:data",
    "instructions": "instructions:instructions",
    "evaluate": "evaluate:evaluate",
    "train": "train:train",
    "recommend": "train:recommend",
    "quickstart": "quickstart:quickstart",
    "tune": "tune:tune",
    "predict": "predict:predict",
    "serve": "serve:serve",
    "feedback": "feedback:feedback",
    "scale": "scale:scale",
    "runs": "runs:runs",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(name for name, target in COMMANDS.items() if _module_exists(target))

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None or not _module_exists(target):
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(f"instructrec.cli.{module}"), attr)

    def invoke(self, ctx):
        from instructrec.data.errors import DataError

        try:
            return super().invoke(ctx)
        except DataError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(2)


def _module_exists(target: str) -> bool:
    module = target.split(":")[0]
    return os.path.exists(os.path.join(os.path.dirname(__file__), f"{module}.py"))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="instructrec")
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    envvar="INSTRUCTREC_QUIET",
    help="no progress lines or bars (warnings, errors and results only); for scripts",
)
def main(quiet: bool) -> None:
    """Recommendation as natural-language instruction following.

    Progress goes to stderr, one line per stage with the time since the start; results go to
    stdout."""
    from .progress import setup, teardown

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    handler = setup(quiet=quiet)
    click.get_current_context().call_on_close(lambda: teardown(handler))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
