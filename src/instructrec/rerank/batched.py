"""Batched answers: many requests share one first-stage pass and one reranker forward.

`answer_many(rec, requests)` gives, per `Request`, the `Answer` that `Recommender.answer`
gives for it alone (the same items in the same order; scores equal up to the rounding of
batched matrix products, well under 1e-6), or the exception that request raises alone. The
service's micro-batcher (`instructrec.serving.batcher`) calls it with the requests that
arrived within a few milliseconds of each other.

What is shared across a batch:

1. the first stage: the retriever's ``score_all`` runs once over all histories
   (`candidates.instruction_candidates`, grouped by candidate depth); when the retriever is
   also a prior (the shipped SASRec), its candidates' prior scores are read from those rows;
2. the query tower: each distinct query text is encoded once, and kept in a bounded LRU
   cache (`QueryCache`): the same text serves the dense candidate channel and the head, and
   repeated requests ("a light comedy" for the same kind of history) skip the tower;
3. the item vectors of the whole catalogue (text + projected CF and attribute vectors: frozen
   at inference) are computed once per model, not per request;
4. the prior retrievers score every request's candidates in one call each, and the model
   scores all rows in one `models.scoring.score_batch` call (the one scoring path, with the
   cached query vectors; rows padded to the longest list; the linear head scores each
   candidate on its own, so padding cannot change a valid candidate's score).

Anything that fails on the shared path (a reranker of another kind, a listwise head, an
unexpected error) falls back to answering each request on its own, so one bad request never
fails the others. Everything runs under `torch.inference_mode`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.errors import DataError
from .batch_cache import QueryCache, memo_scores
from .candidates import (
    N_MATCH,
    CandidateSet,
    given_candidates,
    instruction_candidates,
    popularity,
)

DENSE_CACHE_SIZE = 1024  # distinct query texts whose catalogue score rows are kept (LRU)


@dataclass
class Request:
    """The arguments of one `Recommender.answer` call."""

    user: str | None = None
    instruction: str | None = None
    n: int = 10
    candidates: list | None = None
    history: list | None = None
    exclude_seen: bool = True
    template: str | None = None

    def answer(self, rec) -> Any:
        """The unbatched answer (the reference the batched path must equal)."""
        return rec.answer(
            self.user,
            self.instruction,
            self.n,
            self.candidates,
            self.history,
            self.exclude_seen,
            self.template,
        )


@dataclass
class _Row:
    """One request on the shared path."""

    index: int  # position in the caller's list
    uid: int
    hist: np.ndarray  # int64 internal ids, oldest first
    text: str | None
    given: np.ndarray | None
    seen: np.ndarray
    n: int
    template: str | None
    cset: CandidateSet | None = None  # one row, width = its own candidate count
    head: int = 0  # how many candidates the reranker scores
    query: str | None = None  # the reranker's query text


def _encoder_state(reranker) -> dict | None:
    """The shared-path state of an encoder `InstructionReranker` with a linear head (query
    cache, all item vectors, the head's query projection), cached on the reranker; None for
    any other reranker (those answer request by request)."""
    if reranker is None:
        return None
    state = reranker.__dict__.get("_batched")
    if state is not None:
        return state or None
    from ..models.heads import LinearHead

    scorer = getattr(reranker, "scorer", None)
    model = getattr(scorer, "model", None)
    ok = (
        model is not None
        and hasattr(model, "encode_query")
        and hasattr(reranker, "queries")
        and hasattr(reranker, "prior_features")
        and type(model.head) is LinearHead
    )
    if not ok:
        reranker.__dict__["_batched"] = {}
        return None
    import torch

    model.eval()
    with torch.inference_mode():
        vecs = model.item_vectors(torch.arange(len(model.item_vecs), device=model.item_vecs.device))
    state = {
        "cache": QueryCache(scorer),
        "vecs": vecs,
        "model": model,
        "dense": OrderedDict(),  # query text -> its dense row over the catalogue
        "lock": threading.Lock(),
    }
    reranker.__dict__["_batched"] = state
    return state


class _Dense:
    """Stands in for the reranker in `instruction_candidates`: hands out precomputed
    instruction-item scores (rows in order), so each query is encoded once."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows, self.at = rows, 0

    def instruction_item_scores(self, histories, intentions, templates) -> np.ndarray:
        out = self.rows[self.at : self.at + len(histories)]
        self.at += len(histories)
        return out


def _prepare(rec, i: int, req: Request) -> _Row:
    if req.n < 1:
        raise DataError(f"n must be >= 1, got {req.n}")
    uid = None
    if req.history is None and req.user is not None:  # a known user: a dict lookup
        ds = rec.dataset
        index = rec.__dict__.get("_user_index")
        if index is None or index[0] is not ds:
            index = rec.__dict__["_user_index"] = (
                ds,
                {str(u): j for j, u in enumerate(ds.user_ids)},
            )
        uid = index[1].get(str(req.user))
    if uid is not None:
        hist = rec.sequences.get(uid, np.empty(0, np.int32))
    else:  # anything else (and an unknown user's error) as `Recommender.answer`
        uid, hist = rec.history_of(req.user, req.history, req.instruction)
    ins = req.instruction
    text = str(ins).strip() if ins and str(ins).strip() else None
    given = None
    if req.candidates is not None:
        given = rec.dataset.item_index([str(c) for c in req.candidates])
    hist = np.asarray(hist, np.int64)
    seen = hist if req.exclude_seen else np.empty(0, np.int64)
    return _Row(i, uid, hist, text, given, seen, req.n, req.template)


def answer_many(rec, requests: list[Request]) -> list[Any]:
    """Per request, its `Answer` or the exception it raises (module docstring)."""
    import torch

    out: list[Any] = [None] * len(requests)
    rows: list[_Row] = []
    for i, req in enumerate(requests):
        try:
            rows.append(_prepare(rec, i, req))
        except Exception as e:  # this request alone fails; the others go on
            out[i] = e
    try:
        with torch.inference_mode():
            answers = _answer_rows(rec, rows)
        for row, ans in zip(rows, answers, strict=True):
            out[row.index] = ans
    except Exception:  # the shared path failed: answer each request on its own
        for row in rows:
            try:
                out[row.index] = requests[row.index].answer(rec)
            except Exception as e:
                out[row.index] = e
    return out


def _answer_rows(rec, rows: list[_Row]) -> list:
    from .candidates import DEPTH as INSTRUCTION_DEPTH
    from .explain import explain_answer

    if not rows:
        return []
    rr = rec.reranker
    state = _encoder_state(rr)
    if rr is not None and getattr(rr, "dataset", 0) is None:
        rr.dataset = rec.dataset
    pop = popularity(rec)
    first = memo_scores(rec.retriever)  # its catalogue scores serve the candidates and its prior
    # query texts (the reranker's reading of each request) and their vectors, once each
    qvec = {}
    if state is not None:
        for r in rows:
            r.query = rr.queries([r.hist], [r.text] if r.text else None, r.template)[0]
        texts = list(dict.fromkeys(r.query for r in rows))
        qvec = dict(zip(texts, state["cache"](texts), strict=True))
    # 1. candidates: one first-stage pass per group of equal depth
    groups: dict[tuple, list[_Row]] = {}
    for r in rows:
        if r.given is not None:
            r.cset = given_candidates(
                rec.dataset, first, max(r.uid, 0), r.hist, r.given, r.text, r.seen, pop
            )
        else:
            wide = r.text is not None
            depth = max(r.n, INSTRUCTION_DEPTH if wide else rec.rerank_depth)
            tmpl = None if state is not None else r.template  # other rerankers: per template
            groups.setdefault((wide, depth, tmpl), []).append(r)
    for (wide, depth, _), grp in groups.items():
        dense_src = rr if wide else None
        if wide and state is not None:
            dense_src = _Dense(_dense_rows(state, qvec, [r.query for r in grp]))
        cs = instruction_candidates(
            rec.dataset, first,
            np.array([max(r.uid, 0) for r in grp]), [r.hist for r in grp],
            [r.text for r in grp], seen=[r.seen for r in grp], reranker=dense_src,
            templates=grp[0].template if not isinstance(dense_src, _Dense) else None,
            depth=depth, n_match=N_MATCH if wide else 0, popularity=pop,
        )  # fmt: skip
        for j, r in enumerate(grp):
            r.cset = _one_row(cs, j)
    # 2. reranker scores: one forward for every row (or per request for other rerankers)
    scored: dict[int, np.ndarray] = {}
    todo = []
    for r in rows:
        k = r.cset.items.shape[1]
        if rr is not None and k:
            r.head = k if (r.text or r.given is not None) else min(rec.rerank_depth, k)
            todo.append(r)
    if todo and state is not None:
        scored = _score_rows(rec, state, qvec, todo, first)
    else:
        for r in todo:  # a reranker without the shared path: as `score_request` does
            users = np.array([max(r.uid, 0)])
            scored[id(r)] = rec.score_candidates(
                users, r.cset.items[:, : r.head], [r.hist], [r.text] if r.text else None,
                r.template,
            )[0]  # fmt: skip
    # 3. compose as `candidates.score_request`, then explain
    answers = []
    for r in rows:
        raw = r.cset.base[0].astype(np.float64)
        scores = raw
        if id(r) in scored:
            rs = np.asarray(scored[id(r)], np.float32).astype(np.float64)
            tail = raw[r.head :]
            top = tail[np.isfinite(tail)].max() if np.isfinite(tail).any() else 0.0
            raw = np.concatenate([rs, tail])
            scores = np.concatenate([rs - rs.min() + 1.0 + top, tail])
        answers.append(explain_answer(rec, r.cset, scores, raw, r.head, r.n, r.hist, r.uid, r.text))
    return answers


def _dense_rows(state: dict, qvec: dict, texts: list[str]) -> np.ndarray:
    """(m, n_items) <W q, v_i> of each query text, as `candidates.dense_scores` (kept in a
    bounded LRU cache by text: a row depends on the text alone)."""
    import torch

    cache: OrderedDict = state["dense"]
    with state["lock"]:
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
    if missing:
        head = state["model"].head
        proj = getattr(head, "q_proj", None)
        if proj is None:
            proj = getattr(head, "q_match", None)
        q = torch.stack([qvec[t] for t in missing])
        if proj is not None:
            q = proj(q)
        rows = (q @ state["vecs"].T).float().cpu().numpy()
        with state["lock"]:
            for t, row in zip(missing, rows, strict=True):
                cache[t] = row
    with state["lock"]:
        out = np.stack([cache[t] for t in texts])
        for t in texts:
            cache.move_to_end(t)
        while len(cache) > DENSE_CACHE_SIZE:
            cache.popitem(last=False)
    return out


def _one_row(cs: CandidateSet, j: int) -> CandidateSet:
    """Row ``j`` of ``cs`` as a one-row set as wide as its own candidates."""
    m = int(cs.valid[j].sum())
    sl = (slice(j, j + 1), slice(0, m))
    return CandidateSet(
        cs.items[sl].copy(),
        cs.valid[sl].copy(),
        cs.grade[sl].copy(),
        cs.source[sl].copy(),
        cs.base[sl].copy(),
        [cs.parsed[j]],
        cs.n_matching[j : j + 1].copy(),
        cs.n_unseen[j : j + 1].copy(),
    )


def _score_rows(rec, state: dict, qvec: dict, rows: list[_Row], first) -> dict[int, np.ndarray]:
    """Reranker scores of every row's first ``head`` candidates in one `score_batch` call
    (the one scoring path, `models.scoring`); ``first``: the retriever as this batch scores
    it (`memo_scores`), standing in for it among the priors."""
    import torch

    from ..models import scoring
    from ..models.encoder_config import pad_histories

    rr, model = rec.reranker, state["model"]
    n, kmax = len(rows), max(r.head for r in rows)
    cands = np.zeros((n, kmax), np.int64)
    for i, r in enumerate(rows):
        c = r.cset.items[0, : r.head]
        cands[i] = c[0]
        cands[i, : r.head] = c
    users = np.array([max(r.uid, 0) for r in rows])
    hists = [r.hist for r in rows]
    priors = [first if p is rec.retriever else p for p in rec.priors]
    prior = rec.prior_scores(users, cands, hists, priors)  # (n, kmax, P): one call each
    z = np.zeros((n, kmax, model.config.n_prior), np.float32)
    for i, r in enumerate(rows):  # z-scored within each row's own list, as unbatched
        h = r.head
        z[i, :h] = rr.prior_features(
            cands[i : i + 1, :h], [r.text] if r.text else None, prior[i : i + 1, :h]
        )[0]
    batch = {  # the query vectors come from the cache: the tower is skipped
        "query": torch.stack([qvec[r.query] for r in rows]),
        "cands": torch.as_tensor(cands),
        "hist": torch.as_tensor(pad_histories(hists, rr.config.history_len)),
        "prior": torch.as_tensor(z),
    }
    s = scoring.score_batch(model, batch).float().cpu().numpy()
    return {id(r): s[i, : r.head] for i, r in enumerate(rows)}
