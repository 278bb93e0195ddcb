"""Load a saved seq2seq or causal scorer (`LMScorer.save` wrote it) as the kind it was saved as.

Apart from `lm_scorer` so that the base class does not import its own subclasses.
"""

from __future__ import annotations

import json
from pathlib import Path

from instructrec.data.errors import DataError
from instructrec.models.causal import CausalScorer
from instructrec.models.lm_scorer import LMScorer
from instructrec.models.seq2seq import Seq2SeqScorer

SCORERS: dict[str, type[LMScorer]] = {"seq2seq": Seq2SeqScorer, "causal": CausalScorer}


def load_scorer(directory: str | Path) -> LMScorer:
    """Rebuild a saved scorer (of whichever kind it was saved as)."""
    directory = Path(directory)
    meta_path = directory / "scorer.json"
    if not meta_path.exists():
        raise DataError("not a saved scorer (no scorer.json)", source=str(directory))
    kind = json.loads(meta_path.read_text()).get("kind")
    if kind not in SCORERS:
        raise DataError(f"unknown scorer kind {kind!r}", source=str(directory))
    return SCORERS[kind].load(directory)
