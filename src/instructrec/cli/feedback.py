"""`instructrec feedback`: look at stored feedback, tune on it, simulate the loop offline."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import retired_option, set_option

DB_HELP = "feedback store URL: sqlite:///file.db or postgresql+psycopg://user:pw@host/db"


@click.group()
def feedback() -> None:
    """Feedback store, feedback tuning and simulated users."""


@feedback.command()
@click.option("--db", required=True, help=DB_HELP)
def stats(db: str) -> None:
    """Counts of requests and feedback, bandit arms and model versions (JSON)."""
    from instructrec.feedback.store import Store

    store = Store(db)
    out = store.stats()
    out["model_versions"] = store.model_versions()
    click.echo(json.dumps(out, indent=2, default=str))


@feedback.command()
@click.option(
    "--model",
    "run_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="the served run directory (with a reranker)",
)
@click.option("--db", required=True, help=DB_HELP)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="directory of the new, tuned run",
)
@set_option
@retired_option("--lam", "lam")
@retired_option("--lr", "lr")
@retired_option("--epochs", "epochs")
@retired_option("--max-steps", "max_steps")
@retired_option("--batch-size", "batch_size")
@retired_option("--device", "device")
@retired_option("--min-examples", "min_examples")
@click.option("--overwrite", is_flag=True, help="replace the run already in --out")
def tune(run_dir: Path, db: str, out_dir: Path, sets: tuple[str, ...], overwrite: bool) -> None:
    """Fine-tune the reranker on stored feedback; register the result as a new model version.
    Settings (`FeedbackTuneConfig`) change with --set KEY=VALUE: lam (0.5), ranking, lr (1e-4),
    epochs (1), max_steps, batch_size (16), min_examples (32), seed, device."""
    from instructrec.data.settings import load_config
    from instructrec.feedback.store import Store
    from instructrec.feedback.tuning import FeedbackTuneConfig, tune_from_feedback
    from instructrec.recommender import Recommender

    from .common import model_path

    rec = Recommender.load(model_path(run_dir))
    store = Store(db)
    parent = (store.active_model() or {}).get("version")
    summary = tune_from_feedback(
        rec,
        store,
        out_dir,
        load_config(FeedbackTuneConfig, None, sets),
        parent_version=parent,
        overwrite=overwrite,
    )
    click.echo(json.dumps(summary, indent=2, default=str))
    click.echo(
        f"registered {summary['version']}; serve it with POST /v1/admin/model "
        f'{{"run_dir": "{out_dir.resolve()}"}}',
        err=True,
    )


@feedback.command()
@click.option(
    "--model",
    "run_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="the served run directory (its reranker evaluates proposals offline)",
)
@click.option("--db", required=True, help=DB_HELP)
@click.option(
    "--teacher",
    "endpoint",
    required=True,
    help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8001 (/v1/chat/completions is "
    "appended; bearer key: env INSTRUCTREC_TEACHER_KEY); the instruction builder's teacher client",
)
@click.option("--teacher-model", default="teacher", show_default=True)
@click.option("--slot", default="P1I0T3", show_default=True, help="the (P,I,T) slot to rewrite")
@click.option("--proposals", default=3, show_default=True, type=int)
@click.option(
    "--rows",
    default=200,
    show_default=True,
    type=int,
    help="validation rows (cand10) scoring each template offline",
)
def optimize(
    run_dir: Path, db: str, endpoint: str, teacher_model: str, slot: str, proposals: int, rows: int
) -> None:
    """OPRO-style template rewrites by a teacher LLM; adopted only if validation is not worse."""
    from instructrec.data import make_split
    from instructrec.feedback.bandit import TemplateBandit
    from instructrec.feedback.optimize import opro_teacher, optimize_slot, validation_evaluator
    from instructrec.feedback.store import Store
    from instructrec.instructions.catalogue import TemplateCatalogue
    from instructrec.recommender import Recommender

    rec = Recommender.load(run_dir)
    store = Store(db)
    means = TemplateBandit(store).means(slot)  # what users said about each template so far
    cat = TemplateCatalogue.default()
    texts = {a: v["text"] for a, v in store.arms(slot).get(slot, {}).items() if v["text"]}
    scored = []
    for tid, mean in means.items():
        try:
            scored.append((texts.get(tid) or cat.get(tid).text, mean))
        except Exception:  # noqa: BLE001 - an arm without text (e.g. a default arm)
            continue
    evaluate = validation_evaluator(rec, make_split(rec.dataset, seed=0), slot, rows=rows)
    res = optimize_slot(
        slot,
        scored,
        evaluate,
        opro_teacher(endpoint, model=teacher_model),
        proposals=proposals,
        state=store,
    )
    click.echo(json.dumps([p.__dict__ for p in res.proposals], indent=2, default=str))


@feedback.command()
@click.option("--rounds", default=5, show_default=True, type=int)
@click.option("--users", default=200, show_default=True, type=int)
@click.option("--n", default=10, show_default=True, type=int, help="items shown per round")
@click.option(
    "--heldout-frac",
    default=0.3,
    show_default=True,
    type=float,
    help="late share of each user's log used as the simulated user's taste",
)
@click.option(
    "--retriever", default="itemknn", show_default=True, type=click.Choice(["itemknn", "pop"])
)
@click.option(
    "--model",
    "run_dir",
    default=None,
    type=click.Path(path_type=Path),
    help="a saved run whose reranker reorders the candidates (optional)",
)
@click.option("--instruction", default=None, help="request text every simulated user sends")
@click.option("--db", default=None, help="record the feedback arm into this store (optional)")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--tune-every",
    default=0,
    show_default=True,
    type=int,
    help="fine-tune the reranker on the feedback every k rounds (needs --model with a "
    "reranker; 0: never)",
)
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(path_type=Path),
    help="write simulation.json, simulation.md and simulation.png here (--replay: replay.json, "
    "replay.md, replay_<metric>.png)",
)
@click.option(
    "--replay",
    is_flag=True,
    help="replay users' own hidden future (training split only): control vs each feedback "
    "mechanism vs all, over --seeds, paired CIs (see docs/feedback.md)",
)
@click.option(
    "--split",
    "split_dir",
    default=None,
    type=click.Path(path_type=Path),
    help="--replay: a saved split whose training part is replayed (default: the run's split "
    "next to --model, else leave-one-out seed 0)",
)
@click.option("--seeds", default="0,1,2,3,4", show_default=True, help="--replay: user draws")
@click.option("--new-users", default=50, show_default=True, type=int, help="--replay: per seed")
@click.option("--noise", default=0.0, show_default=True, type=float, help="--replay: answer noise")
@click.option(
    "--arms",
    default=None,
    help="--replay: comma-separated arms (control, norepeat, session, bandit, tuning, profile, "
    "all; default: all that can act)",
)
def simulate(
    rounds: int,
    users: int,
    n: int,
    heldout_frac: float,
    retriever: str,
    run_dir: Path | None,
    instruction: str | None,
    db: str | None,
    seed: int,
    tune_every: int,
    out_dir: Path | None,
    replay: bool,
    split_dir: Path | None,
    seeds: str,
    new_users: int,
    noise: float,
    arms: str | None,
) -> None:
    """Simulated ML-100K users: feedback loop vs a no-feedback control, per round with 95% CIs.

    With --replay: users answer from their own hidden future (the recommended study)."""
    from instructrec.data import load_movielens_100k
    from instructrec.data.errors import DataError
    from instructrec.feedback.simulate import SimConfig
    from instructrec.feedback.simulate import simulate as run_sim

    for name, value, low in (("rounds", rounds, 1), ("users", users, 1), ("n", n, 1)):
        if value < low:
            raise DataError(f"--{name} must be >= {low}, got {value}")
    if replay:
        _replay(
            run_dir,
            split_dir,
            rounds,
            users,
            new_users,
            n,
            heldout_frac,
            noise,
            seeds,
            arms,
            tune_every,
            out_dir,
        )
        return
    rec = None
    if run_dir is not None:
        from instructrec.recommender import Recommender

        rec = Recommender.load(run_dir)
        dataset = rec.dataset
    else:
        dataset = load_movielens_100k()
    store, tuner = None, None
    if tune_every > 0:
        if rec is None or rec.reranker is None:
            raise DataError("--tune-every needs --model with a trained reranker")
        if db is None:
            import tempfile

            db = f"sqlite:///{tempfile.mkdtemp(prefix='instructrec-sim-')}/feedback.db"
        tuner = _sim_tuner(
            Path(db.replace("sqlite:///", "")).parent if db.startswith("sqlite:///") else Path.cwd()
        )
    if db is not None:
        from instructrec.feedback.store import Store

        store = Store(db)
    cfg = SimConfig(
        rounds=rounds,
        users=users,
        n=n,
        heldout_frac=heldout_frac,
        retriever=retriever,
        instruction=instruction,
        seed=seed,
        tune_every=tune_every,
    )
    result = run_sim(dataset, cfg, recommender=rec, store=store, tuner=tuner)
    click.echo(result.to_markdown())
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "simulation.json").write_text(
            json.dumps(result.to_json(), indent=2, default=str)
        )
        (out_dir / "simulation.md").write_text(result.to_markdown())
        result.plot(out_dir / "simulation.png")
        click.echo(f"wrote {out_dir}/simulation.{{json,md,png}}", err=True)


def _sim_tuner(work: Path):
    """A simulation tuner: fine-tune on the store's feedback, reload the tuned run."""
    calls = {"k": 0}

    def tuner(rec, store):
        from instructrec.feedback.tuning import tune_from_feedback
        from instructrec.recommender import Recommender

        calls["k"] += 1
        out = work / f"sim-tuned-{calls['k']}"
        tune_from_feedback(rec, store, out, overwrite=True)  # scratch folders of this simulation
        return Recommender.load(out)

    return tuner


def _replay(
    run_dir,
    split_dir,
    rounds,
    users,
    new_users,
    n,
    hidden_frac,
    noise,
    seeds,
    arms,
    tune_every,
    out_dir,
) -> None:
    """`feedback simulate --replay`: parse, call `replay_study`, print and write the report."""
    from instructrec.data.errors import DataError
    from instructrec.data.split import leave_one_out
    from instructrec.data.split_files import load_split
    from instructrec.feedback.replay import ReplayConfig, split_known_hidden
    from instructrec.feedback.replay_report import (
        plot,
        refit_priors,
        replay_study,
        standard_summaries,
        to_json,
        to_markdown,
    )

    try:
        seed_list = [int(x) for x in seeds.split(",") if x.strip()]
    except ValueError:
        raise DataError(f"--seeds must be comma-separated integers, got {seeds!r}") from None
    rec = None
    if run_dir is not None:
        from instructrec.recommender import Recommender

        rec = Recommender.load(run_dir)
        dataset = rec.dataset
        if split_dir is None and (Path(run_dir).parent / "split").is_dir():
            split_dir = Path(run_dir).parent / "split"
    else:
        from instructrec.data import load_movielens_100k

        dataset = load_movielens_100k()
    split = load_split(split_dir, dataset) if split_dir else leave_one_out(dataset, seed=0)
    cfg = ReplayConfig(
        rounds=rounds, users=users, new_users=new_users, n=n, hidden_frac=hidden_frac, noise=noise
    )
    if rec is not None:
        refit_priors(rec, split_known_hidden(split.train, cfg.hidden_frac)[0])
    run = replay_study(
        dataset,
        split.train,
        cfg,
        seed_list,
        [a.strip() for a in arms.split(",")] if arms else None,
        recommender=rec,
        tune_every=tune_every or 2,
    )
    sums = standard_summaries(run)
    md = to_markdown(run, sums)
    click.echo(md)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "replay.json").write_text(json.dumps(to_json(run, sums), indent=2, default=str))
        (out_dir / "replay.md").write_text(md)
        pngs = plot(run, sums["vs control"], out_dir / "replay")
        note = "" if pngs else " (no plots: matplotlib is not installed)"
        click.echo(f"wrote {out_dir}/replay.{{json,md}} and {len(pngs)} plots{note}", err=True)
