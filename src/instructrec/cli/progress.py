"""What the CLI prints while it works: one line per stage with its time, nothing else.

`setup` is called once by the command group. The library reports its stages through the
standard `logging` module (logger ``instructrec``: data loaded, each retriever fitted, SASRec
epochs with validation NDCG@10, reranker evaluations, each protocol); here those records
become lines such as ``[  42.1 s] sasrec epoch 3: loss 6.1234, valid NDCG@10 0.0812`` on
stderr. Library noise is filtered: transformers/PEFT/torch FutureWarnings and advisory
messages, and the weight-loading progress bars. ``--quiet`` keeps warnings and errors only
(and turns tqdm bars off), for scripts.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings

LOGGER = "instructrec"
# libraries whose warnings are about their own internals, not about the user's data or run
NOISY_MODULES = (
    r"(transformers|peft|torch|accelerate|huggingface_hub|tokenizers|sentence_transformers)(\.|$)"
)


class _StageFormatter(logging.Formatter):
    """``[  12.3 s] message`` (seconds since the command started)."""

    def __init__(self, t0: float) -> None:
        super().__init__()
        self.t0 = t0

    def format(self, record: logging.LogRecord) -> str:
        head = f"[{time.perf_counter() - self.t0:7.1f} s] "
        level = "" if record.levelno <= logging.INFO else f"{record.levelname.lower()}: "
        return head + level + record.getMessage()


def quiet_libraries() -> None:
    """Silence transformers' advisory messages, FutureWarnings and loading bars (before the
    libraries are imported where possible: they read these variables at import)."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=NOISY_MODULES)
    for name in ("transformers", "peft", "accelerate", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if "transformers" in sys.modules:  # already imported: tell it directly
        try:
            from transformers.utils import logging as tlog

            tlog.set_verbosity_error()
            tlog.disable_progress_bar()
        except Exception:  # an old or partial transformers: the variables above still apply
            pass


def setup(quiet: bool = False, stream=None) -> logging.Handler:
    """Route the library's stage records to ``stream`` (stderr) as timed lines; ``quiet``:
    warnings and errors only, tqdm bars off. Returns the handler (tests remove it)."""
    quiet_libraries()
    if quiet:
        os.environ["TQDM_DISABLE"] = "1"
        os.environ["INSTRUCTREC_QUIET"] = "1"
    logger = logging.getLogger(LOGGER)
    for h in list(logger.handlers):
        if getattr(h, "_instructrec_cli", False):
            logger.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._instructrec_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(_StageFormatter(time.perf_counter()))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    return handler


def teardown(handler: logging.Handler) -> None:
    """Undo `setup` (the command is over): the handler goes, the logger propagates again."""
    logger = logging.getLogger(LOGGER)
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
    os.environ.pop("INSTRUCTREC_QUIET", None)


def is_quiet() -> bool:
    """Whether the command runs with ``--quiet``."""
    return os.environ.get("INSTRUCTREC_QUIET") == "1"


def stage(message: str) -> None:
    """One progress line from the CLI itself (same format as the library's)."""
    logging.getLogger(LOGGER + ".cli").info(message)
