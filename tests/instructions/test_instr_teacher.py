from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from instructrec.instructions import build
from instructrec.instructions.teacher import TeacherConfig, TeacherError, TeacherLLM


class FakeLLM:
    """An OpenAI-compatible /v1/chat/completions on 127.0.0.1:<random port>."""

    def __init__(self, fail_first: int = 0, status: int = 500) -> None:
        self.seen: list[dict] = []
        self.fail_left = fail_first
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.seen.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
                )
                if fake.fail_left > 0:
                    fake.fail_left -= 1
                    self.send_response(status)
                    self.end_headers()
                    self.wfile.write(b"busy")
                    return
                prompt = body["messages"][-1]["content"]
                out = {
                    "choices": [
                        {"message": {"role": "assistant", "content": "REWRITTEN: " + prompt[-40:]}}
                    ]
                }
                data = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def fake():
    f = FakeLLM(fail_first=1)
    yield f
    f.close()


def _teacher(url, tmp_path, **kw):
    sleeps = []
    cfg = TeacherConfig(
        url=url,
        model="m",
        api_key="sk-test",
        cache_dir=str(tmp_path / "c"),
        backoff=0.01,
        rate_limit=0,
        **kw,
    )
    return TeacherLLM(cfg, sleep=sleeps.append), sleeps


def test_complete_retries_then_caches(fake, tmp_path):
    t, sleeps = _teacher(fake.url, tmp_path)
    out = t.complete("hello there")
    assert out.startswith("REWRITTEN:") and "hello there" in out
    assert len(fake.seen) == 2 and sleeps == [0.01]  # one 500, one backoff, then success
    req = fake.seen[-1]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test"
    assert req["body"]["model"] == "m" and req["body"]["messages"][-1]["content"] == "hello there"
    t2, _ = _teacher(fake.url, tmp_path)
    assert t2.complete("hello there") == out
    assert len(fake.seen) == 2 and t2.cache_hits == 1 and t2.requests == 0
    assert t.describe()["api_key"] == "***"


def test_rate_limit_spaces_requests(fake, tmp_path):
    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    cfg = TeacherConfig(url=fake.url, cache_dir=None, rate_limit=2.0, backoff=0.0)
    fake.fail_left = 0
    t = TeacherLLM(cfg, sleep=sleep, clock=lambda: now[0])
    for k in range(3):
        t.complete(f"q{k}")
    assert slept == [0.5, 0.5]  # at most 2 requests per second


def test_unreachable_endpoint_is_a_clear_error(tmp_path):
    f = FakeLLM()
    url = f.url
    f.close()  # nothing listens there any more
    t, sleeps = _teacher(url, tmp_path, max_retries=2)
    with pytest.raises(TeacherError, match="unreachable or failing after 3 attempts"):
        t.complete("x")
    assert sleeps == [0.01, 0.02]  # exponential backoff


def test_client_errors_are_not_retried(tmp_path):
    f = FakeLLM(fail_first=5, status=401)
    try:
        t, _ = _teacher(f.url, tmp_path)
        with pytest.raises(TeacherError, match="refused the request .*401"):
            t.complete("x")
        assert len(f.seen) == 1
    finally:
        f.close()


def test_build_with_teacher_rewrites_p2_and_i1_once_per_distinct_text(
    fake, tiny_dataset, tmp_path, monkeypatch
):
    from instructrec.data import make_split

    fake.fail_left = 0
    monkeypatch.setenv("INSTRUCTREC_TEACHER_URL", fake.url)
    monkeypatch.setenv("INSTRUCTREC_TEACHER_MODEL", "env-model")
    t = TeacherLLM.from_env(cache_dir=str(tmp_path / "c"), rate_limit=0)
    split = make_split(tiny_dataset)
    slots = [("P2", "I0", "T2"), ("P1", "I1", "T3"), ("P1", "I2", "T3")]
    plain = build(tiny_dataset, split, "train", slots=slots)
    f = build(tiny_dataset, split, "train", slots=slots, teacher=t)
    p2 = f[f["P"] == "P2"]
    assert len(p2) and p2["preference"].str.startswith("REWRITTEN:").all()
    assert p2["query"].str.contains("REWRITTEN:").all()
    assert f[f["I"] == "I1"]["intention"].str.startswith("REWRITTEN:").all()
    assert not f[f["I"] == "I2"]["intention"].str.startswith("REWRITTEN:").any()
    distinct = (
        plain[plain["P"] == "P2"]["preference"].nunique()
        + plain[plain["I"] == "I1"]["intention"].nunique()
    )
    assert t.requests == len(fake.seen) <= distinct + 2
    assert fake.seen[0]["body"]["model"] == "env-model"
