"""`InstructionReranker`: the encoder reranker at inference (InstructRec, Zhang et al. 2023).

An LM reads an instruction (preference P, intention I, task T) and orders a retriever's
candidates. ``score_candidates(users, candidates, histories, intentions, templates, prior)``
renders the query texts (`instructrec.instructions.render`), z-scores the retrievers' prior
scores within each list (plus the intent-match channel) and scores the batch with
`EncoderScorer.score_arrays`, the one scoring path; ``score_pointwise`` answers "will the user
like it" with the pointwise head. ``save``/``load`` keep config + adapter/head weights + the
item-vector cache as data: loading needs no training data. Training (stacked priors,
instances, the engine, calibration) is `instructrec.training.fit_reranker`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..data.errors import DataError

# values of keys a saved reranker.json may lack because it was saved before the key existed,
# where the shipped default has changed since: the behaviour it was trained with
SAVED_BEFORE = {
    "intent_phrases": False,
    "stack_epochs": "own",
    "cold_fill": "list",
    "cold_content": False,
}


@dataclass
class RerankerConfig:
    """How training instances are built (the architecture is `EncoderConfig`)."""

    holdout: int = 2  # last training items per user held out of the stacked priors = targets
    n_random: int = 9  # uniform negatives per instance (never interacted with by the user)
    n_hard: int = 5  # hard negatives per instance, from the first prior's top ``hard_pool``
    hard_pool: int = 50  # depth of the retriever ranking hard negatives are drawn from
    slots: list[str] = field(default_factory=lambda: ["P1I0", "P1I1", "P1I2", "P2I0"])  # mixed
    copies: int = 2  # instances per target (each with a freshly drawn slot and template)
    query_history: int = 0  # most recent titles written into the query text (history also
    #                         enters as item vectors and through the priors)
    history_len: int = 20  # history items the head sees (EVALUATION.md: 20)
    max_instances: int | None = None  # cap on training instances (a quick run)
    valid_rows: int | None = 400  # validation rows used for early stopping (None: all)
    stack: bool = True  # False: priors from retrievers fitted on all training data (leaky)
    stack_aside: bool = True  # fit a one-thread SASRec's stacked twin in a second process,
    #                           beside the first-stage fit (`training.fit_aside`; same weights)
    stack_epochs: str = "match"  # "match": a stacked twin trained in epochs (SASRec) trains
    #   no more epochs than its first-stage model kept; "own": its own early stopping
    warm_start: bool = True  # start the head's prior weights at the best priors-only mixture
    calibrate: bool = True  # after training, re-fit the prior weights on validation rows
    intent_match: bool = True  # extra prior channel: graded match of each candidate with the
    #                            attributes parsed from the instruction's intention text
    intent_phrases: bool = True  # the intent channel also reads, where the parser reads
    #   nothing, a phrase table learned from training intentions (`instructions.phrases`)
    intent_phrases_coverage: float = 1.0  # ... only for a request whose words all (this
    #   share) occur in the training intentions; 0: any request (as first built)
    cf_stacked: bool = True  # CF item embeddings from the stacked retriever (False: from the
    #                          one fitted on all training data, which has seen the targets)
    pointwise: bool = True  # also fit the Yes/No "will the user like it" head (needs ratings)
    cold_dropout: float = 0.0  # >0: cold-item channel + this share of training candidates made
    #                            cold (DropoutNet; `rerank.cold`); 0 = no channel, as before
    cold_fill: str = "list"  # the collaborative channels of a cold candidate (`rerank.cold`):
    #   "list": the list's warm mean (neutral); "catalogue": an average warm item's score
    #   for that row (`cold.fill_cold`), the same whatever the list holds
    cold_content: bool = False  # with the cold channel: content-based priors (titleknn) get
    #   a second weight on cold candidates (`models.heads.LinearHead`'s ``cold_content``)
    text_loss: float = 0.0  # >0: plus this weight x a listwise loss on the text term alone,
    #   every CF term left out (`EncoderReranker.forward`'s content scores): the query tower
    #   learns to rank by item text, all a new item has (linear head; docs/reranker.md)
    intent_dropout: float = 0.5  # share of training instances whose intent-match channel is
    #   zeroed (as for a request the parser cannot read), so the text term must read it;
    #   0 = every instance keeps it (as trained before; docs/reranker.md)
    seed: int = 0  # negatives, slots, templates

    def __post_init__(self) -> None:
        if self.stack_epochs not in ("match", "own"):
            raise DataError(
                f"stack_epochs must be 'match' or 'own', got {self.stack_epochs!r}",
                column="stack_epochs",
            )
        from .cold import COLD_FILLS

        if self.cold_fill not in COLD_FILLS:
            raise DataError(
                f"cold_fill must be one of {list(COLD_FILLS)}, got {self.cold_fill!r}",
                column="cold_fill",
            )
        if self.cold_content and self.cold_dropout <= 0:
            raise DataError(
                "cold_content needs the cold channel: set reranker.cold_dropout > 0",
                column="cold_content",
            )
        if not float(self.text_loss) >= 0.0:
            raise DataError(f"text_loss must be >= 0, got {self.text_loss!r}", column="text_loss")
        for name in ("intent_phrases_coverage", "cold_dropout", "intent_dropout"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise DataError(
                    f"{name} must be in [0, 1], got {getattr(self, name)!r}", column=name
                )


class InstructionReranker:
    """Encoder reranker + the text side (templates, item texts). Build with
    `instructrec.training.fit_reranker.fit_reranker` or `load`."""

    def __init__(
        self, scorer, text, config: RerankerConfig, prior_names: list[str] | None = None
    ) -> None:
        self.scorer = scorer  # instructrec.models.encoder_scorer.EncoderScorer
        self.text = text  # instances.TextSide: display titles + noun, for rendering queries
        self.config = config
        self.prior_names = list(prior_names or [])
        self.train_result = None
        self.prior_mixture: list[float] | None = None  # warm-start weights (for the record)
        self.calibrated_prior_w: list[float] | None = None  # prior weights after calibration
        self.pointwise = None  # rerank.pointwise.PointwiseHead (Yes/No), when fitted
        self.cold_items: np.ndarray | None = None  # (n_items,) bool: no training interactions
        #                                            (the cold channel, when cold_dropout > 0)
        self.phrases = None  # instructions.phrases.PhraseTable (``intent_phrases``), saved
        self.dataset = None  # item attributes for the intent-match channel (not saved: the
        #                      Recommender holding this reranker attaches its dataset)

    # ------------------------------------------------------------------ text
    def queries(
        self,
        histories: list[np.ndarray],
        intentions: list[str] | None = None,
        templates: str | list[str] | None = None,
        preferences: list[str] | None = None,
        seed: int = 0,
    ) -> list[str]:
        """Query texts (instructions without the candidate list) for a batch."""
        return self.text.render(
            histories,
            intentions,
            templates=templates,
            preferences=preferences,
            history=self.config.query_history,
            seed=seed,
        )

    # ------------------------------------------------------------------ scoring
    def score_candidates(
        self,
        users: np.ndarray,
        candidates: np.ndarray,
        histories: list[np.ndarray],
        intentions: list[str] | None = None,
        templates: str | list[str] | None = None,
        prior: np.ndarray | None = None,
        batch_size: int = 256,
    ) -> np.ndarray:
        """Scores (n, k) for ``candidates`` (n, k) of internal ids; ``prior`` (n, k[, P]) raw
        retriever scores (z-scored here); ``intentions`` one string (or None/'') per row."""
        from ..models.encoder_config import pad_histories

        cands = np.asarray(candidates, dtype=np.int64)
        hists = [np.asarray(h, np.int64) for h in histories]
        texts = self.queries(hists, intentions, templates)
        z = self.prior_features(cands, intentions, prior)
        hist = pad_histories(hists, self.config.history_len)
        return self.scorer.score_arrays(texts, cands, hist, z, batch_size)

    def prior_features(
        self,
        candidates: np.ndarray,
        intentions: list[str] | None = None,
        prior: np.ndarray | None = None,
    ) -> np.ndarray:
        """(n, k, n_prior) float32 prior channels of ``candidates`` (n, k): the retrievers'
        raw ``prior`` scores z-scored within each row, then the intent-match channel, then
        (``cold_dropout`` > 0) the cold channel, cold candidates' retriever channels at 0, or
        (``cold_fill: catalogue``) at their raw values in ``prior`` as `cold.fill_cold` set
        them (`Recommender.prior_scores` does)."""
        from .cold import content_channels, list_priors

        cands = np.asarray(candidates, dtype=np.int64)
        n, k = cands.shape
        n_p = self.scorer.model.config.n_prior
        cold_on = bool(getattr(self.scorer.model.config, "cold_channel", False))
        n_ret = n_p - int(bool(self.config.intent_match)) - int(cold_on)  # retriever channels
        z = np.zeros((n, k, n_p), np.float32)
        cold = None
        if cold_on:
            if self.cold_items is None:
                raise ValueError("a reranker with a cold channel needs its cold_items mask")
            cold = self.cold_items[cands]
            z[:, :, -1] = cold
        if prior is not None and n_ret > 0:
            pr = np.asarray(prior, np.float32).reshape(n, k, -1)[:, :, :n_ret]
            content = content_channels(self.prior_names[: pr.shape[2]])
            filled = self.config.cold_fill == "catalogue"
            z[:, :, : pr.shape[2]] = list_priors(pr, cold, content, filled=filled)
        if self.config.intent_match and intentions is not None:
            if self.dataset is None:
                raise ValueError(
                    "the intent-match channel needs the dataset: set reranker.dataset "
                    "(Recommender does it)"
                )
            from .intentions import intention_match

            z[:, :, n_ret] = intention_match(self.dataset, intentions, cands, self.phrases)
        return z

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """As data: ``reranker.json`` (config, prior names), ``text.json`` (`TextSide`),
        ``encoder/`` (JSON + safetensors + .npy), the pointwise head's ``.npz`` files and
        ``cold_items.npy`` (ids with no training interactions, when the cold channel is on),
        ``phrases.json`` (the learned phrase table, when ``intent_phrases`` is on). A reranker
        built without a table (``intent_match`` off, or assembled by hand) is saved with
        ``intent_phrases: false``, as it behaves: its channel reads the parser only."""
        from ..data.runfiles import FORMAT, write_json

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.scorer.save(directory / "encoder")
        config = asdict(self.config)
        config["intent_phrases"] = bool(config["intent_phrases"] and self.phrases is not None)
        write_json(
            directory / "reranker.json",
            {"format": FORMAT, "config": config, "prior_names": self.prior_names},
        )
        write_json(directory / "text.json", self.text.to_dict())
        if self.cold_items is not None:
            np.save(directory / "cold_items.npy", np.flatnonzero(self.cold_items).astype(np.int32))
        if self.phrases is not None:
            write_json(directory / "phrases.json", self.phrases.to_dict())
        if self.pointwise is not None:
            self.pointwise.save(directory)
        return directory

    @classmethod
    def load(
        cls, directory: str | Path, inference_only: bool = False, runtime: str = "torch"
    ) -> InstructionReranker:
        """A reranker saved by `save` (never unpickles: a folder with pickles is refused);
        ``inference_only``: see `EncoderScorer.load`; ``runtime="numpy"``: the scorer is
        `models.np_encoder.NumpyEncoderScorer` (the same scores without importing torch;
        inference only, a `ValueError` naming what a run has beyond it)."""
        from ..data.runfiles import read_json, refuse_pickles
        from .instances import TextSide

        directory = Path(directory)
        refuse_pickles(directory)
        if not (directory / "reranker.json").exists():
            raise DataError(
                "not a saved InstructionReranker (no reranker.json)", source=str(directory)
            )
        meta = read_json(directory / "reranker.json")
        try:
            config = RerankerConfig(**{**SAVED_BEFORE, **meta["config"]})
            text = TextSide.from_dict(read_json(directory / "text.json"))
        except (KeyError, TypeError) as e:
            raise DataError(f"reranker.json: bad config ({e})", source=str(directory)) from e
        except DataError as e:
            raise DataError(str(e), source=str(directory / "text.json")) from e
        if runtime == "numpy":
            from ..models.np_encoder import NumpyEncoderScorer

            scorer = NumpyEncoderScorer.load(directory / "encoder")
        else:
            from ..models.encoder_scorer import EncoderScorer

            scorer = EncoderScorer.load(directory / "encoder", inference_only=inference_only)
        rr = cls(scorer, text, config, meta.get("prior_names"))
        if (directory / "cold_items.npy").exists():
            ids = np.load(directory / "cold_items.npy", allow_pickle=False)
            rr.cold_items = np.zeros(len(text.titles), bool)
            rr.cold_items[ids] = True
        if (directory / "phrases.json").exists():
            from ..instructions.phrases import PhraseTable

            try:
                rr.phrases = PhraseTable.from_dict(read_json(directory / "phrases.json"))
            except DataError as e:
                raise DataError(str(e), source=str(directory / "phrases.json")) from e
        elif config.intent_phrases:
            raise DataError(
                "reranker.json has intent_phrases on but the folder has no phrases.json",
                source=str(directory),
            )
        if (directory / "pointwise.npz").exists():
            from .pointwise import PointwiseHead

            rr.pointwise = PointwiseHead.load(directory)
        return rr

    def score_pointwise(self, users, items, histories=None) -> np.ndarray:
        """Logit that each user likes each item (n,) (the `pointwise` protocol)."""
        if self.pointwise is None:
            raise ValueError(
                "this reranker has no pointwise head (trained without ratings or with "
                "reranker.pointwise: false)"
            )
        return self.pointwise.predict(users, items, histories)
