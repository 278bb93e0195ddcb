"""`InstructionReranker`: train the encoder reranker on instructions built from training data.

InstructRec (Zhang et al. 2023) instruction-tunes an LM on (preference, intention, task)
instructions built from interaction logs, then reranks a retriever's candidates. Here:

1. Stacking. The prior retrievers (SASRec, item-kNN, Pop...) are re-fitted on the training
   interactions minus each user's last ``holdout`` items; those held-out items become the
   reranker's training targets. A retriever scoring items it was trained on is over-confident;
   a stacked prior has the same distribution at training time as at test time.
2. Instances. Per target: candidates = target + random negatives + hard negatives (from the
   first prior's top-k); the query text mixes slots P1/P2 x I0/I1/I2 x T3 over SEEN templates;
   priors = the stacked retrievers' scores, z-scored within the list.
3. Training with the shared engine (`instructrec.training.loop.fit`), listwise softmax
   cross-entropy (`instructrec.training.losses.listwise_ce`), early stopping on validation
   HR@1 (cand10 candidates, I0 instructions, priors from retrievers fitted on all training data).

``score_candidates(users, candidates, histories, intentions, templates, prior)`` scores a
batch; ``save``/``load`` keep config + adapter/head weights + the item-vector cache: loading
needs no training data.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .rerank_features import (  # noqa: F401  (re-exported: the public names live here too)
    attribute_matrix,
    fit_prior_mixture,
    item_texts,
    ranking_metrics,
    score_priors,
    stacked_frame,
)

log = logging.getLogger(__name__)


@dataclass
class RerankerConfig:
    """How training instances are built (the architecture is `EncoderConfig`)."""

    holdout: int = 2  # last training items per user held out of the stacked priors = targets
    n_random: int = 9  # uniform negatives per instance (never interacted with by the user)
    n_hard: int = 5  # hard negatives per instance, from the first prior's top ``hard_pool``
    hard_pool: int = 50  # depth of the retriever ranking hard negatives are drawn from
    slots: list[str] = field(default_factory=lambda: ["P1I0", "P1I1", "P1I2", "P2I0"])  # mixed
    copies: int = 2  # instances per target (each with a freshly drawn slot and template)
    query_history: int = 3  # most recent titles written into the query text (history also
    #                         enters as item vectors and through the priors)
    history_len: int = 20  # history items the head sees (EVALUATION.md: 20)
    max_instances: int | None = None  # cap on training instances (a quick run)
    valid_rows: int | None = 400  # validation rows used for early stopping (None: all)
    stack: bool = True  # False: priors from retrievers fitted on all training data (leaky)
    warm_start: bool = True  # start the head's prior weights at the best priors-only mixture
    calibrate: bool = True  # after training, re-fit the prior weights on validation rows
    intent_match: bool = False  # extra prior channel: graded match of each candidate with the
    #                            attributes parsed from the instruction's intention text
    cf_stacked: bool = True  # CF item embeddings from the stacked retriever (False: from the
    #                          one fitted on all training data, which has seen the targets)
    pointwise: bool = True  # also fit the Yes/No "will the user like it" head (needs ratings)
    seed: int = 0  # negatives, slots, templates


class InstructionReranker:
    """Encoder reranker + the text side (templates, item texts). Build with `fit` or `load`."""

    def __init__(
        self, scorer, text, config: RerankerConfig, prior_names: list[str] | None = None
    ) -> None:
        self.scorer = scorer  # instructrec.models.encoder.EncoderScorer
        self.text = text  # instances.TextSide: display titles + noun, for rendering queries
        self.config = config
        self.prior_names = list(prior_names or [])
        self.train_result = None
        self.prior_mixture: list[float] | None = None  # warm-start weights (for the record)
        self.pointwise = None  # training.pointwise.PointwiseHead (Yes/No), when fitted
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
        from .instances import render_queries

        return render_queries(
            self.text,
            histories,
            intentions,
            templates,
            preferences,
            self.config.query_history,
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
        import torch

        from ..models.encoder import pad_histories, zscore

        cands = np.asarray(candidates, dtype=np.int64)
        n, k = cands.shape
        hists = [np.asarray(h, np.int64) for h in histories]
        texts = self.queries(hists, intentions, templates)
        n_p = self.scorer.model.config.n_prior
        n_ret = n_p - int(bool(self.config.intent_match))  # retriever channels
        z = np.zeros((n, k, n_p), np.float32)
        if prior is not None and n_ret > 0:
            pr = np.asarray(prior, np.float32).reshape(n, k, -1)[:, :, :n_ret]
            z[:, :, : pr.shape[2]] = zscore(pr)
        if self.config.intent_match and intentions is not None:
            if self.dataset is None:
                raise ValueError(
                    "the intent-match channel needs the dataset: set reranker.dataset "
                    "(Recommender does it)"
                )
            from .intentions import intention_match

            z[:, :, n_ret] = intention_match(self.dataset, intentions, cands)
        model = self.scorer.model
        model.eval()
        dev = model.item_vecs.device
        out = np.zeros((n, k), np.float32)
        with torch.no_grad():
            for s in range(0, n, batch_size):
                sl = slice(s, s + batch_size)
                tok = self.scorer.tokenize(texts[sl])
                hist = torch.as_tensor(pad_histories(hists[sl], self.config.history_len))
                out[sl] = (
                    model(
                        tok["input_ids"].to(dev),
                        tok["attention_mask"].to(dev),
                        torch.as_tensor(cands[sl]).to(dev),
                        hist.to(dev),
                        torch.as_tensor(z[sl]).to(dev),
                    )
                    .float()
                    .cpu()
                    .numpy()
                )
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """As data: ``reranker.json`` (config, prior names), ``text.json`` (`TextSide`),
        ``encoder/`` (JSON + safetensors + .npy) and the pointwise head's ``.npz`` files."""
        from ..data.runfiles import FORMAT, write_json

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.scorer.save(directory / "encoder")
        write_json(
            directory / "reranker.json",
            {"format": FORMAT, "config": asdict(self.config), "prior_names": self.prior_names},
        )
        write_json(directory / "text.json", self.text.to_dict())
        if self.pointwise is not None:
            self.pointwise.save(directory)
        return directory

    @classmethod
    def load(cls, directory: str | Path, inference_only: bool = False) -> InstructionReranker:
        """A reranker saved by `save` (never unpickles: a folder with pickles is refused);
        ``inference_only``: see `EncoderScorer.load`."""
        from ..data.errors import DataError
        from ..data.runfiles import read_json, refuse_pickles
        from ..models.encoder import EncoderScorer
        from .instances import TextSide

        directory = Path(directory)
        refuse_pickles(directory)
        if not (directory / "reranker.json").exists():
            raise DataError(
                "not a saved InstructionReranker (no reranker.json)", source=str(directory)
            )
        meta = read_json(directory / "reranker.json")
        try:
            config = RerankerConfig(**meta["config"])
            text = TextSide.from_dict(read_json(directory / "text.json"))
        except (KeyError, TypeError) as e:
            raise DataError(f"reranker.json: bad config ({e})", source=str(directory)) from e
        except DataError as e:
            raise DataError(str(e), source=str(directory / "text.json")) from e
        scorer = EncoderScorer.load(directory / "encoder", inference_only=inference_only)
        rr = cls(scorer, text, config, meta.get("prior_names"))
        if (directory / "pointwise.npz").exists():
            from .pointwise import PointwiseHead

            rr.pointwise = PointwiseHead.load(directory)
        return rr

    # ------------------------------------------------------------------ training
    @classmethod
    def fit(
        cls,
        dataset,
        split,
        priors: Sequence,
        encoder_config=None,
        config: RerankerConfig | None = None,
        train_config=None,
        cf_retriever=None,
        stacked: Sequence | None = None,
    ) -> InstructionReranker:
        """Train a reranker. ``priors``: retrievers already fitted on ``split.train`` (their
        order defines the prior features); ``train_config``: a `TrainConfig` for the engine;
        ``stacked``: the same retrievers already fitted on `stacked_frame` (else fitted here)."""
        from ..models.encoder import EncoderConfig, EncoderScorer
        from .instances import TextSide, Validation, build_instances
        from .loop import fit as engine_fit
        from .losses import listwise_ce

        config = config or RerankerConfig()
        encoder_config = encoder_config or EncoderConfig()
        encoder_config.n_prior = len(priors) + int(bool(config.intent_match))
        # stacked priors: the same retrievers re-fitted without the held-out targets
        if stacked is not None:
            stacked = list(stacked)
        elif config.stack:
            fit_part, _ = stacked_frame(split.train, config.holdout)
            log.info(
                "reranker: re-fitting %d priors without each user's last %d training items",
                len(priors),
                config.holdout,
            )
            stacked = []
            for p in priors:
                q = copy.deepcopy(p)
                q.fit(fit_part, dataset.n_users, dataset.n_items)
                stacked.append(q)
        else:
            stacked = list(priors)
        cf = None
        if encoder_config.cf_dim > 0 and cf_retriever is not None:
            source = cf_retriever
            if config.cf_stacked:  # the stacked twin has not seen the training targets
                source = next(
                    (q for p, q in zip(priors, stacked, strict=True) if p is cf_retriever),
                    cf_retriever,
                )
            cf = source.item_embeddings()
            if cf is not None:
                cf = cf[-dataset.n_items :] if len(cf) > dataset.n_items else cf
                encoder_config.cf_dim = int(cf.shape[1])
        texts = item_texts(dataset)
        log.info("reranker: loading the backbone, encoding %d item texts", len(texts))
        attrs = attribute_matrix(dataset) if encoder_config.attributes else None
        from accelerate.utils import set_seed

        set_seed(train_config.seed if train_config is not None else config.seed)  # LoRA init
        scorer = EncoderScorer.build(
            texts, encoder_config, cf_vecs=cf, history_len=config.history_len, attr_vecs=attrs
        )
        rr = cls(
            scorer,
            TextSide.of(dataset),
            config,
            [getattr(p, "name", type(p).__name__) for p in priors],
        )
        rr.dataset = dataset
        t_build = time.perf_counter()
        train = build_instances(rr, dataset, split, stacked, config)
        log.info(
            "reranker: %d training instances built (%.1f s)",
            len(train.label),
            time.perf_counter() - t_build,
        )
        valid = Validation(rr, dataset, split, priors, config)
        init = getattr(scorer.model.head, "init_prior_weights", None)
        if init is not None and train.prior.shape[-1] and config.warm_start:
            w = fit_prior_mixture(train.prior, train.label)
            rr.prior_mixture = [float(x) for x in w]
            init(w)
        if train_config is None:
            import tempfile

            from .config import TrainConfig

            train_config = TrainConfig(
                output_dir=tempfile.mkdtemp(prefix="reranker-"),
                metric="hr@1",
                greater_is_better=True,
                progress=False,
            )
        model = scorer.model

        def loss_fn(m, batch):
            scores = m(
                batch["input_ids"],
                batch["attention_mask"],
                batch["cands"],
                batch["hist"],
                batch["prior"],
                q_index=batch["q_index"],
            )
            return listwise_ce(scores, batch["label"])

        def evaluate(m) -> dict[str, float]:
            return valid.metrics(m)

        rr.train_result = engine_fit(
            model, train, train.collate, loss_fn, train_config, evaluate=evaluate
        )
        model.eval()
        if config.calibrate:
            rr.calibrate(valid)
        if config.pointwise and "rating" in split.train and split.train["rating"].notna().any():
            rr.fit_pointwise(dataset, split, cf)
        return rr

    def fit_pointwise(self, dataset, split, cf_vecs: np.ndarray | None = None):
        """Fit the Yes/No head (`instructrec.training.pointwise`) on the trained model's item
        vectors (and the CF embeddings); ``score_pointwise`` uses it."""
        import torch

        from .pointwise import fit_pointwise_head

        model = self.scorer.model
        with torch.no_grad():
            ids = torch.arange(dataset.n_items, device=model.item_vecs.device)
            vecs = model.item_vectors(ids).float().cpu().numpy()
        self.pointwise = fit_pointwise_head(dataset, split, vecs, cf_vecs, self.config.holdout)
        return self.pointwise

    def score_pointwise(self, users, items, histories=None) -> np.ndarray:
        """Logit that each user likes each item (n,) (the `pointwise` protocol)."""
        if self.pointwise is None:
            raise ValueError(
                "this reranker has no pointwise head (trained without ratings or with "
                "reranker.pointwise: false)"
            )
        return self.pointwise.predict(users, items, histories)

    def calibrate(self, valid) -> list[float] | None:
        """Re-fit only the prior weights on validation rows (`instances.Validation`: priors
        from the retrievers fitted on all training data, as at test time), the rest of the
        model frozen: the stacked priors the head was trained with are weaker than the final
        retrievers, so their learned weights under-trust them. Returns the new weights (None
        when the head has no ``prior_w``)."""
        import torch

        head = self.scorer.model.head
        w_old = getattr(head, "prior_w", None)
        if w_old is None or valid.prior.shape[-1] == 0:
            return None
        with torch.no_grad():
            parts = []
            for texts, pr in ((valid.texts_i0, valid.prior), (valid.texts_i2, valid.prior_i2)):
                total = valid._scores(self.scorer.model, texts, prior=pr)
                parts.append(total - pr @ w_old.detach().cpu().numpy())
        rest = torch.as_tensor(np.concatenate(parts))
        prior = torch.as_tensor(np.concatenate([valid.prior, valid.prior_i2]))
        target = torch.zeros(len(rest), dtype=torch.long)  # column 0 is the target
        w = w_old.detach().cpu().clone().requires_grad_(True)
        opt = torch.optim.LBFGS([w], max_iter=50, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(rest + prior @ w, target)
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            head.prior_w.copy_(w.detach().to(head.prior_w.device))
        self.calibrated_prior_w = [float(x) for x in w.detach()]
        return self.calibrated_prior_w
