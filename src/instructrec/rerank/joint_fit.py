"""Training the joint reader (`instructrec.rerank.joint`) on the bi-encoder's instances.

The instances are exactly the bi-encoder reranker's (`rerank.instances.build_instances`):
stacked priors (retrievers re-fitted without each user's last ``holdout`` training items,
those items the targets), uniform + hard negatives, slots P1/P2 x I0/I1/I2 over the seen
templates, the intention-match channel from the intention TEXT. Only the reader differs: the
query text carries the last ``query_history`` titles and the candidates' texts are read with it.

Steps: warm start of the prior weights at the priors-only fit (`fit_prior_mixture`), AdamW with
linear warm-up and decay on listwise softmax cross-entropy, candidates re-shuffled in every
instance every epoch (the sequential layout has a position bias to unlearn), then the prior
weights re-fitted on validation rows with the text part frozen (`calibrate`), as the
bi-encoder does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch

from .joint import JointReranker


@dataclass
class JointTrainConfig:
    """Optimisation of the joint reader (a short CPU budget by default)."""

    lr: float = 5e-4  # peak AdamW learning rate (LoRA, text MLP and prior weights)
    epochs: int = 1  # passes over the instances
    batch_size: int = 8  # requests (= sequences) per step
    max_steps: int | None = None  # stop after this many steps (None: epochs decide)
    warmup_ratio: float = 0.05  # share of steps with linear warm-up, then linear decay
    max_grad_norm: float = 1.0  # gradient clipping (<= 0: none)
    shuffle_candidates: bool = True  # re-permute each instance's candidates every epoch
    seed: int = 0  # data order, candidate permutations
    log_every: int = 20  # steps between progress lines


def build_joint_instances(rr: JointReranker, dataset, split, stacked: Sequence, config):
    """The bi-encoder's training instances (`build_instances`) with this reader's query
    texts: ``config`` is a `RerankerConfig` (its ``query_history`` is overridden by the
    reader's). Returns an `Instances` (texts, cands, label, hist, prior)."""
    from dataclasses import replace

    from .instances import build_instances

    cfg = replace(
        config, query_history=rr.config.query_history, intent_match=rr.config.intent_match
    )
    shim = SimpleNamespace(
        text=rr.text,
        phrases=None,  # the joint reader's intent channel reads the parser only
        scorer=SimpleNamespace(
            tokenizer=rr.tokenizer, model=SimpleNamespace(config=SimpleNamespace(max_query_len=0))
        ),
    )
    return build_instances(shim, dataset, split, stacked, cfg)


def fit_prior_weights(rest, prior, label, init=None, steps: int = 50) -> np.ndarray:
    """Weights w (P,) minimising listwise CE of softmax(rest + prior @ w) (LBFGS, convex):
    with ``rest`` = 0 the priors-only fit (`rerank.rerank_features.fit_prior_mixture`),
    with ``rest`` = the text scores the calibration."""
    x = torch.as_tensor(np.asarray(prior, np.float32))
    r = torch.as_tensor(np.asarray(rest, np.float32))
    y = torch.as_tensor(np.asarray(label, np.int64))
    w0 = torch.ones(x.shape[-1]) if init is None else torch.as_tensor(init, dtype=torch.float32)
    w = w0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([w], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(r + x @ w, y)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy()


def _permute(rng, cands, prior, label):
    perm = np.argsort(rng.random(cands.shape), axis=1)
    c = np.take_along_axis(cands, perm, axis=1)
    p = np.take_along_axis(prior, perm[..., None], axis=1)
    lab = np.argmax(perm == label[:, None], axis=1)
    return c, p, lab


def fit_joint(
    rr: JointReranker,
    instances,
    config: JointTrainConfig | None = None,
    warm_start: bool = True,
    log: Callable[[str], None] | None = print,
) -> dict:
    """Train ``rr.model`` in place on ``instances`` (texts, cands, label, prior); returns a
    record (steps, seconds, losses, warm-start weights)."""
    config = config or JointTrainConfig()
    model = rr.model
    prior_all = np.asarray(instances.prior, np.float32)
    label_all = np.asarray(instances.label, np.int64)
    cands_all = np.asarray(instances.cands, np.int64)
    texts = list(instances.texts)
    record: dict = {}
    if warm_start and prior_all.shape[-1]:
        w = fit_prior_weights(
            np.zeros(label_all.shape + prior_all.shape[1:2], np.float32), prior_all, label_all
        )
        model.init_prior_weights(w)
        record["prior_mixture"] = [float(x) for x in w]
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    n, bs = len(texts), config.batch_size
    per_epoch = (n + bs - 1) // bs
    total = per_epoch * config.epochs
    if config.max_steps:
        total = min(total, config.max_steps)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    warm = max(1, int(config.warmup_ratio * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    dev = model.prior_w.device
    losses, step, t0 = [], 0, time.perf_counter()
    model.train()
    while step < total:
        order = rng.permutation(n)
        cands, prior, label = cands_all, prior_all, label_all
        if config.shuffle_candidates:
            cands, prior, label = _permute(rng, cands_all, prior_all, label_all)
        for s in range(0, n, bs):
            if step >= total:
                break
            idx = order[s : s + bs]
            batch = {
                k: v.to(dev) for k, v in rr.encode([texts[i] for i in idx], cands[idx]).items()
            }
            scores = model(
                batch,
                torch.as_tensor(prior[idx], device=dev),
                torch.as_tensor(cands[idx] >= 0, device=dev),
            )
            loss = torch.nn.functional.cross_entropy(
                scores.float(), torch.as_tensor(label[idx], device=dev)
            )
            opt.zero_grad()
            loss.backward()
            if config.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            step += 1
            if log and (step % config.log_every == 0 or step == total):
                el = time.perf_counter() - t0
                log(
                    f"step {step}/{total} loss {np.mean(losses[-config.log_every :]):.4f} "
                    f"({step * bs / el:.1f} seq/s, {el:.0f}s)"
                )
    model.eval()
    record.update(
        steps=step,
        instances=n,
        seconds=round(time.perf_counter() - t0, 1),
        loss_first=float(np.mean(losses[: config.log_every])) if losses else None,
        loss_last=float(np.mean(losses[-config.log_every :])) if losses else None,
        prior_w_trained=[float(x) for x in model.prior_w.detach().cpu()],
    )
    rr.info["train"] = record
    return record


@dataclass
class ValidRows:
    """Validation requests for calibration: cand10 rows, with I0 and with I2 queries."""

    cands: np.ndarray  # (n, k) target in column 0
    texts: list[str]  # I0 texts then I2 texts (2n)
    features: np.ndarray  # (2n, k, P)


def validation_rows(rr: JointReranker, dataset, split, priors, n_rows=400, seed=0) -> ValidRows:
    """``n_rows`` validation rows (as `rerank.instances.Validation` picks them: cand10
    candidates, priors from the retrievers fitted on all training data)."""
    from .intentions import intentions_for
    from .rerank_features import score_priors

    frame = split.valid
    rows = np.arange(len(frame))
    if n_rows and len(rows) > n_rows:
        rows = np.sort(np.random.default_rng(seed + 1).choice(len(rows), n_rows, replace=False))
    cands = split.candidates["cand10"]["valid"][rows].astype(np.int64)
    seqs = split.sequences("valid")
    users = frame["user"].to_numpy(np.int64)[rows]
    hists = [np.asarray(seqs.get(int(u), np.empty(0, np.int64)), np.int64) for u in users]
    raw = score_priors(priors, users, cands, hists) if priors else None
    intents = intentions_for(dataset, cands[:, 0], ["P1I2"] * len(rows), seed=1)
    texts = rr.queries(hists, None, "seen") + rr.queries(hists, intents, "seen")
    f0 = rr.prior_features(cands, None, raw)
    f2 = rr.prior_features(cands, intents, raw)
    return ValidRows(cands, texts, np.concatenate([f0, f2]))


def calibrate(rr: JointReranker, valid: ValidRows, batch_size: int = 16) -> list[float]:
    """Re-fit only the prior weights on ``valid`` (the text part frozen): the stacked priors
    the model was trained with are weaker than the final retrievers. Returns the weights."""
    cands = np.concatenate([valid.cands, valid.cands])
    _, text = rr.score_texts(valid.texts, cands, valid.features, batch_size, parts=True)
    init = rr.model.prior_w.detach().cpu().numpy()
    w = fit_prior_weights(text, valid.features, np.zeros(len(text), np.int64), init)
    rr.model.init_prior_weights(w)
    rr.info["calibrated_prior_w"] = [float(x) for x in w]
    return rr.info["calibrated_prior_w"]
