"""Yes/No questions with a marked history come from training ratings only, as the text says."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from instructrec.cli import main
from instructrec.data.errors import DataError
from instructrec.instructions.titles import display_title
from instructrec.instructions.yesno import rated_questions


def parse(text: str) -> tuple[list[tuple[str, bool]], str]:
    rows = re.findall(r"^\d+\. (.*) - (liked|disliked)$", text, flags=re.M)
    target = re.search(r'like the movie "(.*)"\? Answer Yes or No\.$', text).group(1)
    return [(t, m == "liked") for t, m in rows], target


def test_questions_show_the_training_ratings_before_the_target(ml100k, ml100k_split):
    q = rated_questions(ml100k, ml100k_split, n=200, history=10, seed=3)
    assert len(q) == 200 and set(q["answer"]) == {"Yes", "No"}
    train = ml100k_split.train.sort_values(["user", "timestamp", "order"], kind="stable")
    seqs = {u: (g["item"].to_numpy(), g["rating"].to_numpy()) for u, g in train.groupby("user")}
    titles = display_title(ml100k)
    held = {(int(u), int(i)) for s in (ml100k_split.valid, ml100k_split.test)
            for u, i in zip(s["user"], s["item"], strict=True)}  # fmt: skip
    for row in q.itertuples():
        items, ratings = seqs[row.user]
        t = next(k for k in range(10, len(items)) if items[k] == row.item)
        history, target = parse(row.instruction)
        assert target == titles[row.item] and ratings[t] == row.rating
        shown = zip(items[t - 10 : t], ratings[t - 10 : t], strict=True)
        assert history == [(titles[i], bool(r >= 4)) for i, r in shown]
        assert row.answer == ("Yes" if row.rating >= 4 else "No")
        assert row.liked_fraction == pytest.approx(np.mean([m for _, m in history]))
        assert (row.user, row.item) not in held
    again = rated_questions(ml100k, ml100k_split, n=200, history=10, seed=3)
    assert again["instruction"].tolist() == q["instruction"].tolist()
    other = rated_questions(ml100k, ml100k_split, n=200, history=10, seed=4)
    assert other["instruction"].tolist() != q["instruction"].tolist()
    users = q["user"].unique()[:3]
    assert set(rated_questions(ml100k, ml100k_split, history=3, users=users)["user"]) <= set(users)


def test_a_log_without_ratings_is_a_one_line_error_and_writes_nothing(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["user_id,item_id,timestamp"] + [
        f"{u},{i},{t}" for u in range(1, 9) for t, i in enumerate(rng.choice(200, 15, False))
    ]
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "q.json"
    res = CliRunner().invoke(
        main, ["instructions", "yesno", "--data", str(tmp_path / "log.csv"), "--out", str(out)]
    )
    assert res.exit_code == 2 and "need ratings" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not out.exists()


def test_cli_writes_alpaca_for_tune_and_rejects_an_impossible_history(
    tmp_path, ml100k, ml100k_split
):
    out = tmp_path / "q.json"
    res = CliRunner().invoke(main, ["instructions", "yesno", "--n", "30", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())
    assert len(rows) == 30 and {r["output"] for r in rows} <= {"Yes", "No"}
    assert rows == [{"instruction": r.instruction, "input": "", "output": r.answer}
                    for r in rated_questions(ml100k, ml100k_split, n=30).itertuples()]  # fmt: skip
    res = CliRunner().invoke(main, ["instructions", "yesno", "--history", "5000",
                                    "--out", str(tmp_path / "no.json")])  # fmt: skip
    assert res.exit_code == 2 and "--history" in res.output and not (tmp_path / "no.json").exists()
    with pytest.raises(DataError, match="n must be"):
        rated_questions(ml100k, ml100k_split, n=0)
