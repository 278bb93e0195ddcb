"""RecBole benchmark-split files: a fixed leave-one-out split given by the files themselves.

RecBole's ``benchmark_filename`` format (used by UniSRec, LLMRank and InstructRec's Amazon
Games data) stores, per stage, one row per target with the history before it:

    NAME.train.inter / NAME.valid.inter / NAME.test.inter   (any subset)
        user_id:token <TAB> item_id_list:token_seq <TAB> item_id:token   (a header line first)
    NAME.item        item_id:token <TAB> title:token_seq [<TAB> more columns]
    *test-users*.txt optional: one user id per line, the users to evaluate on

The history is oldest first. Per user, the test history must equal the validation history
plus the validation target, and the validation history must equal the longest training
sequence (a train row's history plus target); every train row is a prefix of it.

`read_benchmark_split` builds the project's `Dataset` from each user's full sequence (history
plus targets) with synthetic timestamps 0, 1, 2, ... per user, so that `leave_one_out` on the
Dataset reproduces the files' split exactly (with valid and test files present): the CLI's
`make_split` and this reader agree. With only a test file the validation target is the last
item of the test history (what leave-one-out would pick); with only a valid file there are no
test rows. Titles are HTML-unescaped ("&amp;" -> "&"). When a rules file exists for NAME
(``title_rules/NAME.yaml``) item attributes are read from the titles (`title_attributes`).

The test-user list is kept as ``dataset.meta["test_users"]`` (raw ids, file order);
`restrict_users` keeps only some users' valid/test rows, and `make_benchmark_split` returns
the split restricted to those users with its candidate files drawn for the kept rows.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from .dataset import Dataset
from .errors import DataError
from .split import Split, add_candidates
from .title_attributes import apply_title_rules, domain_meta, load_title_rules, packaged_rules

STAGES = ("train", "valid", "test")
SEQ_FIELDS = ("user_id", "item_id_list", "item_id")


def find_benchmark(directory: str | Path, name: str | None = None) -> tuple[str, dict[str, Path]]:
    """(NAME, {stage: path}) of the benchmark files in ``directory``; a `DataError` if none,
    or if several NAMEs are present and ``name`` does not pick one."""
    directory = Path(directory)
    found: dict[str, dict[str, Path]] = {}
    for stage in STAGES:
        for p in sorted(directory.glob(f"*.{stage}.inter")):
            found.setdefault(p.name[: -len(f".{stage}.inter")], {})[stage] = p
    if name is not None:
        found = {k: v for k, v in found.items() if k == name}
    if not found:
        raise DataError(
            "no benchmark-split files (NAME.train/valid/test.inter)"
            + (f" named {name!r}" if name else ""),
            source=str(directory),
        )
    if len(found) > 1:
        raise DataError(
            f"several benchmark datasets here {sorted(found)}; pass name=", source=str(directory)
        )
    ((key, files),) = found.items()
    return key, files


def is_benchmark_dir(directory: str | Path) -> bool:
    """True when ``directory`` holds benchmark-split files and no plain NAME.inter for them."""
    directory = Path(directory)
    if not directory.is_dir():
        return False
    try:
        key, _ = find_benchmark(directory)
    except DataError:
        return False
    return not (directory / f"{key}.inter").exists()


def _header(line: str, path: Path) -> list[str]:
    return [c.split(":")[0].strip() for c in line.rstrip("\r\n").split("\t")]


def read_item_file(path: Path) -> pd.DataFrame:
    """The item table (str columns, ``title`` HTML-unescaped); `DataError` naming the line."""
    if not path.is_file():
        raise DataError("item file not found (NAME.item with item_id and title)", source=str(path))
    with open(path, encoding="utf-8-sig") as fh:
        lines = fh.read().splitlines()
    if not lines:
        raise DataError("empty item file", source=str(path))
    cols = _header(lines[0], path)
    if "item_id" not in cols:
        raise DataError(f"no item_id column in the header {cols}", source=str(path), line=1)
    rows = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != len(cols):
            raise DataError(
                f"{len(parts)} fields, the header has {len(cols)}", source=str(path), line=n
            )
        if not parts[cols.index("item_id")].strip():
            raise DataError("empty item id", source=str(path), line=n)
        rows.append(parts)
    items = pd.DataFrame(rows, columns=cols, dtype=object)
    items["item_id"] = items["item_id"].str.strip()
    dup = items["item_id"].duplicated().to_numpy()
    if dup.any():
        k = int(np.flatnonzero(dup)[0])
        raise DataError(f"duplicate item id {items['item_id'].iloc[k]!r}", source=str(path))
    if "title" in items.columns:
        items["title"] = items["title"].map(lambda t: html.unescape(t).strip())
    return items


def _read_rows(path: Path, item_index: dict[str, int]):
    """Yield (line, user, [history ids], target id) of a stage file, checking every field."""
    with open(path, encoding="utf-8-sig") as fh:
        first = fh.readline()
        cols = _header(first, path)
        missing = [c for c in SEQ_FIELDS if c not in cols]
        if missing:
            raise DataError(f"header lacks {missing} (found {cols})", source=str(path), line=1)
        iu, il, it = (cols.index(c) for c in SEQ_FIELDS)
        for n, line in enumerate(fh, start=2):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != len(cols):
                raise DataError(
                    f"{len(parts)} fields, the header has {len(cols)}", source=str(path), line=n
                )
            user, hist, target = parts[iu].strip(), parts[il].split(), parts[it].strip()
            if not user:
                raise DataError("empty user id", source=str(path), line=n)
            if not hist:
                raise DataError("empty item_id_list", source=str(path), line=n)
            if not target:
                raise DataError("empty target item_id", source=str(path), line=n)
            try:
                ids = [item_index[t] for t in hist]
                tid = item_index[target]
            except KeyError as e:
                raise DataError(
                    f"unknown item id {e.args[0]!r} (not in the item file)",
                    source=str(path),
                    line=n,
                ) from None
            yield n, user, ids, tid


def _stage_rows(path: Path, item_index: dict[str, int], stage: str) -> dict[str, tuple]:
    """user -> (line, history, target); train keeps the longest sequence per user."""
    out: dict[str, tuple] = {}
    for n, user, hist, tid in _read_rows(path, item_index):
        seq = hist + [tid]
        if user in out:
            if stage != "train":
                raise DataError(
                    f"user {user!r} has a second row (first on line {out[user][0]})",
                    source=str(path),
                    line=n,
                )
            prev = out[user][1] + [out[user][2]]
            short, long_ = (prev, seq) if len(prev) <= len(seq) else (seq, prev)
            if long_[: len(short)] != short:
                raise DataError(
                    f"user {user!r}: train rows are not prefixes of one sequence",
                    source=str(path),
                    line=n,
                )
            if len(seq) <= len(prev):
                continue
        out[user] = (n, hist, tid)
    return out


def _full_sequences(rows: dict[str, dict], files: dict[str, Path]):
    """Per user: (full sequence, index of the valid target or -1, of the test target or -1)."""
    users: list[str] = []
    seen: set[str] = set()
    for stage in ("valid", "test", "train"):
        for u in rows.get(stage, {}):
            if u not in seen:
                seen.add(u)
                users.append(u)
    out = []
    for u in users:
        tr, va, te = (rows.get(s, {}).get(u) for s in STAGES)
        if tr is not None and va is not None and va[1] != tr[1] + [tr[2]]:
            raise DataError(
                f"user {u!r}: the validation history is not the training sequence "
                f"(train line {tr[0]})",
                source=str(files["valid"]),
                line=va[0],
            )
        if va is not None and te is not None and te[1] != va[1] + [va[2]]:
            raise DataError(
                f"user {u!r}: the test history is not the validation history plus the validation "
                f"target (valid line {va[0]})",
                source=str(files["test"]),
                line=te[0],
            )
        if (
            te is not None
            and tr is not None
            and "valid" not in files
            and te[1][: len(tr[1]) + 1] != tr[1] + [tr[2]]
        ):
            raise DataError(
                f"user {u!r}: the test history does not start with the training sequence",
                source=str(files["test"]),
                line=te[0],
            )
        if te is not None:
            seq = te[1] + [te[2]]
            v = len(seq) - 2 if (va is not None or "valid" not in files) else -1
            out.append((u, seq, v, len(seq) - 1))
        elif va is not None:
            seq = va[1] + [va[2]]
            out.append((u, seq, len(seq) - 1, -1))
        else:
            out.append((u, tr[1] + [tr[2]], -1, -1))
    return out


def read_test_users(path: Path, dataset: Dataset) -> list[str]:
    """Raw user ids of a test-user list, checked against ``dataset`` (line of the first bad)."""
    known = set(dataset.user_ids.tolist())
    ids = []
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        u = line.strip()
        if not u:
            continue
        if u not in known:
            raise DataError(f"unknown user id {u!r}", source=str(path), line=n)
        ids.append(u)
    if len(set(ids)) != len(ids):
        raise DataError("a user id is listed twice", source=str(path))
    return ids


def read_benchmark_split(
    directory: str | Path, name: str | None = None, *, title_rules: str | Path | None = "auto"
) -> tuple[Dataset, Split]:
    """The `Dataset` and the files' fixed leave-one-out `Split` (no candidates yet).

    ``title_rules``: "auto" applies the packaged ``title_rules/NAME.yaml`` when there is one,
    a path applies that file, None none. ``dataset.meta["test_users"]`` holds the raw ids of
    a ``*test-users*.txt`` list when the folder has one.
    """
    directory = Path(directory)
    key, files = find_benchmark(directory, name)
    items = read_item_file(directory / f"{key}.item")
    item_index = {t: k for k, t in enumerate(items["item_id"].tolist())}
    rows = {stage: _stage_rows(p, item_index, stage) for stage, p in files.items()}
    seqs = _full_sequences(rows, files)
    lens = np.array([len(s) for _, s, _, _ in seqs], np.int64)
    starts = np.r_[0, np.cumsum(lens)[:-1]]
    ids = items["item_id"].to_numpy(dtype=object)
    inter = pd.DataFrame(
        {
            "user_id": np.repeat(np.array([u for u, *_ in seqs], dtype=object), lens),
            "item_id": ids[np.concatenate([np.asarray(s, np.int64) for _, s, _, _ in seqs])],
            "timestamp": (np.arange(lens.sum()) - np.repeat(starts, lens)).astype(np.float64),
        }
    )
    role = np.zeros(int(lens.sum()), np.int8)  # 0 train, 1 valid, 2 test
    for (_, _, v, t), s in zip(seqs, starts.tolist(), strict=True):
        if v >= 0:
            role[s + v] = 1
        if t >= 0:
            role[s + t] = 2
    meta: dict = {"format": "recbole-benchmark", "files": sorted(p.name for p in files.values())}
    rules_path = packaged_rules(key) if title_rules == "auto" else title_rules
    if rules_path is not None:
        rules = load_title_rules(rules_path)
        items = apply_title_rules(items, rules)
        meta.update(domain_meta(rules), title_rules=Path(rules_path).name)
    dataset = Dataset.from_frames(key, inter, items, source=str(directory), meta=meta)
    lists = sorted(directory.glob(f"{key}.test-users*.txt")) or sorted(
        directory.glob("*test-users*.txt")
    )
    if len(lists) > 1:
        raise DataError(f"several test-user lists {[p.name for p in lists]}", source=str(directory))
    if lists:
        dataset.meta["test_users"] = tuple(read_test_users(lists[0], dataset))
        dataset.meta["test_users_file"] = lists[0].name
    frames = {
        stage: dataset.interactions[role == k].reset_index(drop=True)
        for k, stage in enumerate(STAGES)
    }
    return dataset, Split(**frames, n_items=dataset.n_items, seed=0)


def benchmark_test_users(dataset: Dataset) -> np.ndarray | None:
    """Internal ids of the dataset's test-user list (None when it has none)."""
    raw = dataset.meta.get("test_users") if isinstance(dataset.meta, dict) else None
    return None if raw is None else dataset.user_index(list(raw))


def restrict_users(split: Split, user_ids) -> Split:
    """A new `Split` whose valid and test rows (and candidate rows) are those of ``user_ids``
    (internal ids); training rows are kept for every user."""
    keep = np.asarray(user_ids, np.int64)
    masks = {s: np.isin(split.frame(s)["user"].to_numpy(), keep) for s in ("valid", "test")}
    cands = {
        name: {s: arr[masks[s]] for s, arr in by_stage.items()}
        for name, by_stage in split.candidates.items()
    }
    return Split(
        train=split.train,
        valid=split.valid[masks["valid"]].reset_index(drop=True),
        test=split.test[masks["test"]].reset_index(drop=True),
        n_items=split.n_items,
        seed=split.seed,
        candidates=cands,
    )


def make_benchmark_split(
    directory: str | Path,
    seed: int = 0,
    users: str = "test-users",
    *,
    name: str | None = None,
    sets: dict[str, int] | None = None,
) -> tuple[Dataset, Split]:
    """(dataset, split) with candidate files (cand10/cand20 by default) drawn with ``seed``.

    ``users``: "test-users" keeps the valid/test rows of the folder's test-user list (a
    `DataError` when it has none) before drawing candidates; "all" keeps every user.
    Negatives are uniform over the items each user never interacted with (`add_candidates`).
    """
    if users not in ("test-users", "all"):
        raise ValueError(f"users must be 'test-users' or 'all', not {users!r}")
    dataset, split = read_benchmark_split(directory, name)
    split.seed = seed
    if users == "test-users":
        kept = benchmark_test_users(dataset)
        if kept is None:
            raise DataError("no *test-users*.txt list here; use users='all'", source=str(directory))
        split = restrict_users(split, kept)
    return dataset, add_candidates(dataset, split, sets, seed)
