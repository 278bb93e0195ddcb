"""Render instructions from templates: the function the reranker calls at serving and eval time.

`render` picks, per row, a template of the right InstructRec slot (P1 when there is a history,
P0 otherwise; I0 without an intention, I2 for a free-text one unless told it is vague) with a
seeded choice among the allowed set, and fills it with display titles, the intention and the
preference. The same vectorised machinery (`render_rows`) serves the offline builder.

    texts = render(ds, histories=[np.array([3, 7])], intentions=["a 1990s comedy"],
                   candidates=[np.array([5, 9, 2])], with_candidates=True)
"""

from __future__ import annotations

import weakref
import zlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from instructrec.data.dataset import Dataset
from instructrec.data.errors import DataError
from instructrec.data.split import HISTORY_LEN

from .assemble import Lit, PerRow, StringTable, assemble, join_list
from .catalogue import Slot, Template, TemplateCatalogue, parse_pieces
from .titles import display_title, domain_words

LIST_SEP = {"T1": " or ", "default": "; "}
_TITLES: dict[int, tuple[weakref.ref, int, tuple]] = {}


def _title_parts(dataset: Dataset):
    """Arrow arrays of titles, "title; " and "title or " (cached per item table)."""
    items = dataset.items
    hit = _TITLES.get(id(items))
    if hit is not None and hit[0]() is items and hit[1] == len(items):
        return hit[2]
    titles = pa.array(display_title(dataset), type=pa.large_string())
    seps = {
        k: pc.binary_join_element_wise(
            titles, pa.scalar(v, pa.large_string()), pa.scalar("", pa.large_string())
        )
        for k, v in LIST_SEP.items()
    }
    parts = (titles, seps)
    _TITLES[id(items)] = (weakref.ref(items), len(items), parts)
    weakref.finalize(items, _TITLES.pop, id(items), None)  # drop with the frame
    return parts


class RowData:
    """Everything a template may ask for, for ``n`` rows (ragged lists as flat + counts)."""

    def __init__(
        self,
        dataset: Dataset,
        n: int,
        hist_flat=None,
        hist_counts=None,
        cand_flat=None,
        cand_counts=None,
        intention=None,
        preference=None,
        item=None,
        context=None,
    ) -> None:
        self.dataset, self.n = dataset, n
        z = np.zeros(n, np.int64)
        self.hist_flat = np.asarray(hist_flat if hist_flat is not None else [], np.int64)
        self.hist_counts = np.asarray(hist_counts if hist_counts is not None else z, np.int64)
        self.cand_flat = np.asarray(cand_flat if cand_flat is not None else [], np.int64)
        self.cand_counts = np.asarray(cand_counts if cand_counts is not None else z, np.int64)
        self.intention, self.preference, self.context = intention, preference, context
        self.item = None if item is None else np.asarray(item, np.int64)


def _take_ragged(flat: np.ndarray, counts: np.ndarray, rows: np.ndarray):
    ptr = np.r_[0, np.cumsum(counts)]
    c = counts[rows]
    idx = np.repeat(ptr[rows] - np.r_[0, np.cumsum(c)[:-1]], c) + np.arange(int(c.sum()))
    return flat[idx], c


def render_rows(
    data: RowData, templates: list[Template], choice: np.ndarray, with_candidates: bool = True
) -> tuple[pa.Array, pa.Array]:
    """(instruction, query) Arrow string arrays; row r uses ``templates[choice[r]]``.

    Rows are assembled per template; when ``choice`` is sorted (the builder sorts it) no
    reordering is needed afterwards.
    """
    ds = data.dataset
    titles, seps = _title_parts(ds)
    table = StringTable()
    plain = table.add(titles)
    sep_ids = {k: table.add(v) for k, v in seps.items()}
    sub = domain_words(ds)  # {noun}, {consumed}, ...: the same text on every row
    per_row = {}
    for name in ("intention", "preference", "context"):
        vals = getattr(data, name)
        if vals is not None:
            per_row[name] = table.add(np.asarray(vals, dtype=object))
    used = np.flatnonzero(np.bincount(choice, minlength=len(templates))) if len(choice) else []
    for t_idx in used:  # every literal first, so the table is concatenated only once
        for text in (templates[int(t_idx)].text, templates[int(t_idx)].choices):
            for kind, val in parse_pieces(text):
                if kind == "lit":
                    table.literal(val)
    for val in sub.values():
        table.literal(val)
    queries, instrs, order = [], [], []
    for t_idx in used:
        rows = np.flatnonzero(choice == t_idx)
        tpl = templates[int(t_idx)]

        def pieces_of(text: str, tpl=tpl, rows=rows, sub=sub):
            out = []
            if not text:
                return out
            for kind, val in parse_pieces(text):
                if kind == "lit" or val in sub:
                    out.append(Lit(table.literal(val if kind == "lit" else sub[val])))
                elif val == "history":
                    f, c = _take_ragged(data.hist_flat, data.hist_counts, rows)
                    out.append(join_list(f, c, sep_ids["default"], plain))
                elif val == "candidates":
                    f, c = _take_ragged(data.cand_flat, data.cand_counts, rows)
                    sep = sep_ids["T1"] if tpl.T == "T1" else sep_ids["default"]
                    out.append(join_list(f, c, sep, plain))
                elif val == "item":
                    out.append(PerRow(plain[data.item[rows]]))
                else:
                    if val not in per_row:
                        raise ValueError(f"template {tpl.id!r} needs {{{val}}} but none was given")
                    out.append(PerRow(per_row[val][rows]))
            return out

        q_pieces = pieces_of(tpl.text)
        if "context" in per_row:
            q_pieces = [PerRow(per_row["context"][rows])] + q_pieces
        q = assemble(table, q_pieces, len(rows))
        if with_candidates and tpl.choices:
            c = assemble(table, pieces_of(tpl.choices), len(rows))
            ins = pc.binary_join_element_wise(q, c, pa.scalar(" ", pa.large_string()))
        else:
            ins = q
        queries.append(q)
        instrs.append(ins)
        order.append(rows)
    if not order:
        empty = pa.array([], pa.large_string())
        return empty, empty
    instr, query = pa.concat_arrays(instrs), pa.concat_arrays(queries)
    if len(order) > 1 and np.any(np.diff(choice) < 0):  # back to row order
        inv = np.empty(data.n, np.int64)
        inv[np.concatenate(order)] = np.arange(data.n)
        take = pa.array(inv)
        instr, query = instr.take(take), query.take(take)
    return instr, query


def _fallback(task: str) -> Template:
    choices = {
        "T0": "{Noun}: {candidates}.",
        "T1": "{candidates}?",
        "T3": "Candidates: {candidates}.",
    }.get(task, "")
    text = "Recommend a popular {noun}." + (" Answer Yes or No." if task == "T0" else "")
    return Template("fallback-p0i0", ("P0", "I0", task), text, choices, False)


def slot_seed(seed: int, slot: Slot | str, salt: str = "") -> list[int]:
    """A stable seed sequence for one slot (independent of Python's hash randomisation)."""
    key = "".join(slot) if not isinstance(slot, str) else slot
    return [int(seed), zlib.crc32((key + salt).encode())]


def render(
    dataset: Dataset,
    histories: list[np.ndarray],
    intentions: list[str | None] | None = None,
    task: str = "T3",
    template_ids: str | list[str] = "seen",
    preferences: list[str] | None = None,
    candidates: list[np.ndarray] | None = None,
    seed: int = 0,
    with_candidates: bool = False,
    vague: bool = False,
    catalogue: TemplateCatalogue | None = None,
    query: RerankerQuery | None = None,
) -> list[str]:
    """One instruction per row, from internal-id ``histories`` (oldest first; the last 20 used).

    The slot per row: P2 if a preference text is given, else P1 if the history is non-empty,
    else P0; I0 without an intention, else I1 if ``vague`` else I2; task ``task``. The template
    is a seeded choice among ``template_ids`` ("seen", "held_out", "all" or ids) of that slot;
    when the set has none for a slot, the nearest slot with templates is used (I2 <-> I1,
    P2 -> P1 -> P0). ``with_candidates`` appends the candidate list (T0/T1/T3).

    ``query``: the reranker's query texts (T3 without the candidate list), as it is trained and
    served: see `RerankerQuery` (``dataset`` may then be None: the titles come with it).
    """
    cat = catalogue or TemplateCatalogue.default()
    if query is not None:
        return _reranker_queries(cat, query, histories, intentions, template_ids, preferences, seed)
    n = len(histories)
    allowed = cat.select(template_ids)
    intentions = list(intentions) if intentions is not None else [None] * n
    if len(intentions) != n or (preferences is not None and len(preferences) != n):
        raise ValueError("histories, intentions and preferences must have the same length")
    if candidates is not None and len(candidates) != n:
        raise ValueError("candidates must have one array per history")
    hist = [np.asarray(h, np.int64)[-HISTORY_LEN:] for h in histories]
    counts = np.array([len(h) for h in hist], np.int64)
    has_i = np.array([bool(x and str(x).strip()) for x in intentions])
    has_p = (
        np.array([bool(p and str(p).strip()) for p in preferences])
        if preferences is not None
        else np.zeros(n, bool)
    )
    wanted_i = "I1" if vague else "I2"
    by_slot: dict[Slot, list[Template]] = {}
    for t in allowed:
        by_slot.setdefault(t.slot, []).append(t)
    tpl_list: list[Template] = []
    choice = np.empty(n, np.int64)
    keys = np.where(has_p, 2, np.where(counts > 0, 1, 0)) * 2 + has_i
    for key in np.unique(keys):
        rows = np.flatnonzero(keys == key)
        p_order = {2: ["P2", "P1", "P0"], 1: ["P1", "P0"], 0: ["P0"]}[int(key) // 2]
        i_order = [wanted_i, "I1" if wanted_i == "I2" else "I2"] if key % 2 else ["I0"]
        slot = next(
            ((p, i, task) for p in p_order for i in i_order if by_slot.get((p, i, task))), None
        )
        if slot is None and key == 0:  # nothing known: a cold-start request without intention
            by_slot[("P0", "I0", task)] = [_fallback(task)]
            slot = ("P0", "I0", task)
        if slot is None:
            raise ValueError(
                f"no template of task {task} in {template_ids!r} fits rows with "
                f"preference {p_order[0]} and intention {i_order[0]}"
            )
        ts = by_slot[slot]
        rng = np.random.default_rng(slot_seed(seed, slot, "render"))
        choice[rows] = len(tpl_list) + rng.integers(0, len(ts), len(rows))
        tpl_list.extend(ts)
    flat = np.concatenate(hist) if n else np.empty(0, np.int64)
    cand_flat = cand_counts = None
    if candidates is not None:
        cl = [np.asarray(c, np.int64).reshape(-1) for c in candidates]
        cand_flat = np.concatenate(cl) if cl else np.empty(0, np.int64)
        cand_counts = np.array([len(c) for c in cl], np.int64)
    for name, arr in (("history", flat), ("candidate", cand_flat)):
        if arr is not None and len(arr) and (arr.min() < 0 or arr.max() >= dataset.n_items):
            bad = int(arr[(arr < 0) | (arr >= dataset.n_items)][0])
            raise DataError(
                f"{name} item {bad} is not an internal item id "
                f"(0..{dataset.n_items - 1}); map raw ids with dataset.item_index"
            )
    data = RowData(
        dataset,
        n,
        flat,
        counts,
        cand_flat,
        cand_counts,
        intention=np.array([str(x) if x else "" for x in intentions], dtype=object),
        preference=(
            np.array([str(p) if p else "" for p in preferences], dtype=object)
            if preferences is not None
            else None
        ),
    )
    if with_candidates and candidates is None and task in ("T0", "T1", "T3"):
        raise ValueError("with_candidates=True needs candidates")
    instr, query = render_rows(data, tpl_list, choice, with_candidates=with_candidates)
    return (instr if with_candidates else query).to_pylist()


@dataclass
class RerankerQuery:
    """How the instruction reranker words its queries (what a saved reranker keeps).

    ``titles``: display title per internal item id; ``words``: the domain fields ({noun},
    {consumed}, ...); the last ``history`` titles are written into the text, joined by ", "
    ("nothing yet" without any; with ``history=0`` the text says "the {nouns} in the
    history": the history reaches the model as item vectors and priors). ``slots``: one slot
    per row ("P1I2"...); without them P1I0 for a row without an intention and P1 with either
    intention family (vague or specific is not known) otherwise. The template of a row is a
    choice among ``template_ids`` of its slot keyed by crc32 of (seed, row if slots are
    given, intention, history length, last history item): the same request gets the same
    wording whatever batch it comes in. A template set without the row's slot falls back to
    its wording family (I0 or not), then to the slot's seen templates."""

    titles: np.ndarray
    words: dict
    history: int = 3
    slots: list[str] | None = None


def _reranker_queries(
    cat: TemplateCatalogue,
    query: RerankerQuery,
    histories,
    intentions,
    template_ids,
    preferences,
    seed: int,
) -> list[str]:
    pool = cat.select(template_ids or "seen")
    words, slots, qh = query.words, query.slots, query.history
    out = []
    for i, hist in enumerate(histories):
        intent = intentions[i] if intentions is not None else None
        pref = preferences[i] if preferences is not None else None
        if slots is not None:
            p, islot = slots[i][:2], slots[i][2:]
            cands = [t for t in pool if t.slot == (p, islot, "T3")]
        else:  # vague or specific is not known here: either wording family may carry it
            p, islot = "P1", ("I2" if intent else "I0")
            wanted = {"I1", "I2"} if intent else {"I0"}
            cands = [t for t in pool if t.P == "P1" and t.T == "T3" and t.I in wanted]
        if not cands:  # e.g. a template list of another slot: keep its wording family
            cands = [
                t for t in pool if t.T == "T3" and (t.I == "I0") == (islot == "I0")
            ] or cat.templates((p, islot, "T3"), held_out=False)
        hist_ids = np.asarray(hist, dtype=np.int64)[-qh:] if qh else []
        if qh:
            history = ", ".join(str(query.titles[j]) for j in hist_ids) or "nothing yet"
        else:
            history = f"the {words['nouns']} in the history"
        key = (
            f"{seed}|{i if slots is not None else ''}|{intent}|{len(hist)}|"
            f"{hist_ids[-1] if len(hist_ids) else -1}"
        )
        t = cands[zlib.crc32(key.encode()) % len(cands)]
        out.append(
            t.text.format(
                history=history,
                intention=intent or "",
                preference=pref or "",
                item="",
                candidates="",
                **words,
            )
        )
    return out
