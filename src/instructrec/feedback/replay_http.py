"""The replay simulator's users as HTTP clients of `instructrec serve` (issue 17, item 4).

The loop end to end through the real service: replayed users (`replay.replay_users`) ask
``POST /v1/recommendations`` for items, answer every item they were shown from their own
hidden future (`replay.answer`) with ``POST /v1/feedback``, and are measured per round with
`replay.round_metrics`; `tune_and_swap` runs ``instructrec feedback tune`` on the server's
store and hot-swaps the new version in (``POST /v1/admin/model``).

What the server applies and what the client does (the server keeps no session):

    server   excludes the request's explicit history from the answer; the template bandit
             (b) learns from every feedback row; the served model is whatever was swapped in
    client   (a) session: liked items are appended to the history it sends (so the server
             never shows them again), the stated instruction is re-sent every round, and
             items shown earlier are not shown again: it asks for ``n`` + (shown earlier,
             outside the history) items and drops those (``norepeat`` alone does only this)

A history longer than the service's cap is sent as its newest 200 items; the client then
drops the older consumed items itself (in every arm, as the server would).

A request carries the explicit history and never the user id: the served run's stored
sequences hold the user's hidden future. Over-fetched items the client dropped are stored
with the request but get no feedback (tuning sees them as shown without an answer).
Control sends the same request every round and posts no feedback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.errors import DataError
from .mechanisms import Mechanisms, new_state, observe
from .replay import SIGNALS, ReplayUser, answer, round_metrics

MAX_N = 100  # the service's cap on items per response (serving.schemas.MAX_N)
MAX_HISTORY = 200  # ... and on the items of an explicit history (serving.schemas.MAX_HISTORY)


class ReplayClient:
    """One arm's replayed users talking to a server at ``base``.

    ``mech``: the client-side mechanisms (``session``, ``norepeat``; others are ignored);
    ``post_feedback``: whether answers are sent to the server (the loop) or kept (control).
    """

    def __init__(
        self,
        name: str,
        http: Any,
        dataset: Any,
        users: list[ReplayUser],
        mech: Mechanisms,
        n: int = 10,
        post_feedback: bool = True,
        noise: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.name, self.http, self.dataset, self.users = name, http, dataset, users
        self.mech, self.n, self.post_feedback, self.noise = mech, n, post_feedback, noise
        self.states = [new_state(u) for u in users]
        self.cum = np.zeros((len(users), 2))
        self.rng = np.random.default_rng([seed, 17])  # same noise draws as the offline replay
        self.ids = dataset.item_ids.astype(str)
        self.feedback_posted = 0

    def request_body(self, k: int, rnd: int) -> dict:
        """The JSON body of user ``k``'s request in round ``rnd`` (explicit history only: its
        newest `MAX_HISTORY` items, the service's cap)."""
        st, mech = self.states[k], self.mech
        sent = st.history[-MAX_HISTORY:]
        body: dict[str, Any] = {"history": [str(self.ids[i]) for i in sent], "n": self.n}
        if st.instruction and (rnd == 1 or mech.session):  # said once; a session keeps it
            body["instruction"] = st.instruction
        body["n"] = min(self.n + len(self.dropped(k) - set(sent)), MAX_N)
        return body

    def dropped(self, k: int) -> set[int]:
        """Items user ``k`` is never shown: consumed ones (the server drops those it was
        sent; the client those beyond the cap) and, with a session or norepeat, any shown
        in an earlier round."""
        st = self.states[k]
        out = set(st.history)
        if self.mech.session or self.mech.norepeat:
            out |= st.shown
        return out

    def round(self, rnd: int) -> list[dict]:
        """Play round ``rnd`` for every user; one metrics row per user."""
        out = []
        for k, (u, st) in enumerate(zip(self.users, self.states, strict=True)):
            r = self.http.post("/v1/recommendations", json=self.request_body(k, rnd))
            if r.status_code != 200:
                raise DataError(f"POST /v1/recommendations answered {r.status_code}: {r.text}")
            ans = r.json()
            raw = [it["item_id"] for it in ans["items"]]
            items = self.dataset.item_index(raw) if raw else np.empty(0, np.int64)
            drop = self.dropped(k)
            shown = [int(i) for i in items if int(i) not in drop][: self.n]
            sig = [answer(i, u.hidden, self.rng, self.noise) for i in shown]
            m = round_metrics(np.asarray(shown), u.hidden, st.hit_before, st.liked_before)
            st.hit_before.update(i for i in shown if i in u.hidden)
            st.liked_before.update(i for i in shown if u.hidden.get(i, 0) >= 4)
            self.cum[k] += (m["hits"], m["satisfied"])
            if self.post_feedback:
                self._post(ans["request_id"], shown, sig)
            observe(st, np.asarray(shown, np.int64), sig, self.mech)
            row = {"arm": self.name, "round": rnd, "user": u.user, "new": u.new, **m}
            row.update(cum_hits=self.cum[k, 0], cum_satisfied=self.cum[k, 1])
            row.update({s: sig.count(s) for s in SIGNALS})
            row.update(shown=len(shown), items=shown, model_version=ans.get("model_version"))
            out.append(row)
        return out

    def _post(self, request_id: str, shown: list[int], signals: list[str]) -> None:
        for i, s in zip(shown, signals, strict=True):
            body = {
                "request_id": request_id,
                "item_id": str(self.ids[i]),
                "signal": s,
                "idempotency_key": f"{request_id}-{self.ids[i]}",
            }
            r = self.http.post("/v1/feedback", json=body)
            if r.status_code != 200:
                raise DataError(f"POST /v1/feedback answered {r.status_code}: {r.text}")
            self.feedback_posted += 1


def play(
    clients: list[ReplayClient],
    rounds: int,
    after_round: Callable[[ReplayClient, int], None] | None = None,
) -> pd.DataFrame:
    """Play ``rounds`` rounds of each client in turn (one arm after the other, so control
    finishes before the loop posts any feedback into a shared store); ``after_round(client,
    rnd)`` runs after each of a client's rounds (e.g. `tune_and_swap`). One row per
    (arm, round, user), the columns of `replay_run.ReplayRun.rows` plus ``shown`` (how many),
    ``items`` (internal ids shown) and ``model_version``."""
    rows: list[dict] = []
    for c in clients:
        for rnd in range(1, rounds + 1):
            rows += c.round(rnd)
            if after_round is not None:
                after_round(c, rnd)
    return pd.DataFrame(rows)


def tune_and_swap(
    http: Any,
    admin_key: str,
    run_dir: str | Path,
    db_url: str,
    model_root: str | Path,
    out_name: str,
    tune_args: list[str] = (),
) -> dict:
    """``instructrec feedback tune`` the served ``run_dir`` on the store at ``db_url`` into
    ``model_root/out_name`` (a subprocess, as an operator would run it), then hot-swap it in
    with ``POST /v1/admin/model``. Returns ``{"tune": summary, "swap": response}``."""
    out = Path(model_root) / out_name
    cmd = [sys.executable, "-c", "from instructrec.cli import main; main()", "feedback", "tune"]
    cmd += ["--model", str(run_dir), "--db", db_url, "--out", str(out), *tune_args]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise DataError(f"feedback tune exited {res.returncode}: {res.stderr.strip()[-500:]}")
    summary = json.loads(res.stdout)
    r = http.post("/v1/admin/model", json={"run_dir": out_name}, headers={"X-Admin-Key": admin_key})
    if r.status_code != 200:
        raise DataError(f"POST /v1/admin/model answered {r.status_code}: {r.text}")
    return {"tune": summary, "swap": r.json()}
