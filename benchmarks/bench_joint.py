"""Benchmark: the joint reader (`instructrec.rerank.joint`) at the VALIDATION stage.

Three phases, so the expensive middle one can run on an accelerator that has only torch,
transformers and peft (no pandas, no data files):

1. ``prepare`` (here): load a saved run (dataset, split, the prior retrievers fitted on all
   training data), fit the stacked priors (cached under ``--cache``), build the bi-encoder's
   training instances (`rerank.instances.build_instances`, the run's `RerankerConfig`,
   capped at ``--max-instances``), 400 validation rows for calibration, and, for each
   protocol, exactly what `instructrec.evaluation.run` (stage "valid", never test) would feed
   a model: rows, candidates, query texts, prior features. Writes a bundle (JSON + .npz).
2. ``train`` (anywhere): build the reader, warm-start its prior weights at the priors-only
   fit, train, re-fit the prior weights on the validation rows (as the bi-encoder does),
   score every protocol's rows (with and without the text part), time one joint pass over 20
   candidates vs 20 cross-encoder passes with the same backbone. Writes scores + record.
3. ``report`` (here): per-row metrics, paired bootstrap over rows against the rivals'
   per-row values saved by the run's validation evaluation (``--eval``: score-mix,
   sasrec+filter, the bi-encoder `instructrec`, sasrec) and against `joint-notext` (the same
   calibrated prior weights, no text). Writes benchmarks/results/joint_valid.{json,md}
   (`bench_joint_report.py`). ``cost`` times the same on this machine's CPU, one thread.

    python benchmarks/bench_joint.py prepare --bundle /tmp/jb --max-instances 3000
    python benchmarks/bench_joint.py train --bundle /tmp/jb --out /tmp/jo [--backbone DIR]
    python benchmarks/bench_joint.py report --bundle /tmp/jb --scores /tmp/jo
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PROTOCOLS = ["cand10", "search", "vague", "vague-para", "search-hard"]
RIVALS = ["score-mix", "sasrec+filter", "instructrec", "sasrec"]


# ---------------------------------------------------------------------- prepare (CPU, data)
def stacked_priors(priors, dataset, split, holdout: int, cache: Path):
    """The prior retrievers re-fitted without each user's last ``holdout`` training items."""
    from instructrec.rerank.rerank_features import stacked_frame
    from instructrec.retrieval.base import Retriever

    out = []
    fit_part, _ = stacked_frame(split.train, holdout)
    for i, p in enumerate(priors):
        d = cache / f"stacked-{i}-{getattr(p, 'name', type(p).__name__)}"
        if (d / "retriever.json").exists():
            out.append(Retriever.load(d))
            continue
        t0 = time.perf_counter()
        q = copy.deepcopy(p)
        q.fit(fit_part, dataset.n_users, dataset.n_items)
        q.save(d)
        print(f"stacked {d.name}: {time.perf_counter() - t0:.0f}s", flush=True)
        out.append(q)
    return out


class Capture:
    """A model for `evaluation.run` that records what it is asked to score (query texts,
    candidates, prior features) and returns zeros."""

    def __init__(self, rr, priors) -> None:
        self.rr, self.priors, self.calls = rr, priors, []

    def score_candidates(self, users, candidates, histories, intentions=None, templates=None):
        from instructrec.rerank.rerank_features import score_priors

        cands = np.asarray(candidates, np.int64)
        raw = score_priors(self.priors, np.asarray(users), cands, list(histories))
        hists = [np.asarray(h, np.int64) for h in histories]
        self.calls.append(
            {
                "users": np.asarray(users, np.int64),
                "cands": cands,
                "texts": self.rr.queries(hists, intentions, templates),
                "features": self.rr.prior_features(cands, intentions, raw),
            }
        )
        return np.zeros(cands.shape, np.float32)


def prepare(args) -> None:
    from instructrec.data import load_split
    from instructrec.evaluation.run import run as run_protocol
    from instructrec.recommender import Recommender
    from instructrec.rerank.instances import TextSide
    from instructrec.rerank.joint import JointConfig, JointReranker
    from instructrec.rerank.joint_fit import build_joint_instances, validation_rows
    from instructrec.rerank.rerank_features import item_texts
    from instructrec.rerank.reranker import RerankerConfig

    run_dir, eval_dir, bundle = Path(args.run), Path(args.eval), Path(args.bundle)
    bundle.mkdir(parents=True, exist_ok=True)
    rec = Recommender.load(run_dir / "model")
    dataset, priors = rec.dataset, list(rec.priors)
    split = load_split(run_dir / "split", dataset)
    saved = rec.reranker.config
    jcfg = JointConfig(
        n_prior=len(priors) + 1,
        layout=args.layout,
        query_tokens=args.query_tokens,
        cand_tokens=args.cand_tokens,
    )
    text = TextSide.of(dataset)
    rr = JointReranker.build(item_texts(dataset), text, jcfg, [p.name for p in priors])
    rr.dataset = dataset
    stacked = stacked_priors(priors, dataset, split, saved.holdout, Path(args.cache))
    rcfg = RerankerConfig(**{**saved.__dict__, "max_instances": args.max_instances})
    inst = build_joint_instances(rr, dataset, split, stacked, rcfg)
    valid = validation_rows(rr, dataset, split, priors, saved.valid_rows or 400, saved.seed)
    arrays = {
        "train_cands": inst.cands,
        "train_label": inst.label,
        "train_prior": inst.prior,
        "valid_cands": valid.cands,
        "valid_features": valid.features,
    }
    texts = {"train": list(inst.texts), "valid": valid.texts}
    protocols = {}
    for p in [x for x in args.protocols.split(",") if x]:
        cap = Capture(rr, priors)
        report = run_protocol(p, dataset, split, {"joint": cap}, seed=0, stage="valid")
        (call,) = cap.calls
        mine = report.manifest.get("split_files", {})
        theirs = json.loads((eval_dir / p / "manifest.json").read_text())["split_files"]
        cand = f"{report.manifest['config']['candidates']}.valid.npy"
        if mine.get(cand) != theirs.get(cand):
            raise ValueError(f"{p}: candidate file {cand} differs from the rivals' run")
        arrays[f"{p}__cands"], arrays[f"{p}__features"] = call["cands"], call["features"]
        texts[p] = call["texts"]
        protocols[p] = {
            "metrics": list(report.metrics),
            "users": [str(u) for u in dataset.user_ids[call["users"]]],
            "candidate_file": {cand: mine.get(cand)},
            "notes": report.notes,
        }
        print(f"{p}: {len(call['texts'])} rows", flush=True)
    c20 = split.candidates["cand20"]["valid"][:10].astype(np.int64)  # the cost requests
    seqs = split.sequences("valid")
    u20 = split.valid["user"].to_numpy(np.int64)[:10]
    arrays["cand20_cands"] = c20
    texts["cand20"] = rr.queries([np.asarray(seqs.get(int(u), []), np.int64) for u in u20])
    np.savez_compressed(bundle / "arrays.npz", **arrays)
    meta = {
        "run": str(run_dir),
        "eval": str(eval_dir),
        "stage": "valid",
        "joint_config": jcfg.__dict__,
        "reranker_config": {**saved.__dict__, "max_instances": args.max_instances},
        "prior_names": rr.prior_names,
        "item_texts": rr.item_texts,
        "text_side": text.to_dict(),
        "protocols": protocols,
        "instances": len(inst.texts),
    }
    (bundle / "bundle.json").write_text(json.dumps(meta, default=str))
    (bundle / "texts.json").write_text(json.dumps(texts))
    print(f"bundle: {bundle} ({len(inst.texts)} training instances)", flush=True)


# ---------------------------------------------------------------------- train (torch only)
def cost(rr, texts, cands, n_requests: int = 10, repeats: int = 3) -> dict:
    """Seconds to rerank 20 candidates: one joint pass vs 20 cross-encoder passes (query
    [SEP] candidate) through the same tower, median over requests x repeats."""
    import torch

    from instructrec.rerank.joint import token_lists

    dev = rr.model.prior_w.device
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    tower = rr.model.tower
    cls_id, sep_id, pad_id = rr.specials
    feats = np.zeros(cands.shape + (rr.config.n_prior,), np.float32)

    def cross_batch(i):
        q = token_lists(rr.tokenizer, [texts[i]], rr.config.query_tokens)[0]
        rows = [[cls_id, *q, sep_id, *rr.cand_tokens[int(j)], sep_id] for j in cands[i]]
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), pad_id)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            ids[r, : len(row)], mask[r, : len(row)] = torch.as_tensor(row), 1
        return ids.to(dev), mask.to(dev)

    def joint(i):
        rr.score_texts(texts[i : i + 1], cands[i : i + 1], feats[i : i + 1], batch_size=1)

    def cross_batched(i):
        ids, mask = cross_batch(i)
        tower(input_ids=ids, attention_mask=mask)

    def cross_single(i):
        ids, mask = cross_batch(i)
        for r in range(len(ids)):
            m = mask[r].bool()
            tower(input_ids=ids[r : r + 1, m], attention_mask=mask[r : r + 1, m])

    rr.model.eval()
    out = {}
    with torch.no_grad():
        for name, fn in (
            ("joint_s", joint),
            ("cross20_batched_s", cross_batched),
            ("cross20_single_s", cross_single),
        ):
            fn(0)
            times = []
            for _ in range(repeats):
                for i in range(n_requests):
                    sync()
                    t0 = time.perf_counter()
                    fn(i)
                    sync()
                    times.append(time.perf_counter() - t0)
            out[name] = float(np.median(times))
    enc = rr.encode(texts[:n_requests], cands[:n_requests])
    out["joint_tokens_mean"] = float((enc["segment"] > -2).sum(1).float().mean())
    out["ratio_vs_batched"] = out["joint_s"] / out["cross20_batched_s"]
    out["ratio_vs_single"] = out["joint_s"] / out["cross20_single_s"]
    out["device"] = str(dev)
    out["threads"] = torch.get_num_threads()
    out["requests"], out["repeats"] = n_requests, repeats
    return out


def train(args) -> None:
    import platform
    from types import SimpleNamespace

    import torch
    from safetensors.torch import save_file

    from instructrec.rerank.joint import JointConfig, JointReader, JointReranker
    from instructrec.rerank.joint_fit import JointTrainConfig, ValidRows, calibrate, fit_joint

    t_start = time.perf_counter()
    bundle, out = Path(args.bundle), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = json.loads((bundle / "bundle.json").read_text())
    texts = json.loads((bundle / "texts.json").read_text())
    arr = dict(np.load(bundle / "arrays.npz", allow_pickle=False))
    jcfg = JointConfig(**{**meta["joint_config"], "backbone": args.backbone})
    if args.layout:
        jcfg.layout = args.layout
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    from transformers import AutoModel, AutoTokenizer

    from instructrec.models.bert_files import default_backbone

    path = args.backbone or default_backbone()
    tok, backbone = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).float()
    text_side = SimpleNamespace(**meta["text_side"])  # texts come rendered: titles unused
    rr = JointReranker(
        JointReader(jcfg, backbone), tok, meta["item_texts"], text_side, jcfg, meta["prior_names"]
    )
    rr.model.to(dev)
    record: dict = {
        "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else platform.processor(),
        "torch": torch.__version__,
        "joint_config": jcfg.__dict__,
    }
    # the parallel layout must be order-free on this transformers version: check once
    k = arr["cand10__cands"].shape[1]
    perm = np.random.default_rng(0).permutation(k)
    c, f, t = arr["cand10__cands"][:4], arr["cand10__features"][:4], texts["cand10"][:4]
    with torch.no_grad():
        rr.model.text_head[2].weight.normal_()
        a = rr.score_texts(t, c, f)
        b = rr.score_texts(t, c[:, perm], f[:, perm])
        rr.model.text_head[2].weight.zero_()
    record["order_free_max_abs_diff"] = float(np.abs(a[:, perm] - b).max())
    print(f"order check ({jcfg.layout}): {record['order_free_max_abs_diff']:.2e}", flush=True)
    n = min(len(texts["train"]), args.max_instances or len(texts["train"]))
    inst = SimpleNamespace(
        texts=texts["train"][:n],
        cands=arr["train_cands"][:n],
        label=arr["train_label"][:n],
        prior=arr["train_prior"][:n],
    )
    tcfg = JointTrainConfig(
        lr=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_steps=args.max_steps,
        log_every=args.log_every,
    )
    record["train_config"] = tcfg.__dict__
    record["train"] = fit_joint(rr, inst, tcfg)
    valid = ValidRows(arr["valid_cands"], texts["valid"], arr["valid_features"])
    record["calibrated_prior_w"] = calibrate(rr, valid, args.score_batch)
    print(f"calibrated prior weights {record['calibrated_prior_w']}", flush=True)
    scores, w = {}, rr.model.prior_w.detach().cpu().numpy()
    for p in meta["protocols"]:
        t0 = time.perf_counter()
        full, _ = rr.score_texts(
            texts[p], arr[f"{p}__cands"], arr[f"{p}__features"], args.score_batch, parts=True
        )
        scores[f"{p}__joint"] = full
        scores[f"{p}__notext"] = arr[f"{p}__features"] @ w
        record[f"score_s/{p}"] = round(time.perf_counter() - t0, 1)
    np.savez_compressed(out / "scores.npz", **scores)
    if not args.skip_cost and "cand20_cands" in arr:
        record["cost"] = cost(rr, texts["cand20"], arr["cand20_cands"])
    state = {k: v.detach().cpu().contiguous() for k, v in rr.model.trainable_state().items()}
    save_file(state, str(out / "weights.safetensors"))
    record["seconds"] = round(time.perf_counter() - t_start, 1)
    (out / "record.json").write_text(json.dumps(record, indent=2, default=str))
    print(json.dumps({k: v for k, v in record.items() if k != "joint_config"}, default=str))


def cpu_cost(args) -> None:
    """The cost figures on this machine (one thread), untrained weights (same arithmetic)."""
    from types import SimpleNamespace

    import torch

    from instructrec.rerank.joint import JointConfig, JointReranker

    torch.set_num_threads(1)
    bundle = Path(args.bundle)
    meta = json.loads((bundle / "bundle.json").read_text())
    texts = json.loads((bundle / "texts.json").read_text())
    arr = np.load(bundle / "arrays.npz", allow_pickle=False)
    jcfg = JointConfig(
        **{**meta["joint_config"], "layout": args.layout or meta["joint_config"]["layout"]}
    )
    rr = JointReranker.build(
        meta["item_texts"], SimpleNamespace(**meta["text_side"]), jcfg, meta["prior_names"]
    )
    res = cost(rr, texts["cand20"], arr["cand20_cands"], repeats=args.repeats)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "cost_cpu.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="phase", required=True)
    a = sub.add_parser("prepare")
    a.add_argument("--run", default="/work/runs/ml100k/seed-0")
    a.add_argument("--eval", default="/work/runs/ml100k/eval-valid/seed-0")
    a.add_argument("--cache", default="/tmp/joint-cache")
    a.add_argument("--bundle", required=True)
    a.add_argument("--max-instances", type=int, default=3000)
    a.add_argument("--layout", default="parallel")
    a.add_argument("--query-tokens", type=int, default=64)
    a.add_argument("--cand-tokens", type=int, default=16)
    a.add_argument("--protocols", default=",".join(PROTOCOLS))
    t = sub.add_parser("train")
    t.add_argument("--bundle", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--backbone", default=None)
    t.add_argument("--layout", default=None)
    t.add_argument("--max-instances", type=int, default=None)
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--max-steps", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--score-batch", type=int, default=16)
    t.add_argument("--log-every", type=int, default=20)
    t.add_argument("--skip-cost", action="store_true")
    c = sub.add_parser("cost")
    c.add_argument("--bundle", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--repeats", type=int, default=3)
    c.add_argument("--layout", default=None)
    r = sub.add_parser("report")
    r.add_argument("--bundle", required=True)
    r.add_argument("--scores", required=True)
    r.add_argument("--cpu-cost", default=None)
    r.add_argument("--n-boot", type=int, default=1000)
    r.add_argument("--tag", default="joint_valid")
    args = ap.parse_args()
    if args.phase == "report":
        from bench_joint_report import report

        report(args, HERE / "results", RIVALS)
        return
    {"prepare": prepare, "train": train, "cost": cpu_cost}[args.phase](args)


if __name__ == "__main__":
    main()
