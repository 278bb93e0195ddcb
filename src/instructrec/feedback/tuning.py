"""Feedback tuning: fine-tune the reranker on what users said about what they were shown.

Each stored request with feedback becomes one training list: the instruction the user gave
(rendered with the template the bandit chose), their history, and the items shown. Two
signals train the model together (`instructrec.training.losses.feedback_loss`):

    loss = ranking loss (softmax CE: the item the user chose should outrank the others shown)
         + lambda * MSE(satisfaction head, observed satisfaction per shown item)

The chosen item is the one with the highest satisfaction (like/click/rating >= 4), -1 when
nothing was chosen (the list then only trains the satisfaction head). Observed satisfaction:
like 1, click 0.7, rating (r - 1) / 4, skip 0.2, dislike 0, NaN without feedback. The
satisfaction head is a calibrated sigmoid of the reranker's score (``sigmoid(a * s + b)``),
so satisfaction teaches the reranker's scores directly, in the spirit of InstructRec's
"instruction + feedback" loop. The tuned model is saved as a new run and registered as a
new (inactive) model version; `POST /v1/admin/model` swaps it in.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.errors import DataError

SATISFACTION = {"like": 1.0, "click": 0.7, "skip": 0.2, "dislike": 0.0}  # rating: (r - 1) / 4


@dataclass
class FeedbackTuneConfig:
    """Settings of a feedback-tuning run."""

    lam: float = 0.5  # weight of the satisfaction MSE against the ranking loss
    ranking: str = "listwise"  # "listwise" (softmax CE) | "bpr"
    lr: float = 1e-4  # smaller than first training: a nudge, not a retrain
    epochs: int = 1  # passes over the feedback lists
    max_steps: int | None = None  # cap on optimizer steps
    batch_size: int = 16  # lists per batch
    min_examples: int = 32  # refuse to tune on fewer requests with feedback than this
    seed: int = 0  # data order
    device: str = "auto"  # "auto" | "cpu" | "cuda"


def satisfaction_of(signal: str, rating: float | None) -> float:
    if signal == "rating":
        return (float(rating) - 1.0) / 4.0 if rating is not None else float("nan")
    return SATISFACTION.get(signal, float("nan"))


def feedback_examples(store, recommender) -> list[dict]:
    """One dict per request with feedback: users (internal id or -1), history (internal ids),
    instruction, template_id, cands (internal ids in shown order), sat (per candidate, NaN
    without feedback), target (index of the chosen item or -1). Rows naming items or users
    the model does not know are dropped (e.g. feedback gathered by an older catalogue)."""
    frame = store.feedback_frame()
    if frame.empty:
        return []
    ds = recommender.dataset
    known_items = dict(zip(ds.item_ids.astype(str), range(ds.n_items), strict=True))
    known_users = dict(zip(ds.user_ids.astype(str), range(ds.n_users), strict=True))
    out = []
    for rid, g in frame.groupby("request_id", sort=False):
        req = store.get_request(rid)
        shown = [known_items.get(str(it["item_id"]), -1) for it in req["items"]]
        if any(i < 0 for i in shown):
            continue
        uid = known_users.get(str(req["user_id"]), -1) if req["user_id"] is not None else -1
        if req["history"]:
            hist = [known_items.get(str(h), -1) for h in req["history"]]
            if any(h < 0 for h in hist):
                continue
            hist = np.asarray(hist, np.int64)
        elif uid >= 0:
            hist = np.asarray(recommender.sequences.get(uid, np.empty(0)), np.int64)
        else:
            continue
        sat = np.full(len(shown), np.nan, np.float32)
        pos = {str(it["item_id"]): k for k, it in enumerate(req["items"])}
        for _, row in g.sort_values("created_at").iterrows():  # the latest signal wins
            rating = (
                None if row["rating"] is None or row["rating"] != row["rating"] else row["rating"]
            )
            sat[pos[str(row["item_id"])]] = satisfaction_of(row["signal"], rating)
        best = np.nanmax(sat) if np.isfinite(sat).any() else np.nan
        target = int(np.nanargmax(sat)) if best == best and best >= 0.7 else -1
        out.append(
            {
                "request_id": rid,
                "user": uid,
                "history": hist,
                "instruction": req["instruction"],
                "template_id": req["template_id"],
                "cands": np.asarray(shown, np.int64),
                "sat": sat,
                "target": target,
            }
        )
    return out


def _feedback_module(reranker):
    import torch
    from torch import nn

    class FeedbackModel(nn.Module):
        """The reranker's network + a satisfaction head on its scores."""

        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net
            self.sat_scale = nn.Parameter(torch.ones(()))
            self.sat_bias = nn.Parameter(torch.zeros(()))

        def forward(self, batch):
            from ..models.scoring import score_batch

            scores = score_batch(self.net, batch)
            return scores, torch.sigmoid(self.sat_scale * scores + self.sat_bias)

    return FeedbackModel(reranker.scorer.model)


HEAD_FILE = "satisfaction_head.safetensors"  # sat_scale, sat_bias (0-d tensors)
OLD_HEAD_FILE = "satisfaction_head.pt"  # what instructrec wrote before (a torch pickle)


def save_satisfaction_head(directory: Path, scale: float, bias: float) -> Path:
    """Write the satisfaction head's two numbers as safetensors."""
    import torch
    from safetensors.torch import save_file

    path = Path(directory) / HEAD_FILE
    save_file(
        {"sat_scale": torch.tensor(float(scale)), "sat_bias": torch.tensor(float(bias))}, str(path)
    )
    return path


def load_satisfaction_head(directory: str | Path) -> dict[str, float]:
    """{"sat_scale", "sat_bias"} of a feedback-tuned run. A run holding only the older
    ``satisfaction_head.pt`` is a `DataError` naming `convert_satisfaction_head`."""
    from safetensors.torch import load_file

    directory = Path(directory)
    if not (directory / HEAD_FILE).exists():
        if (directory / OLD_HEAD_FILE).exists():
            raise DataError(
                f"{OLD_HEAD_FILE} was written by an older instructrec (a torch pickle); convert "
                "the run with `instructrec runs convert SRC DST`, or re-run `instructrec "
                "feedback tune`",
                source=str(directory),
            )
        raise DataError(f"no {HEAD_FILE}: not a feedback-tuned run", source=str(directory))
    tensors = load_file(str(directory / HEAD_FILE))
    return {k: float(tensors[k]) for k in ("sat_scale", "sat_bias")}


def convert_satisfaction_head(directory: str | Path) -> Path:
    """Rewrite ``satisfaction_head.pt`` (read as tensors only, ``weights_only=True``) as
    ``satisfaction_head.safetensors`` in ``directory``; the old file is removed."""
    import torch

    directory = Path(directory)
    old = directory / OLD_HEAD_FILE
    try:
        state = torch.load(old, map_location="cpu", weights_only=True)
        scale, bias = float(state["sat_scale"]), float(state["sat_bias"])
    except Exception as e:  # noqa: BLE001  (anything unreadable is a data error)
        raise DataError(
            f"cannot read {OLD_HEAD_FILE} ({type(e).__name__})", source=str(old)
        ) from None
    path = save_satisfaction_head(directory, scale, bias)
    old.unlink()
    return path


def tune_from_feedback(
    recommender,
    store,
    out_dir: str | Path,
    config: FeedbackTuneConfig | None = None,
    parent_version: str | None = None,
    *,
    overwrite: bool = False,
) -> dict:
    """Fine-tune ``recommender``'s reranker on ``store``'s feedback; save the tuned recommender
    to ``out_dir`` and register it in ``store`` as a new, inactive model version.

    ``out_dir`` is built beside itself and renamed on success; one that holds files is
    refused unless ``overwrite``. Returns a summary (examples, steps, losses, version). The
    input recommender is not modified (its reranker is deep-copied).
    """
    from ..training.rundir import check_output, staged_output

    cfg = config or FeedbackTuneConfig()
    out_dir = Path(out_dir)
    check_output(out_dir, overwrite=overwrite)
    examples = _usable_examples(recommender, store, cfg, str(getattr(store, "url", "store")))
    with staged_output(out_dir, overwrite=overwrite, keep_checkpoints=False) as work:
        tuned, summary, model = _tune_into(recommender, examples, work, cfg)
        tuned.save(work)
        save_satisfaction_head(work, float(model.sat_scale), float(model.sat_bias))
    version = f"{out_dir.name}-{int(time.time())}"
    store.register_model(
        version,
        str(out_dir.resolve()),
        parent=parent_version,
        metrics={k: v for k, v in summary.items() if k != "config"},
        activate=False,
    )
    summary["version"] = version
    return summary


def tune_in_memory(recommender, log, config: FeedbackTuneConfig | None = None) -> tuple[Any, dict]:
    """`tune_from_feedback` without saving or registering: (the tuned recommender, summary). ``log`` is any
    object with the store's ``feedback_frame()`` and ``get_request(id)`` (the replay simulator
    hot-swaps the returned recommender). Without ``config`` any amount of feedback is used
    (``min_examples=1``): a simulation tunes on what its rounds have logged so far."""
    import tempfile

    cfg = config or FeedbackTuneConfig(min_examples=1)
    examples = _usable_examples(recommender, log, cfg, "feedback log")
    with tempfile.TemporaryDirectory(prefix="instructrec-tune-") as work:
        tuned, summary, _ = _tune_into(recommender, examples, Path(work), cfg)
    return tuned, summary


def _usable_examples(recommender, log, cfg: FeedbackTuneConfig, source: str) -> list[dict]:
    """``log``'s feedback as training examples; a `DataError` when the model has no trainable
    reranker or there are fewer than ``cfg.min_examples`` of them."""
    if recommender.reranker is None or not hasattr(recommender.reranker, "scorer"):
        raise DataError(
            "the model has no trainable reranker: feedback tuning needs a run "
            "trained with a reranker (instructrec train ... with rerank)"
        )
    examples = feedback_examples(log, recommender)
    if len(examples) < cfg.min_examples:
        raise DataError(
            f"{len(examples)} requests with usable feedback; need at least {cfg.min_examples} "
            f"to tune (collect more, or lower the minimum with --set min_examples=N)",
            source=source,
        )
    return examples


def _tune_into(recommender, examples: list[dict], out_dir: Path, cfg: FeedbackTuneConfig):
    """Train a copy of ``recommender``'s reranker on ``examples`` (engine output in
    ``out_dir``): (tuned recommender, summary, feedback module). Nothing is saved here."""
    from ..training.loop import fit as engine_fit

    tuned = copy.copy(recommender)
    tuned.reranker = copy.deepcopy(recommender.reranker)
    _add_fixed_inputs(tuned, examples)
    collate = _collate(tuned.reranker, max(len(e["cands"]) for e in examples))
    loss_fn = _loss(cfg)
    model = _feedback_module(tuned.reranker)
    before = _mean_loss(model, examples, collate, loss_fn)
    t0 = time.perf_counter()
    result = engine_fit(model, examples, collate, loss_fn, _engine_config(cfg, out_dir))
    model.to("cpu").eval()
    after = _mean_loss(model, examples, collate, loss_fn)
    summary = {
        "examples": len(examples),
        "steps": int(getattr(result, "steps", 0) or 0),
        "loss_before": before,
        "loss_after": after,
        "with_choice": int(sum(e["target"] >= 0 for e in examples)),
        "seconds": time.perf_counter() - t0,
        "config": asdict(cfg),
    }
    return tuned, summary, model


def _add_fixed_inputs(tuned, examples: list[dict]) -> None:
    """Each example's query text (``query``) and z-scored priors (``prior``, (k, n_prior)):
    fixed inputs of the training, computed once."""
    from ..models.encoder_config import zscore

    rr = tuned.reranker
    n_prior = rr.scorer.model.config.n_prior
    for e in examples:
        e["query"] = rr.queries(
            [e["history"]],
            [e["instruction"]] if e["instruction"] else None,
            _usable(e["template_id"]),
        )[0]
        users = np.array([max(e["user"], 0)])
        pr = tuned.prior_scores(users, e["cands"][None, :], [e["history"]])[0]
        z = np.zeros((len(e["cands"]), n_prior), np.float32)
        if getattr(rr.scorer.model.config, "cold_channel", False):  # `rerank.cold`
            z = rr.prior_features(e["cands"][None, :], None, pr[None])[0]
        elif n_prior:
            z[:, : min(n_prior, pr.shape[-1])] = zscore(pr[None])[0][:, :n_prior]
        e["prior"] = z


def _collate(rr, width: int):
    """The batch builder of the feedback lists: `models.scoring.batch_tensors` of lists
    padded to ``width`` candidates, plus observed satisfaction, the mask of real candidates
    and the chosen item."""
    import torch

    from ..models.encoder_config import pad_histories
    from ..models.scoring import batch_tensors

    n_prior = rr.scorer.model.config.n_prior

    def collate(rows: list[dict]) -> dict:
        b = len(rows)
        cands = np.full((b, width), -1, np.int64)
        sat = np.full((b, width), np.nan, np.float32)
        prior = np.zeros((b, width, n_prior), np.float32)
        mask = np.zeros((b, width), bool)
        for i, r in enumerate(rows):
            k = len(r["cands"])
            cands[i, :k], sat[i, :k], prior[i, :k] = r["cands"], r["sat"], r["prior"]
            mask[i, :k] = True
        batch = batch_tensors(
            rr.scorer.tokenizer,
            rr.scorer.model.config.max_query_len,
            [r["query"] for r in rows],
            cands,
            pad_histories([r["history"] for r in rows], rr.config.history_len),
            prior,
        )
        batch["sat"] = torch.as_tensor(sat)
        batch["mask"] = torch.as_tensor(mask)
        batch["target"] = torch.as_tensor([r["target"] for r in rows])
        return batch

    return collate


def _loss(cfg: FeedbackTuneConfig):
    """The engine's ``loss_fn``: ranking loss + ``cfg.lam`` x satisfaction MSE."""
    from ..training.losses import feedback_loss

    def loss_fn(model, batch):
        scores, sat_pred = model(batch)
        return feedback_loss(
            scores,
            batch["target"],
            sat_pred[batch["mask"]],
            batch["sat"][batch["mask"]],
            lam=cfg.lam,
            mask=batch["mask"],
            ranking=cfg.ranking,
        )

    return loss_fn


def _engine_config(cfg: FeedbackTuneConfig, out_dir: Path):
    """The `TrainConfig` of a feedback-tuning run: no evaluation, no resume, no bar."""
    from ..training.config import TrainConfig

    return TrainConfig(
        output_dir=str(out_dir / "feedback-training"),
        lr=cfg.lr,
        epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        device=cfg.device,
        progress=False,
        resume=False,
        eval_every=10**9,
        patience=0,
    )


def _usable(template_id: str | None) -> Any:
    from .bandit import usable_template

    return usable_template(template_id)


def _mean_loss(model, examples, collate, loss_fn) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        batch = collate(examples)
        batch = {k: v.to(next(model.parameters()).device) for k, v in batch.items()}
        return float(loss_fn(model, batch)["loss"])
