"""Top-k for every user from any fitted `Retriever`, in blocks of users (local or Ray Data).

`instructrec.scale.batch_scoring` needs user and item vectors. Many first stages have none
(Pop, item-kNN) or score users with more than a dot product (SASRec's transformer), so this
module runs the retriever's own ``candidates(users, k)`` over blocks of ``user_block`` users:
memory is ``user_block x n_items`` scores, and the rows are exactly what the retriever would
return one user at a time. It answers "how do I get the top-k of every user?" for a saved run
(`instructrec scale topk --model runs/NAME`).

With ``backend="ray"`` the pickled retriever and the histories go once into Ray's object store
and a pool of actors scores the blocks (``pip install "instructrec[ray]"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from instructrec.data.errors import DataError
from instructrec.scale.batch_scoring import to_csr, to_frame


def _block(retriever, users: np.ndarray, k: int, indptr, indices, user_ids, item_ids):
    """One block: the retriever's candidates for ``users`` as the long table."""
    hist = None
    if indptr is not None:
        hist = [indices[indptr[u] : indptr[u + 1]] for u in users]
    ids, scores = retriever.candidates(users, k, exclude_seen=True, histories=hist)
    df = to_frame(users, ids, scores, user_ids, item_ids)
    return df, np.repeat(users, np.isfinite(scores).sum(1))  # rows' internal user ids


class _RayRetriever:
    """A Ray Data actor holding the retriever and histories (fetched once)."""

    def __init__(self, refs: list, k: int) -> None:
        import ray

        self.retriever, self.indptr, self.indices, self.user_ids, self.item_ids = ray.get(refs)
        self.k = k

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        users = np.asarray(batch["data"], dtype=np.int64)
        df, internal = _block(
            self.retriever, users, self.k, self.indptr, self.indices, self.user_ids, self.item_ids
        )
        return {**{c: df[c].to_numpy() for c in df.columns}, "_user": internal}


def retriever_topk(
    retriever,
    users: np.ndarray | None = None,
    k: int = 100,
    histories: Sequence[np.ndarray] | None = None,
    user_block: int = 256,
    backend: str = "local",
    num_workers: int = 2,
    user_ids: np.ndarray | None = None,
    item_ids: np.ndarray | None = None,
    output: str | Path | None = None,
) -> pd.DataFrame | Path:
    """Top-``k`` unseen items for each of ``users`` (internal ids; default: all users the
    retriever was fitted on), as (user_id, item_id, score, rank). ``histories``: per user in
    ``users``, the history to score from and exclude (default: the training items)."""
    if k < 1 or user_block < 1 or num_workers < 1:
        raise DataError("k, user_block and num_workers must be >= 1")
    if users is None:
        n = len(retriever._train_items) if retriever._train_items is not None else 0
        users = np.arange(n)
    users = np.asarray(users, dtype=np.int64)
    if histories is not None and len(histories) != len(users):
        raise DataError(f"{len(histories)} histories for {len(users)} users", column="histories")
    # histories indexed by internal user id (CSR over max(users) + 1 rows)
    indptr = indices = None
    if histories is not None:
        rows: list[np.ndarray] = [np.empty(0, np.int64)] * (int(users.max(initial=-1)) + 1)
        for u, h in zip(users, histories, strict=True):
            rows[u] = np.asarray(h, dtype=np.int64)
        indptr, indices = to_csr(rows, len(rows))
    if backend == "local":
        frames = [
            _block(retriever, users[lo : lo + user_block], k, indptr, indices, user_ids, item_ids)[
                0
            ]
            for lo in range(0, len(users), user_block)
        ]
        df = (
            pd.concat(frames, ignore_index=True)
            if frames
            else to_frame(users[:0], np.empty((0, 0), np.int64), np.empty((0, 0), np.float32))
        )
        if output is None:
            return df
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(output, index=False)
        return Path(output)
    if backend != "ray":
        raise DataError(f"backend must be 'local' or 'ray', got {backend!r}", column="backend")
    import ray
    import ray.data

    refs = [ray.put(x) for x in (retriever, indptr, indices, user_ids, item_ids)]
    n_blocks = max(1, -(-len(users) // user_block))
    ds = ray.data.from_numpy(np.array_split(users, n_blocks))
    scored = ds.map_batches(
        _RayRetriever,
        fn_constructor_kwargs={"refs": refs, "k": k},
        batch_size=user_block,
        batch_format="numpy",
        num_cpus=1,
        compute=ray.data.ActorPoolStrategy(size=min(num_workers, n_blocks)),
    )
    if output is not None:
        scored.drop_columns(["_user"]).write_parquet(str(output))
        return Path(output)
    df = scored.to_pandas()
    order = np.lexsort((df["rank"].to_numpy(), df["_user"].to_numpy()))
    return pd.DataFrame(
        {c: df[c].to_numpy()[order] for c in ("user_id", "item_id", "score", "rank")}
    )
