"""Batch scoring at scale: every user against the whole catalogue, top-k per user.

The first stage of a two-stage recommender is a bi-encoder (Covington et al. 2016, "Deep Neural
Networks for YouTube Recommendations"): a user vector dotted with every item vector, the
best ``k`` kept. InstructRec's reranker then only sees those ``k``. Scoring 10^4 users x 10^6
items at once would need 40 GB of scores, so the work is blocked: ``user_block`` users x
``item_block`` items at a time, each block's top-k merged into a running top-k. Memory is
``user_block * item_block`` floats, whatever the catalogue size.

Two executors share that kernel (`topk_block`) and give the same rows:

- ``backend="local"``: a loop over user blocks in this process (torch: CPU threads or CUDA).
- ``backend="ray"``: Ray Data ``map_batches`` over user ids with a pool of ``num_workers``
  actors; item vectors, user vectors and seen items travel once through the object store.
  Ray is imported only here, inside `score_ray`: ``pip install "instructrec[ray]"``.

Output: a long table (user_id, item_id, score, rank), rank 1 = best; within a user, ties go
to the smaller internal item id. ``output=`` writes Parquet (a file for local, a directory of
part files for Ray).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from instructrec.data.errors import DataError

DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class BatchScoringConfig:
    """How to score (the same for both backends)."""

    k: int = 100  # items kept per user
    user_block: int = 1024  # users per block (one Ray batch)
    item_block: int = 65536  # items per matmul (scores held: user_block x item_block floats)
    exclude_seen: bool = True  # drop each user's seen items (when ``seen`` is given)
    device: str = "cpu"  # "cpu" | "cuda" (local backend)
    dtype: str = "float32"  # matmul precision: float32 | bfloat16 | float16 (GPU)
    num_workers: int = 2  # Ray actors scoring in parallel

    def __post_init__(self) -> None:
        for name in ("k", "user_block", "item_block", "num_workers"):
            if int(getattr(self, name)) < 1:
                raise DataError(f"{name} must be >= 1, got {getattr(self, name)!r}", column=name)
        if self.dtype not in DTYPES:
            raise DataError(f"dtype must be one of {DTYPES}, got {self.dtype!r}", column="dtype")
        if self.device not in ("cpu", "cuda"):
            raise DataError(f"device must be 'cpu' or 'cuda', got {self.device!r}", column="device")


# ---------------------------------------------------------------------- inputs
def history_vectors(
    item_vecs: np.ndarray, histories: Sequence[np.ndarray], normalize: bool = True
) -> np.ndarray:
    """User vectors as the mean of their history's item vectors (zeros for no history)."""
    item_vecs = np.asarray(item_vecs, dtype=np.float32)
    lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    flat = (
        np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
        if lengths.sum()
        else np.empty(0, np.int64)
    )
    if flat.size and (flat.min() < 0 or flat.max() >= len(item_vecs)):
        raise DataError(
            f"history item ids must be in [0, {len(item_vecs)}), "
            f"got {int(flat.min())}..{int(flat.max())}",
            column="histories",
        )
    out = np.zeros((len(histories), item_vecs.shape[1]), dtype=np.float32)
    np.add.at(out, np.repeat(np.arange(len(histories)), lengths), item_vecs[flat])
    out /= np.maximum(lengths, 1)[:, None]
    if normalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def to_csr(seen: Sequence[np.ndarray] | None, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """Ragged per-user item lists -> (indptr, indices), the form shipped to workers."""
    if seen is None:
        return np.zeros(n_users + 1, np.int64), np.empty(0, np.int64)
    if len(seen) != n_users:
        raise DataError(f"seen has {len(seen)} rows for {n_users} users", column="seen")
    lengths = np.fromiter((len(s) for s in seen), dtype=np.int64, count=n_users)
    indptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    indices = (
        np.concatenate([np.asarray(s, dtype=np.int64) for s in seen])
        if indptr[-1]
        else np.empty(0, np.int64)
    )
    return indptr, indices


def _check(user_vecs: np.ndarray, item_vecs: np.ndarray) -> None:
    if user_vecs.ndim != 2 or item_vecs.ndim != 2:
        raise DataError(
            f"user and item vectors must be 2-D, got shapes {user_vecs.shape} and {item_vecs.shape}"
        )
    if user_vecs.shape[1] != item_vecs.shape[1]:
        raise DataError(
            f"user vectors have d={user_vecs.shape[1]} but item vectors d={item_vecs.shape[1]}"
        )
    if len(item_vecs) == 0:
        raise DataError("no items to score")


# ---------------------------------------------------------------------- kernel
def _select(s, k: int):
    """Column positions of each row's ``k`` largest values, ascending; among equal values
    the leftmost win (so when columns are ordered by item id, ties go to smaller ids)."""
    import torch

    kth = torch.topk(s, k, dim=1).values[:, -1:]
    above, tied = s > kth, s == kth
    room = k - above.sum(1, keepdim=True)
    crowded = (tied.sum(1, keepdim=True) > room).squeeze(1).nonzero().squeeze(1)
    if len(crowded):  # rows with more ties at the k-th value than places left: leftmost win
        t = tied[crowded]
        tied[crowded] = t & (t.cumsum(1) <= room[crowded])
    return (above | tied).nonzero()[:, 1].view(s.shape[0], k)


def topk_block(
    user_vecs: np.ndarray,
    items,
    k: int,
    item_block: int,
    seen: tuple[np.ndarray, np.ndarray] | None = None,
    device: str = "cpu",
    dtype: str = "float32",
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (item ids int64, scores float32), each (len(user_vecs), k), best first.

    ``items``: (n_items, d) numpy array or a torch tensor already on ``device`` in ``dtype``.
    ``seen``: CSR (indptr, indices) over exactly these users; those items get -inf (and are
    returned only when a user has fewer than k unseen items, with score -inf).
    """
    import torch

    tdtype = getattr(torch, dtype)
    if not torch.is_tensor(items):
        items = torch.as_tensor(np.asarray(items, dtype=np.float32)).to(device, tdtype)
    n_items = int(items.shape[0])
    k = min(k, n_items)
    users = torch.as_tensor(np.asarray(user_vecs, dtype=np.float32)).to(device, tdtype)
    b = users.shape[0]
    best_s = torch.full((b, k), -torch.inf, device=device)
    best_i = torch.zeros((b, k), dtype=torch.long, device=device)
    rows = cols = None
    if seen is not None and len(seen[1]):
        indptr, indices = seen
        rows = torch.as_tensor(np.repeat(np.arange(b), np.diff(indptr)), device=device)
        cols = torch.as_tensor(indices, device=device)
    for start in range(0, n_items, item_block):
        chunk = items[start : start + item_block]
        s = (users @ chunk.T).float()
        if rows is not None:
            inside = (cols >= start) & (cols < start + chunk.shape[0])
            s[rows[inside], cols[inside] - start] = -torch.inf
        pos = _select(s, min(k, s.shape[1]))
        cand_s = torch.cat([best_s, torch.gather(s, 1, pos)], 1)
        cand_i = torch.cat([best_i, pos + start], 1)  # item ids ascending along each row
        pos = _select(cand_s, k)
        best_s, best_i = torch.gather(cand_s, 1, pos), torch.gather(cand_i, 1, pos)
    ids, scores = best_i.cpu().numpy(), best_s.cpu().numpy()
    order = np.lexsort((ids, -scores), axis=-1)  # score desc, then item id asc
    return np.take_along_axis(ids, order, 1), np.take_along_axis(scores, order, 1)


def to_frame(
    users: np.ndarray,
    ids: np.ndarray,
    scores: np.ndarray,
    user_ids: np.ndarray | None = None,
    item_ids: np.ndarray | None = None,
) -> pd.DataFrame:
    """Long table (user_id, item_id, score, rank) from per-user top-k arrays; rows with score
    -inf (seen items used as filler) are dropped. Raw ids when ``user_ids``/``item_ids`` map
    internal ids to them, else the internal ints."""
    k = ids.shape[1]
    u = np.repeat(np.asarray(users), k)
    it = ids.reshape(-1)
    sc = scores.reshape(-1).astype(np.float32)
    rank = np.tile(np.arange(1, k + 1, dtype=np.int32), len(users))
    keep = np.isfinite(sc)
    u, it, sc, rank = u[keep], it[keep], sc[keep], rank[keep]
    return pd.DataFrame(
        {
            "user_id": np.asarray(user_ids)[u] if user_ids is not None else u,
            "item_id": np.asarray(item_ids)[it] if item_ids is not None else it,
            "score": sc,
            "rank": rank,
        }
    )


# ---------------------------------------------------------------------- executors
def score_local(
    user_vecs: np.ndarray,
    item_vecs: np.ndarray,
    config: BatchScoringConfig,
    seen: Sequence[np.ndarray] | None = None,
    user_ids: np.ndarray | None = None,
    item_ids: np.ndarray | None = None,
) -> pd.DataFrame:
    """Score every user in this process; returns the long table (see module docstring)."""
    import torch

    user_vecs, item_vecs = np.asarray(user_vecs), np.asarray(item_vecs)
    _check(user_vecs, item_vecs)
    indptr, indices = to_csr(seen if config.exclude_seen else None, len(user_vecs))
    items = torch.as_tensor(item_vecs.astype(np.float32, copy=False)).to(
        config.device, getattr(torch, config.dtype)
    )
    frames = []
    for lo in range(0, len(user_vecs), config.user_block):
        hi = min(lo + config.user_block, len(user_vecs))
        block_seen = (indptr[lo : hi + 1] - indptr[lo], indices[indptr[lo] : indptr[hi]])
        ids, scores = topk_block(
            user_vecs[lo:hi],
            items,
            config.k,
            config.item_block,
            block_seen,
            config.device,
            config.dtype,
        )
        frames.append(to_frame(np.arange(lo, hi), ids, scores, user_ids, item_ids))
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else to_frame(
            np.empty(0, np.int64), np.empty((0, 0), np.int64), np.empty((0, 0), np.float32)
        )
    )


class _RayScorer:
    """A Ray Data actor: holds the shared arrays (zero-copy from the object store)."""

    def __init__(self, refs: list, config: dict) -> None:
        import ray
        import torch

        torch.set_num_threads(1)  # one CPU per actor: parallelism comes from the actor pool
        self.items, self.users, self.indptr, self.indices, self.user_ids, self.item_ids = ray.get(
            refs
        )
        self.config = BatchScoringConfig(**config)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        users = np.asarray(batch["data"], dtype=np.int64)
        starts, ends = self.indptr[users], self.indptr[users + 1]
        sub_ptr = np.r_[0, np.cumsum(ends - starts)]
        sub_idx = (
            np.concatenate([self.indices[s:e] for s, e in zip(starts, ends, strict=True)])
            if sub_ptr[-1]
            else np.empty(0, np.int64)
        )
        c = self.config
        ids, scores = topk_block(
            self.users[users], self.items, c.k, c.item_block, (sub_ptr, sub_idx), "cpu", "float32"
        )
        df = to_frame(users, ids, scores, self.user_ids, self.item_ids)
        out = {col: df[col].to_numpy() for col in df.columns}
        out["_user"] = np.repeat(users, np.isfinite(scores).sum(1))  # internal id, for order
        return out


def score_ray(
    user_vecs: np.ndarray,
    item_vecs: np.ndarray,
    config: BatchScoringConfig,
    seen: Sequence[np.ndarray] | None = None,
    user_ids: np.ndarray | None = None,
    item_ids: np.ndarray | None = None,
    output: str | Path | None = None,
) -> pd.DataFrame | Path:
    """Score every user with Ray Data (CPU actors). Uses the running Ray cluster, or starts a
    local one (``ray.init()`` first to choose its size). Returns the long table, or, with
    ``output``, writes a Parquet directory and returns its path."""
    try:
        import ray
        import ray.data
    except ImportError as e:  # pragma: no cover - depends on the extra
        raise ImportError('the Ray backend needs the extra: pip install "instructrec[ray]"') from e

    user_vecs, item_vecs = np.asarray(user_vecs, np.float32), np.asarray(item_vecs, np.float32)
    _check(user_vecs, item_vecs)
    indptr, indices = to_csr(seen if config.exclude_seen else None, len(user_vecs))
    refs = [ray.put(x) for x in (item_vecs, user_vecs, indptr, indices, user_ids, item_ids)]
    n_blocks = max(1, -(-len(user_vecs) // config.user_block))
    # user ids as in-memory blocks: no read tasks competing with the actors for CPUs
    ds = ray.data.from_numpy(np.array_split(np.arange(len(user_vecs)), n_blocks))
    cfg = {**config.__dict__, "device": "cpu", "dtype": "float32"}
    pool = ray.data.ActorPoolStrategy(size=min(config.num_workers, n_blocks))
    scored = ds.map_batches(
        _RayScorer,
        fn_constructor_kwargs={"refs": refs, "config": cfg},
        batch_size=config.user_block,
        batch_format="numpy",
        compute=pool,
        num_cpus=1,
    )
    if output is not None:
        scored.drop_columns(["_user"]).write_parquet(str(output))
        return Path(output)
    df = scored.to_pandas().sort_values(["_user", "rank"], kind="stable", ignore_index=True)
    # Arrow-backed columns -> the plain numpy dtypes the local path returns
    return pd.DataFrame({c: df[c].to_numpy() for c in ("user_id", "item_id", "score", "rank")})


def batch_score(
    user_vecs: np.ndarray,
    item_vecs: np.ndarray,
    config: BatchScoringConfig | None = None,
    seen: Sequence[np.ndarray] | None = None,
    user_ids: np.ndarray | None = None,
    item_ids: np.ndarray | None = None,
    backend: str = "local",
    output: str | Path | None = None,
) -> pd.DataFrame | Path:
    """Top-k items for every user: ``backend`` "local" (this process) or "ray" (Ray Data).

    ``user_vecs`` (n_users, d) and ``item_vecs`` (n_items, d): float arrays, row i = internal
    id i. ``seen``: per user, internal item ids to exclude. ``user_ids``/``item_ids``: raw ids
    for the output. ``output``: Parquet path (local: one file; Ray: a directory).
    """
    config = config or BatchScoringConfig()
    if backend == "ray":
        return score_ray(user_vecs, item_vecs, config, seen, user_ids, item_ids, output)
    if backend != "local":
        raise DataError(f"backend must be 'local' or 'ray', got {backend!r}", column="backend")
    df = score_local(user_vecs, item_vecs, config, seen, user_ids, item_ids)
    if output is None:
        return df
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(output, index=False)
    return Path(output)
