"""Report phase of `bench_joint.py`: per-row metrics of the joint reader's validation scores,
paired bootstrap over rows against the rivals' saved per-row values and against the reader's
own text-free part; writes the results JSON and Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def report(args, res_dir: Path, rivals_wanted) -> None:
    """Write ``res_dir/{args.tag}.{json,md}`` from a bundle and a ``train`` output."""
    import pandas as pd

    from instructrec import stats as S
    from instructrec.evaluation import metrics as M
    from instructrec.evaluation.manifest import machine

    bundle, scores_dir = Path(args.bundle), Path(args.scores)
    meta = json.loads((bundle / "bundle.json").read_text())
    rec = json.loads((scores_dir / "record.json").read_text())
    sc = np.load(scores_dir / "scores.npz", allow_pickle=False)
    eval_dir = Path(meta["eval"])
    out = {
        "run": meta["run"],
        "eval": meta["eval"],
        "stage": "valid",
        "bundle_instances": meta["instances"],
        "reranker_config": meta["reranker_config"],
        "record": rec,
        "report_machine": machine("torch"),
        "protocols": {},
    }
    cpu = scores_dir / "cost_cpu.json"
    if args.cpu_cost and Path(args.cpu_cost).exists():
        cpu = Path(args.cpu_cost)
    if cpu.exists():
        out["cost_cpu"] = json.loads(cpu.read_text())
    for p, info in meta["protocols"].items():
        metrics, users = info["metrics"], pd.Index(info["users"], name="user")
        ours = {
            name: pd.DataFrame(
                M.compute(M.ranks_from_scores(sc[f"{p}__{key}"]), metrics), index=users
            )
            for name, key in (("joint", "joint"), ("joint-notext", "notext"))
        }
        saved = pd.read_csv(eval_dir / p / "per_user.csv", dtype={"user": str})
        rivals = {
            m: g.set_index("user").drop(columns="model").reindex(users)
            for m, g in saved.groupby("model")
            if m in rivals_wanted
        }
        idx = S.resample_indices(len(users), args.n_boot, 0)
        res = {"rows": len(users), "metrics": metrics, "means": {}, "ci": {}, "paired": {}}
        for name, df in {**ours, **rivals}.items():
            if df[metrics].isna().any().any():
                raise ValueError(f"{p}: {name} lacks rows of this evaluation")
            res["means"][name] = {m: float(df[m].mean()) for m in metrics}
            res["ci"][name] = {m: S.bootstrap_ci(df[m].to_numpy(), idx) for m in metrics}
        for base, b in {"joint-notext": ours["joint-notext"], **rivals}.items():
            res["paired"][base] = {}
            for m in metrics:
                pb = S.paired_bootstrap(ours["joint"][m].to_numpy(), b[m].to_numpy(), idx)
                st = S.sign_test(ours["joint"][m].to_numpy(), b[m].to_numpy())
                res["paired"][base][m] = {
                    "diff": pb["diff"],
                    "ci": pb["diff_ci"],
                    "p": pb["p_bootstrap"],
                    "wins": st["wins"],
                    "losses": st["losses"],
                }
        out["protocols"][p] = res
    (res_dir / f"{args.tag}.json").write_text(json.dumps(out, indent=2, default=str))
    (res_dir / f"{args.tag}.md").write_text(to_markdown(out))
    print(to_markdown(out))


def _cell(r, b, m):
    d = r["paired"].get(b, {}).get(m)
    return "" if d is None else f"{d['diff']:+.4f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]"


def to_markdown(out: dict) -> str:
    rec = out["record"]
    tr = rec.get("train", {})
    lines = [
        "# Joint reader (query + candidates in one pass), ML-100K seed 0, VALIDATION stage",
        "",
        f"Run `{out['run']}`; rivals' per-row values from `{out['eval']}` (same candidate "
        f"files, hashes checked). Trained on {rec.get('device')} (torch {rec.get('torch')}): "
        f"{tr.get('instances')} instances, {tr.get('steps')} steps, {tr.get('seconds')} s; "
        f"loss {tr.get('loss_first', float('nan')):.3f} -> {tr.get('loss_last', float('nan')):.3f}. "
        f"Layout {rec['joint_config']['layout']}, query {rec['joint_config']['query_tokens']} "
        f"+ {rec['joint_config']['cand_tokens']} tokens per candidate; training "
        f"{json.dumps(rec.get('train_config'))}. Prior weights: warm start "
        f"{_fmt(tr.get('prior_mixture'))}, after training {_fmt(tr.get('prior_w_trained'))}, "
        f"calibrated on 400 validation rows {_fmt(rec.get('calibrated_prior_w'))}.",
        "",
        "| protocol | metric | joint | joint-notext | score-mix | sasrec+filter | bi-encoder "
        "| sasrec | joint - score-mix [95% CI] | joint - bi-encoder [95% CI] "
        "| joint - sasrec+filter [95% CI] | joint - joint-notext [95% CI] |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p, r in out["protocols"].items():
        for m in r["metrics"]:
            mean = {k: f"{v[m]:.4f}" for k, v in r["means"].items()}
            lines.append(
                f"| {p} | {m} | **{mean.get('joint', '')}** | {mean.get('joint-notext', '')} | "
                f"{mean.get('score-mix', '')} | {mean.get('sasrec+filter', '')} | "
                f"{mean.get('instructrec', '')} | {mean.get('sasrec', '')} | "
                f"{_cell(r, 'score-mix', m)} | {_cell(r, 'instructrec', m)} | "
                f"{_cell(r, 'sasrec+filter', m)} | {_cell(r, 'joint-notext', m)} |"
            )
    lines += [
        "",
        "Paired bootstrap over the validation rows (users), 1000 resamples; exploratory (no "
        "multiplicity adjustment). `joint-notext`: the same model's calibrated prior weights "
        "without the text score. `bi-encoder`: the saved run's reranker (`instructrec`).",
    ]
    for key, label in (("cost", "accelerator"), ("cost_cpu", "CPU")):
        c = out.get(key) or rec.get(key)
        if c:
            lines.append(
                f"\nCost on {label} ({c['device']}, {c['threads']} thread(s); median of "
                f"{c['requests']}x{c['repeats']} cand20 validation requests): one joint pass "
                f"{c['joint_s'] * 1000:.1f} ms ({c['joint_tokens_mean']:.0f} tokens) vs 20 "
                f"cross-encoder passes {c['cross20_batched_s'] * 1000:.1f} ms as one batch "
                f"(ratio **{c['ratio_vs_batched']:.3f}**) or {c['cross20_single_s'] * 1000:.1f} "
                f"ms one by one (ratio {c['ratio_vs_single']:.3f}); target <= 0.2."
            )
    return "\n".join(lines) + "\n"


def _fmt(w) -> str:
    return "-" if not w else "[" + ", ".join(f"{x:.2f}" for x in w) + "]"
