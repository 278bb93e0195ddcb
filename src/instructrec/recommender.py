"""`Recommender`: a retriever that proposes candidates, optionally reranked by an
instruction-following scorer.

    rec = Recommender(dataset, retriever=SASRec(...), reranker=...)
    rec.fit(split)
    rec.recommend(user="42", instruction="a light comedy from the 90s", n=10)

Returns a DataFrame (item_id, readable title, year, genres, calibrated score, rank, reason);
``answer`` returns the same as explained objects (`instructrec.rerank.explain.Answer`). Users
unknown to training pass their history (``history=[raw item ids]``); a new visitor, only an
instruction. An instruction widens the candidates beyond the retriever's top N (the items of
the whole catalogue matching it, `instructrec.rerank.candidates`); seen items never return.

The reranker sees the collaborative signal as priors: the scores of ``priors`` (a list of
retrievers, the first stage's by default; SASRec + item-kNN + Pop in the quickstart) for every
candidate. ``score_candidates`` is the hook of the evaluation harness; ``from_config`` builds
everything from a typed `instructrec.config.RunConfig`.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .data.dataset import Dataset
from .data.errors import DataError
from .data.split import Split
from .recommender_files import load_recommender, save_recommender
from .retrieval.base import Retriever

if TYPE_CHECKING:
    from .rerank.explain import Answer

log = logging.getLogger(__name__)  # stage lines (the CLI shows them; instructrec.cli.progress)

RERANK_DEPTH = 20  # how many retrieved candidates the reranker reorders (LlamaRec's 20)
# an instruction's candidate set: `rerank.candidates.DEPTH` retriever items + matching + dense


class Recommender:
    """Retriever + optional reranker. ``reranker`` is any object with
    ``score_candidates(users, candidates, histories, intentions=None, templates=None)``
    returning an (n, k) array (see `instructrec.rerank.reranker.InstructionReranker`)."""

    def __init__(
        self,
        dataset: Dataset,
        retriever: Retriever,
        reranker: Any | None = None,
        rerank_depth: int = RERANK_DEPTH,
        priors: list[Retriever] | None = None,
        config: Any | None = None,
    ) -> None:
        self.dataset = dataset
        self.retriever = retriever
        self.reranker = reranker
        if reranker is not None and getattr(reranker, "dataset", 0) is None:
            reranker.dataset = dataset  # item attributes for its intent-match channel
        self.rerank_depth = rerank_depth
        self.priors = list(priors) if priors else [retriever]  # prior features, in order
        self.config = config  # the RunConfig it was built from (None when built by hand)
        self.sequences: dict[int, np.ndarray] = {}
        self.fit_info: dict[str, Any] = {}
        self.runtime = "torch"  # "numpy" when loaded with load(runtime="numpy"|"auto")

    @classmethod
    def from_config(cls, config: Any, dataset: Dataset | None = None) -> Recommender:
        """An unfitted Recommender as ``config`` (a `RunConfig`) describes; ``fit`` trains it."""
        from .config import make_retriever
        from .data.spec import load_data_spec

        dataset = dataset if dataset is not None else load_data_spec(config.data, where="data")
        retriever = make_retriever(config.retriever)
        priors = []
        for spec in config.priors:  # the first stage is reused, not fitted twice
            same = spec.name == config.retriever.name and spec.options == config.retriever.options
            priors.append(retriever if same else make_retriever(spec))
        texts = None
        for r in (retriever, *priors):
            if getattr(r, "needs_item_texts", False):  # a text retriever (titleknn)
                from .models.text_encoder import item_text_vectors
                from .rerank.rerank_features import item_texts

                texts = texts if texts is not None else item_texts(dataset)
                r.item_texts, r.text_encoder = texts, item_text_vectors
        return cls(dataset, retriever, priors=priors or [retriever], config=config)

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        split: Split,
        reranker_trainer: Any | None = None,
        output_dir: str | Path | None = None,
        resume: bool = False,
        on_wait=None,
    ) -> Recommender:
        """Fit the retriever and priors on ``split.train``; then the reranker: by
        ``reranker_trainer(self)`` if given, else as ``self.config`` says (if it has one;
        ``resume``: from the newest checkpoint in ``output_dir/training``). ``on_wait(self)``
        is called once if the reranker has to wait for stacked priors fitting in second
        processes (`training.fit_aside`): work for the idle core (the quickstart fits its
        evaluation's rivals there)."""
        for r in dict.fromkeys((self.retriever, *self.priors)):  # too big for this box: say so
            check = getattr(r, "check_fits", None)  # now, not after the others trained
            if check is not None:
                check(self.dataset.n_users, self.dataset.n_items)
        aside = {}  # stacked prior fits started in second processes (`training.fit_aside`)
        train_rr = reranker_trainer is None and getattr(self.config, "rerank", False)
        if train_rr and self.config.reranker.stack_aside:
            from .training.fit_reranker import start_stacked_aside

            aside = start_stacked_aside(self.priors, split, self.dataset, self.config.reranker)
        try:
            self._fit_first_stage(split)
            if aside:  # the twins that follow their prior's kept epoch learn it now
                from .training.fit_reranker import cap_stacked_aside

                cap_stacked_aside(self.priors, aside)
            self.sequences = split.sequences("serve")
            if reranker_trainer is not None:
                self.reranker = reranker_trainer(self)
            elif train_rr:
                hook = (lambda: on_wait(self)) if on_wait is not None else None
                self.reranker = self._train_reranker(split, output_dir, resume, aside, hook)
        finally:  # the one cleanup: a child still running after an error is stopped
            for job in aside.values():
                job.cancel()
        return self

    def _fit_first_stage(self, split: Split) -> None:
        import inspect
        import time

        fitted: set[int] = set()
        for r in [self.retriever, *self.priors]:
            if id(r) not in fitted:
                t0 = time.perf_counter()
                kw = (
                    {"valid": split.valid} if "valid" in inspect.signature(r.fit).parameters else {}
                )
                name = getattr(r, "name", type(r).__name__)
                log.info("%s: fitting on %d training interactions", name, len(split.train))
                r.fit(split.train, self.dataset.n_users, self.dataset.n_items, **kw)
                self.fit_info[f"fit_s/{name}"] = time.perf_counter() - t0
                log.info("%s: fitted in %.1f s", name, self.fit_info[f"fit_s/{name}"])
                fitted.add(id(r))

    def _train_reranker(
        self,
        split: Split,
        output_dir: str | Path | None,
        resume: bool = False,
        aside=None,
        on_wait=None,
    ):
        import tempfile
        import time
        from dataclasses import replace

        from .training.fit_reranker import fit_reranker

        cfg = self.config
        out = (
            Path(output_dir) / "training"
            if output_dir
            else Path(tempfile.mkdtemp(prefix="instructrec-train-"))
        )
        tc = replace(cfg.training, output_dir=str(out), resume=bool(resume and output_dir))
        t0 = time.perf_counter()
        rr = fit_reranker(
            self.dataset,
            split,
            self.priors,
            encoder_config=cfg.backbone,
            config=cfg.reranker,
            train_config=tc,
            cf_retriever=self.retriever,
            aside=aside,
            on_wait=on_wait,
        )
        self.fit_info["fit_s/reranker"] = time.perf_counter() - t0
        log.info("reranker: trained in %.1f s", self.fit_info["fit_s/reranker"])
        return rr

    # ------------------------------------------------------------------ evaluation hooks
    def prior_scores(
        self,
        users: np.ndarray,
        candidates: np.ndarray,
        histories: list[np.ndarray] | None,
        priors: list | None = None,
    ) -> np.ndarray:
        """(n, k, P) raw scores of every prior retriever for ``candidates`` (n, k);
        ``priors``: stand-ins for ``self.priors``, in order (e.g. memoised ones). With a
        reranker fitted with ``cold_fill: catalogue``, cold candidates' collaborative scores
        are an average warm item's for that row (`rerank.cold.fill_cold`)."""
        users = np.asarray(users)
        cand = np.asarray(candidates).astype(np.int64)
        priors = priors or self.priors
        rr = self.reranker
        cold_items = getattr(rr, "cold_items", None)
        if cold_items is not None and getattr(rr.config, "cold_fill", "list") == "catalogue":
            from .rerank.cold import scores_with_fill  # cold candidates: an average item's

            return scores_with_fill(priors, users, cand, histories, cold_items)
        scores = [r.score(users, cand, histories=histories) for r in priors]
        return np.stack(scores, axis=-1).astype(np.float32)

    def score_candidates(
        self,
        users: np.ndarray,
        candidates: np.ndarray,
        histories: list[np.ndarray],
        intentions: list[str] | None = None,
        templates: str | list[str] | None = None,
    ) -> np.ndarray:
        """Scores (n, k) of ``candidates`` (internal ids) for each row; ``histories`` is the
        full sequence before the target, oldest first. Without a reranker: the retriever's."""
        cand = np.asarray(candidates).astype(np.int64)
        if self.reranker is None:
            return self.retriever.score(np.asarray(users), cand, histories=histories)
        if getattr(self.reranker, "dataset", 0) is None:
            self.reranker.dataset = self.dataset  # its intent-match channel reads attributes
        prior = self.prior_scores(users, cand, histories)
        return np.asarray(
            self.reranker.score_candidates(
                np.asarray(users),
                cand,
                histories,
                intentions=intentions,
                templates=templates,
                prior=prior,
            ),
            dtype=np.float32,
        )

    def score_pointwise(
        self, users: np.ndarray, items: np.ndarray, histories: list[np.ndarray] | None = None
    ) -> np.ndarray:
        """Score (n,) that each user likes each item (the Yes/No task, protocol `pointwise`):
        the reranker's pointwise head when it has one, else the retriever's score."""
        items = np.asarray(items, np.int64)
        if self.reranker is not None and getattr(self.reranker, "pointwise", None) is not None:
            return np.asarray(self.reranker.score_pointwise(users, items, histories), np.float64)
        return np.asarray(
            self.retriever.score(np.asarray(users), items.reshape(-1, 1), histories=histories)
        )[:, 0]

    # ------------------------------------------------------------------ inference
    def history_of(
        self, user: str | None = None, history: list | None = None, instruction: str | None = None
    ) -> tuple[int, np.ndarray]:
        """(internal user id or -1, history as internal item ids, oldest first). With neither
        a user nor a history, an instruction alone is a new visitor's request (no history)."""
        if history is not None:
            hist = self.dataset.item_index([str(h) for h in history]) if len(history) else []
            uid = -1
            with contextlib.suppress(DataError):  # an unknown user with a history is fine
                uid = -1 if user is None else int(self.dataset.user_index([str(user)])[0])
            return uid, np.asarray(hist, np.int32)
        if user is None:
            if instruction and str(instruction).strip():
                return -1, np.empty(0, np.int32)
            raise DataError("give a user id, an explicit history or an instruction")
        uid = int(self.dataset.user_index([str(user)])[0])
        return uid, self.sequences.get(uid, np.empty(0, np.int32))

    def recommend(
        self,
        user: str | None = None,
        instruction: str | None = None,
        n: int = 10,
        candidates: list | None = None,
        history: list | None = None,
        exclude_seen: bool = True,
        template: str | None = None,
    ) -> pd.DataFrame:
        """Top-``n`` items as a DataFrame (item_id, title, year, genres, score, rank, reason,
        raw_score; ``frame.attrs``: understood, n_matching, message): `answer` as a table."""
        return self.answer(
            user, instruction, n, candidates, history, exclude_seen, template
        ).to_frame()

    def answer(
        self,
        user: str | None = None,
        instruction: str | None = None,
        n: int = 10,
        candidates: list | None = None,
        history: list | None = None,
        exclude_seen: bool = True,
        template: str | None = None,
    ) -> Answer:
        """Top-``n`` items for ``user`` (raw id), an explicit ``history`` (raw item ids) or
        neither (an instruction alone), explained (`instructrec.rerank.explain.Answer`). With
        an instruction the candidates are instruction-aware (`rerank.candidates`); seen items
        never come back (``exclude_seen``): fewer than ``n``, with a message, when fewer
        remain. ``candidates`` (raw item ids): rank only those. ``template``: a catalogue
        template id phrasing the reranker's instruction (the service's bandit picks it)."""
        from .rerank.candidates import score_request
        from .rerank.explain import explain_answer

        if n < 1:
            raise DataError(f"n must be >= 1, got {n}")
        uid, hist = self.history_of(user, history, instruction)
        text = str(instruction).strip() if instruction and str(instruction).strip() else None
        given = None
        if candidates is not None:
            given = self.dataset.item_index([str(c) for c in candidates])
        seen = hist if exclude_seen else np.empty(0, np.int64)
        cset, scores, raw, head = score_request(self, uid, hist, text, n, given, seen, template)
        return explain_answer(self, cset, scores, raw, head, n, hist, uid, text)

    def answer_many(self, requests: list) -> list:
        """Per request (`instructrec.rerank.batched.Request`, or a dict of `answer`'s
        arguments) its `Answer`, or the exception it raises: the batch shares one first-stage
        pass and one reranker forward, and equals `answer` request by request."""
        from .rerank.batched import Request, answer_many

        reqs = [r if isinstance(r, Request) else Request(**r) for r in requests]
        return answer_many(self, reqs)

    def recommend_many(self, requests: list) -> list:
        """`answer_many` as `recommend` frames (an exception stays in its place)."""
        return [a if isinstance(a, Exception) else a.to_frame() for a in self.answer_many(requests)]

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Save as data into ``directory`` (loadable by `load`, which never runs code):

        recommender.json (format, rerank depth, retriever/prior folders, reranker registry
        name, fit timings), config.yaml (when built from a config), dataset/ (Parquet tables +
        dataset.json), sequences.safetensors (serving histories: users, items, offsets),
        retriever/ and prior-<i>/ (`Retriever.save`), reranker/ (its own ``save``)."""
        return save_recommender(self, directory)

    @classmethod
    def load(
        cls, directory: str | Path, inference_only: bool = False, runtime: str = "torch"
    ) -> Recommender:
        """A Recommender saved by `save`. Nothing in the folder is executed: a folder holding
        pickles (an older instructrec's layout) is refused with a `DataError`.
        ``inference_only``: the reranker's tower without transformers/peft (same scores, a
        faster load; not for further training). ``runtime``: "torch"; "numpy" scores SASRec
        and the encoder reranker in NumPy without importing torch (the same scores to float32
        rounding; inference only; a `DataError` for a run it cannot score: a non-linear head,
        a backbone that is not a local BERT directory); "auto": NumPy where it can, as
        `instructrec recommend` loads. ``self.runtime`` says which was used."""
        return load_recommender(cls, directory, inference_only, RERANK_DEPTH, runtime)
