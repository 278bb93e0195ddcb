"""The feedback loop end to end through the real service (issue 17, item 4).

`instructrec serve` on a SQLite store; replayed users (`feedback.replay`) post requests and
feedback over HTTP (`feedback.replay_http`); `instructrec feedback tune` builds a new version
from the store; the service hot-swaps it; the next rounds are measured the same way. Control
(same users, same server, played first, no feedback, no session) is the baseline.
"""

from __future__ import annotations

import pytest

from instructrec.feedback.mechanisms import Mechanisms
from instructrec.feedback.replay import ReplayConfig, replay_users, split_known_hidden

API, ADMIN = "loop-key", "loop-admin-key"
ROUNDS, TUNE_AFTER, N = 4, 2, 5


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A small item-kNN + fresh MiniLM reranker (LoRA r=4) run whose first stage is fitted
    on the known part only, saved under a model root; the replay's known/hidden cut."""
    from instructrec.data import make_split
    from instructrec.feedback.replay_report import refit_priors
    from instructrec.models.encoder_config import EncoderConfig
    from instructrec.models.encoder_scorer import EncoderScorer
    from instructrec.recommender import Recommender
    from instructrec.rerank.instances import TextSide
    from instructrec.rerank.rerank_features import item_texts
    from instructrec.rerank.reranker import InstructionReranker, RerankerConfig
    from instructrec.retrieval.itemknn import ItemKNN
    from instructrec.testing.datasets import synthetic_dataset

    ds = synthetic_dataset(n_users=30, n_items=50, per_user=14, seed=3)
    split = make_split(ds, seed=0)
    known, hidden = split_known_hidden(split.train, 0.3)
    rec = Recommender(ds, ItemKNN()).fit(split)
    refit_priors(rec, known)  # the served first stage never saw the hidden future
    scorer = EncoderScorer.build(
        item_texts(ds), EncoderConfig(n_prior=1, lora_r=4, max_query_len=24)
    )
    rec.reranker = InstructionReranker(scorer, TextSide.of(ds), RerankerConfig(history_len=5))
    root = tmp_path_factory.mktemp("models")
    rec.save(root / "base")
    return ds, known, hidden, root


@pytest.mark.slow
def test_loop_through_the_service_tunes_swaps_and_does_not_do_worse(served, tmp_path):
    import httpx

    from instructrec.feedback.replay_http import ReplayClient, play, tune_and_swap
    from instructrec.feedback.replay_run import ReplayRun, summarise
    from instructrec.feedback.store import Store
    from instructrec.testing.server import start_serve

    ds, known, hidden, root = served
    cfg = ReplayConfig(rounds=ROUNDS, users=12, new_users=4, n=N, seed=0)
    users = replay_users(known, hidden, cfg, ds.items["genres"].tolist())
    assert sum(u.new for u in users) == 4 and any(u.instruction for u in users)
    db = f"sqlite:///{tmp_path / 'loop.db'}"
    args = ["--model", str(root / "base"), "--db", db, "--api-key", API]
    args += ["--admin-key", ADMIN, "--model-root", str(root), "--seed", "0"]
    proc, base = start_serve([*args, "--log-level", "warning"], timeout=120)
    swaps = []
    try:
        with httpx.Client(base_url=base, headers={"X-API-Key": API}, timeout=60) as http:
            assert http.get("/v1/model").json()["version"] == "base"
            control = ReplayClient("control", http, ds, users, Mechanisms(), N, False)
            loop = ReplayClient("loop", http, ds, users, Mechanisms(session=True), N, True)

            def after(client, rnd):
                if client is loop and rnd == TUNE_AFTER:
                    tune = [
                        "--set",
                        "min_examples=1",
                        "--set",
                        "max_steps=2",
                        "--set",
                        "device=cpu",
                    ]
                    swaps.append(tune_and_swap(http, ADMIN, root / "base", db, root, "tuned", tune))

            rows = play([control, loop], ROUNDS, after)
            model_now = http.get("/v1/model").json()["version"]
    finally:
        proc.kill()
        proc.wait(10)

    # the swap happened: the tuned version is served and registered as the base's child
    (swap,) = swaps
    version = swap["tune"]["version"]
    assert swap["swap"]["version"] == version and swap["swap"]["previous_version"] == "base"
    assert model_now == version
    lp = rows[rows["arm"] == "loop"]
    assert set(lp.loc[lp["round"] <= TUNE_AFTER, "model_version"]) == {"base"}
    assert set(lp.loc[lp["round"] > TUNE_AFTER, "model_version"]) == {version}
    store = Store(db)
    versions = {v["version"]: v for v in store.model_versions()}
    assert versions[version]["parent"] == "base" and versions[version]["active"]

    # every answer the loop posted is a feedback row; control posted none; the tuning used
    # every request answered before the swap that had a history (a new user's first is empty)
    frame = store.feedback_frame()
    store.close()
    before = frame[(frame["model_version"] == "base") & (frame["history"].map(len) > 0)]
    assert swap["tune"]["examples"] == before["request_id"].nunique() > 0
    assert len(frame) == loop.feedback_posted == int(lp["shown"].sum()) > 0
    assert control.feedback_posted == 0
    assert set(frame["model_version"]) == {"base", version}

    # the loop's metrics are computed for every (arm, round, user)
    assert len(rows) == 2 * ROUNDS * len(users)
    run = ReplayRun(
        cfg, [0], {"control": Mechanisms(), "loop": Mechanisms(session=True)}, rows.assign(seed=0)
    )
    s = summarise(run, n_boot=200)
    assert set(s["metric"]) >= {"hits", "satisfied", "ndcg", "cum_hits"}
    assert len(s[(s["arm"] == "loop") & (s["metric"] == "cum_hits")]) == ROUNDS

    # what is reliable for a tiny model: the session never repeats an item (the server drops
    # the history, the client what it showed) and so never does worse than control, which is
    # shown the same list again
    for u in users:
        seen = [i for items in lp.loc[lp["user"] == u.user, "items"] for i in items]
        assert len(seen) == len(set(seen)) and not set(seen) & set(u.known.tolist())
    cum = rows[rows["round"] == ROUNDS].groupby("arm")["cum_hits"].mean()
    per_round = rows.groupby(["arm", "round"])["cum_hits"].mean().unstack(0)
    assert (per_round["loop"].iloc[1:] >= per_round["control"].iloc[1:]).all()
    assert cum["loop"] > cum["control"]


class _FakeService:
    """Answers /v1/recommendations with a fixed ranking minus the sent history (what the
    server does) and records every body."""

    def __init__(self, ranking: list[str]) -> None:
        self.ranking, self.bodies = ranking, []

    def post(self, path, json):
        import httpx

        self.bodies.append((path, json))
        if path == "/v1/feedback":
            return httpx.Response(200, json={})
        items = [i for i in self.ranking if i not in set(json["history"])][: json["n"]]
        out = {"request_id": f"r{len(self.bodies)}", "items": [{"item_id": i} for i in items]}
        return httpx.Response(200, json={**out, "model_version": "v"})


def test_client_caps_the_history_and_never_shows_a_consumed_or_shown_item():
    import numpy as np

    from instructrec.feedback.replay import ReplayUser
    from instructrec.feedback.replay_http import MAX_HISTORY, ReplayClient
    from instructrec.testing.datasets import synthetic_dataset

    ds = synthetic_dataset(n_users=5, n_items=260, per_user=3)
    ids = ds.item_ids.astype(str)
    known = np.arange(210)  # longer than the service's cap: the oldest 10 are not sent
    user = ReplayUser(0, known, {211: 5.0, 3: 4.0, 215: 1.0})
    ranking = [str(ids[i]) for i in [3, 5, 211, 212, 213, 214, 215, 216, 217, 218]]
    fake = _FakeService(ranking)
    loop = ReplayClient("loop", fake, ds, [user], Mechanisms(session=True), n=3)
    r1 = loop.round(1)[0]
    path, body = fake.bodies[0]
    assert len(body["history"]) == MAX_HISTORY and body["n"] == 3 + 10
    assert r1["items"] == [211, 212, 213] and r1["hits"] == 1 and r1["like"] == 1
    assert [b["signal"] for p, b in fake.bodies[1:]] == ["like", "skip", "skip"]
    r2 = loop.round(2)[0]  # 211 liked -> history; 212, 213 shown -> dropped by the client
    assert r2["items"] == [214, 215, 216] and r2["dislike"] == 1 and r2["cum_hits"] == 2
    control = ReplayClient("control", _FakeService(ranking), ds, [user], Mechanisms(), n=3,
                           post_feedback=False)  # fmt: skip
    assert [control.round(r)[0]["items"] for r in (1, 2)] == [[211, 212, 213]] * 2
    assert control.feedback_posted == 0 and loop.feedback_posted == 6
