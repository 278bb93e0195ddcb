"""The intentions a protocol states (generated or drawn from the paraphrase set) and the
training intentions their wording is compared with (vocabulary overlap in every report)."""

from __future__ import annotations

import numpy as np

from ..data.dataset import Dataset
from ..data.split import Split
from .protocols import Protocol


def protocol_intentions(proto: Protocol, dataset: Dataset, targets: np.ndarray, seed: int):
    """(texts, attrs, info) of a protocol's rows: derived by the generator or drawn from the
    paraphrase set; ``info`` says which (paraphrase version and file hash included)."""
    if proto.wording == "paraphrase":
        from ..instructions.paraphrase import paraphrase_intentions, paraphrases_for

        pset = paraphrases_for(dataset)
        texts, attrs = paraphrase_intentions(
            dataset, targets, kind=proto.intention, seed=seed, paraphrases=pset
        )
        info = {"wording": "paraphrase", "version": pset.version, "sha256": pset.sha256}
    else:
        from ..instructions import derive_intentions

        texts, attrs = derive_intentions(dataset, targets, kind=proto.intention, seed=seed)
        info = {"wording": "derived"}
    return [str(t) if t else "" for t in texts], list(attrs), info


def training_intentions(dataset: Dataset, split: Split, kind: str, seed: int, last: int = 2):
    """Intentions of ``kind`` the generator writes for the last ``last`` training items of
    every user: what the reranker's training instances state (its stacked targets)."""
    from ..instructions import derive_intentions

    tr = split.train
    if len(tr) == 0:
        return []
    order = np.lexsort((tr["order"].to_numpy(), tr["timestamp"].to_numpy(), tr["user"].to_numpy()))
    users = tr["user"].to_numpy()[order]
    items = tr["item"].to_numpy()[order]
    ends = np.r_[np.flatnonzero(users[1:] != users[:-1]), len(users) - 1]  # last row per user
    counts = np.diff(np.r_[-1, ends])
    pos_from_end = np.repeat(ends, counts) - np.arange(len(users))  # 0 = the user's last item
    texts, _ = derive_intentions(dataset, items[pos_from_end < last], kind=kind, seed=seed)
    return [str(t) for t in texts if t]
