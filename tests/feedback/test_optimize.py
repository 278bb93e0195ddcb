"""OPRO-style rewrites against a fake OpenAI-compatible teacher started by the test."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from instructrec.data.errors import DataError
from instructrec.feedback.bandit import MemoryArms
from instructrec.feedback.optimize import (
    check_template,
    extract_template,
    install_template,
    opro_teacher,
    optimize_slot,
)


@pytest.fixture()
def teacher():
    """A local chat-completions server; ``replies`` is consumed in order, requests are kept."""
    state = {"replies": [], "requests": [], "status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state["requests"].append(
                {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
            )
            content = state["replies"].pop(0) if state["replies"] else "nothing"
            out = json.dumps(
                {"choices": [{"message": {"role": "assistant", "content": content}}]}
            ).encode()
            self.send_response(state["status"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *a):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["config"] = opro_teacher(
        f"http://127.0.0.1:{server.server_port}/v1", api_key="sk-test", backoff=0.0, max_retries=1
    )
    yield state
    server.shutdown()


PAST = [
    ("I watched {history}. What next?", 0.31),
    ("History: {history}. Recommend a {noun}.", 0.42),
]


def test_prompt_has_past_templates_and_adopts_better(teacher):
    good = "Having enjoyed {history}, which {noun} should come next?"
    teacher["replies"] = [f"Sure!\n<TEMPLATE>{good}</TEMPLATE>"]
    metric = {PAST[0][0]: 0.30, PAST[1][0]: 0.40, good: 0.45}
    arms = MemoryArms()
    res = optimize_slot(
        "P1I0T3", PAST, metric.__getitem__, teacher["config"], proposals=1, state=arms
    )
    req = teacher["requests"][0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test"
    prompt = req["body"]["messages"][-1]["content"]
    # OPRO ordering: worst first, each with its score
    assert prompt.index(PAST[0][0]) < prompt.index(PAST[1][0])
    assert "score: 0.3100" in prompt and "score: 0.4200" in prompt and "{history}" in prompt
    (p,) = res.proposals
    assert p.valid and p.adopted and p.score == 0.45 and p.best_before == 0.40
    arm = arms.arms("P1I0T3")["P1I0T3"][p.template_id]
    assert arm["source"] == "opro" and arm["text"] == good


def test_rejects_worse_or_malformed(teacher):
    worse = "Next {noun} after {history}?"
    teacher["replies"] = [
        worse,
        "What do you like? {intention}",
        "Pick from {history} {bogus}",
        PAST[0][0],
    ]
    metric = {PAST[0][0]: 0.30, PAST[1][0]: 0.40, worse: 0.39}
    arms = MemoryArms()
    res = optimize_slot(
        "P1I0T3", PAST, metric.__getitem__, teacher["config"], proposals=4, state=arms
    )
    assert [p.adopted for p in res.proposals] == [False] * 4
    assert res.proposals[0].valid and res.proposals[0].score == 0.39
    assert "missing fields" in res.proposals[1].reason
    assert "unknown fields" in res.proposals[2].reason
    assert "copy" in res.proposals[3].reason
    assert arms.arms("P1I0T3") == {}


def test_teacher_errors_are_data_errors(teacher):
    teacher["status"] = 500
    with pytest.raises(DataError, match="HTTP 500"):
        optimize_slot("P1I0T3", PAST, lambda t: 0.0, teacher["config"], proposals=1)
    with pytest.raises(DataError, match="no scored templates"):
        optimize_slot("P1I0T3", [], lambda t: 0.0, teacher["config"])


def test_check_and_extract():
    assert check_template("{history} then?", "P1I0T3") == ""
    assert "intention" in check_template("{history} then?", "P1I2T3")
    assert "candidates" in check_template("{history}: {candidates}", "P1I0T3")
    assert "parse" in check_template("{history", "P1I0T3")
    assert extract_template('<template>"A {history}"</template>') == "A {history}"


def test_installed_template_is_renderable():
    from instructrec.instructions.catalogue import TemplateCatalogue

    install_template("p1i0t3-opro-test", "P1I0T3", "After {history}, a {noun}?")
    t = TemplateCatalogue.default().get("p1i0t3-opro-test")
    assert t.slot == ("P1", "I0", "T3") and "history" in t.fields
