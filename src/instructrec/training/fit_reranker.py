"""`fit_reranker`: train the encoder reranker on instructions built from training data.

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
4. `calibrate` re-fits the prior weights on validation rows; `fit_pointwise` fits the Yes/No
   head (`instructrec.rerank.pointwise`).

The caller's configs are never written to: the values derived here (how many prior channels,
the CF embeddings' width) live in the model's own config (``encoder/config.json`` of a saved
reranker).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Sequence

import numpy as np

from ..data.errors import DataError
from ..rerank.rerank_features import attribute_matrix, fit_prior_mixture, item_texts, stacked_frame
from ..rerank.reranker import InstructionReranker, RerankerConfig

log = logging.getLogger(__name__)


def fit_reranker(
    dataset,
    split,
    priors: Sequence,
    encoder_config=None,
    config: RerankerConfig | None = None,
    train_config=None,
    cf_retriever=None,
    stacked: Sequence | None = None,
    aside: dict | None = None,
    on_wait=None,
) -> InstructionReranker:
    """Train a reranker. ``priors``: retrievers already fitted on ``split.train`` (their order
    defines the prior features); ``train_config``: a `TrainConfig` for the engine; ``stacked``:
    the same retrievers already fitted on `stacked_frame` (else fitted here); ``aside``: the
    stacked fits `start_stacked_aside` began in second processes (collected here; the caller
    stops them on an error); ``on_wait()``: called once while they still run (`fit_stacked`)."""
    from ..models.encoder_config import EncoderConfig
    from ..models.encoder_scorer import EncoderScorer
    from ..models.scoring import score_batch
    from ..rerank.instances import TextSide, Validation, build_instances
    from .loop import fit as engine_fit
    from .losses import listwise_ce

    config = config or RerankerConfig()
    cold_on = config.cold_dropout > 0  # the cold channel (`rerank.cold`)
    derived = {"n_prior": len(priors) + int(bool(config.intent_match)) + int(cold_on)}  # the
    #                                                          model's, not the caller's, config
    if cold_on:
        derived["cold_channel"] = True
    encoder_config = encoder_config or EncoderConfig()
    if config.cold_content:
        derived["head_options"] = {
            **encoder_config.head_options,
            "cold_content": cold_content_channels(priors, config, encoder_config.head),
        }
    texts = item_texts(dataset)
    loaded = item_vecs = None
    if aside:  # while the stacked twins fit in second processes: the backbone and item vectors
        from ..models.text_encoder import encode_texts, load_encoder

        log.info("reranker: loading the backbone, encoding %d item texts", len(texts))
        loaded = load_encoder(encoder_config.backbone)
        item_vecs = encode_texts(*loaded, texts)
    # stacked priors: the same retrievers re-fitted without the held-out targets
    if stacked is not None:
        stacked = list(stacked)
    elif config.stack:
        match = config.stack_epochs == "match"
        stacked = fit_stacked(priors, split, dataset, config.holdout, aside, on_wait, match)
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
            if cold_on:  # untrained vectors of items the CF source never saw: neutral (zero)
                from ..rerank.cold import zero_interaction_items

                seen_by = split.train
                if source is not cf_retriever and config.stack:
                    seen_by = stacked_frame(split.train, config.holdout)[0]
                cf = np.where(zero_interaction_items(seen_by, dataset.n_items)[:, None], 0.0, cf)
                cf = cf.astype(np.float32)
            derived["cf_dim"] = int(cf.shape[1])
    model_config = dataclasses.replace(encoder_config, **derived)
    if loaded is None:
        log.info("reranker: loading the backbone, encoding %d item texts", len(texts))
    attrs = attribute_matrix(dataset) if model_config.attributes else None
    from accelerate.utils import set_seed

    set_seed(train_config.seed if train_config is not None else config.seed)  # LoRA init
    scorer = EncoderScorer.build(
        texts,
        model_config,
        cf_vecs=cf,
        item_vecs=item_vecs,
        history_len=config.history_len,
        attr_vecs=attrs,
        loaded=loaded,
    )
    rr = InstructionReranker(
        scorer,
        TextSide.of(dataset),
        config,
        [getattr(p, "name", type(p).__name__) for p in priors],
    )
    rr.dataset = dataset
    if config.intent_phrases and config.intent_match:
        from ..instructions.phrases import PhraseTable

        t_ph = time.perf_counter()
        rr.phrases = PhraseTable.from_training(
            dataset, split, seed=config.seed, min_coverage=config.intent_phrases_coverage
        )
        log.info(
            "reranker: phrase table of %d grams learned from training intentions (%.1f s)",
            len(rr.phrases.table),
            time.perf_counter() - t_ph,
        )
    if cold_on:
        from ..rerank.cold import zero_interaction_items

        rr.cold_items = zero_interaction_items(split.train, dataset.n_items)
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
        feats = train.prior
        cold_content = scorer.model.config.head_options.get("cold_content")
        if cold_content:  # the cold weights start from the same fit
            from ..models.encoder_config import cold_content_features

            feats = np.concatenate([feats, cold_content_features(feats, cold_content)], -1)
        w = fit_prior_mixture(feats, train.label)
        rr.prior_mixture = [float(x) for x in w]
        init(w)
    if train_config is None:
        import tempfile

        from .config import reranker_training

        train_config = reranker_training(
            output_dir=tempfile.mkdtemp(prefix="reranker-"), progress=False
        )
    model = scorer.model

    def loss_fn(m, batch):
        if not config.text_loss:
            return listwise_ce(score_batch(m, batch), batch["label"])
        scores, content = score_batch(m, batch, with_content=True)
        loss = listwise_ce(scores, batch["label"])
        return loss + config.text_loss * listwise_ce(content, batch["label"])

    rr.train_result = engine_fit(
        model, train, train.collate, loss_fn, train_config, evaluate=valid.metrics
    )
    model.eval()
    drop = getattr(model, "drop_prefix_cache", None)
    if drop is not None:
        drop()
    if config.calibrate:
        calibrate(rr, valid)
    if config.pointwise and "rating" in split.train and split.train["rating"].notna().any():
        fit_pointwise(rr, dataset, split, cf)
    return rr


def fit_stacked(
    priors: Sequence,
    split,
    dataset,
    holdout: int,
    aside: dict | None = None,
    on_wait=None,
    match_epochs: bool = False,
):
    """The priors re-fitted on ``split.train`` minus each user's last ``holdout`` items (step
    1); ``aside``: {index: `FitAside`} of priors already fitting in a second process;
    ``on_wait()`` runs once before collecting them if one is still running. ``match_epochs``
    (`RerankerConfig.stack_epochs` "match"): a twin of a prior trained in epochs (SASRec)
    trains no more epochs than that prior kept (`stacked_epochs`)."""
    aside = aside or {}
    cap_stacked_aside(priors, aside)
    fit_part, _ = stacked_frame(split.train, holdout)
    log.info(
        "reranker: re-fitting %d priors without each user's last %d training items",
        len(priors) - len(aside),
        holdout,
    )
    stacked = [None] * len(priors)
    for i, p in enumerate(priors):
        if i not in aside:
            q = copy.deepcopy(p)
            epochs = stacked_epochs(p) if match_epochs else None
            if epochs is not None:
                q.config = dataclasses.replace(
                    q.config, max_epochs=min(q.config.max_epochs, epochs)
                )
            q.fit(fit_part, dataset.n_users, dataset.n_items)
            stacked[i] = q
    if on_wait is not None and any(job.running() for job in aside.values()):
        on_wait()
    for i, job in aside.items():
        stacked[i] = job.result()
    return stacked


def stacked_epochs(prior) -> int | None:
    """The epochs a stacked twin of ``prior`` trains at most under ``stack_epochs: match``:
    the epoch the fitted prior kept on validation (None: not a model trained in epochs).
    The twin's own stopping (on one more held-out item per user) ran SASRec's twin 23
    epochs where the first stage kept epoch 12 (ML-100K, seed 0): a prior trained longer
    than the one the reranker reads at inference, and the reranker waited for it."""
    epochs = getattr(prior, "best_epoch", None)
    config = getattr(prior, "config", None)
    return epochs if epochs is not None and hasattr(config, "max_epochs") else None


def cap_stacked_aside(priors: Sequence, aside: dict) -> None:
    """Tell the twins fitting aside how many epochs their first-stage priors kept (a twin
    started without ``follow`` ignores it); call once the priors are fitted."""
    for i, job in aside.items():
        job.cap(stacked_epochs(priors[i]))


def start_stacked_aside(priors: Sequence, split, dataset, config: RerankerConfig) -> dict:
    """Start, in second processes, the stacked fits of the priors worth it (`fit_aside`):
    {index: `FitAside`}; nothing when stacking is off. With ``stack_epochs: match`` each
    follows its prior's kept epoch (`cap_stacked_aside`)."""
    from .fit_aside import FitAside, fits_aside

    if not config.stack:
        return {}
    fit_part, _ = stacked_frame(split.train, config.holdout)
    jobs, seen = {}, set()
    for i, p in enumerate(priors):
        if id(p) not in seen and fits_aside(p):
            jobs[i] = FitAside.start(
                p, fit_part, dataset.n_users, dataset.n_items, config.stack_epochs == "match"
            )
            seen.add(id(p))
    return jobs


def fit_pointwise(rr: InstructionReranker, dataset, split, cf_vecs: np.ndarray | None = None):
    """Fit ``rr``'s Yes/No head (`instructrec.rerank.pointwise`) on the trained model's item
    vectors (and the CF embeddings); `InstructionReranker.score_pointwise` uses it."""
    import torch

    from ..rerank.pointwise import fit_pointwise_head

    model = rr.scorer.model
    with torch.no_grad():
        ids = torch.arange(dataset.n_items, device=model.item_vecs.device)
        vecs = model.item_vectors(ids).float().cpu().numpy()
    rr.pointwise = fit_pointwise_head(dataset, split, vecs, cf_vecs, rr.config.holdout)
    return rr.pointwise


def cold_content_channels(priors, config: RerankerConfig, head: str) -> list[int]:
    """The prior channels (indices) that get a cold weight (``reranker.cold_content``): the
    content-based priors' (`rerank.cold.content_channels`)."""
    from ..rerank.cold import content_channels

    if head != "linear":
        raise DataError(
            f"cold_content needs the linear head, got head {head!r}", column="cold_content"
        )
    idx = [i for i, c in enumerate(content_channels(priors)) if c]
    if not idx:
        raise DataError(
            "cold_content needs a content-based prior (e.g. titleknn) in reranker.priors",
            column="cold_content",
        )
    return idx


def calibrate(rr: InstructionReranker, valid) -> list[float] | None:
    """Re-fit only the prior weights on validation rows (`rerank.instances.Validation`: priors
    from the retrievers fitted on all training data, as at test time), the rest of the
    model frozen: the stacked priors the head was trained with are weaker than the final
    retrievers, so their learned weights under-trust them. Returns the new weights (None
    when the head has no ``prior_w``)."""
    import torch

    head = rr.scorer.model.head
    w_old = getattr(head, "prior_w", None)
    if w_old is None or valid.prior.shape[-1] == 0:
        return None
    with torch.no_grad():
        parts = []
        for texts, pr in ((valid.texts_i0, valid.prior), (valid.texts_i2, valid.prior_i2)):
            total = valid._scores(rr.scorer.model, texts, prior=pr)
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
    rr.calibrated_prior_w = [float(x) for x in w.detach()]
    return rr.calibrated_prior_w
