"""Prometheus metrics of the service, kept in-process and rendered in the text format 0.0.4.

    instructrec_http_requests_total{endpoint, method, status}     counter
    instructrec_http_request_seconds{endpoint}                    histogram
    instructrec_feedback_total{signal}                            counter
    instructrec_model_info{version}                               gauge (1 for the served one)
    instructrec_store_unavailable_total                           counter (503 answers)

No dependency on prometheus_client: a few dicts behind a lock are enough for one process.
"""

from __future__ import annotations

import bisect
import threading

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Counters and latency histograms; `render` gives the /metrics body."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = {}
        self.hist: dict[str, list[int]] = {}  # endpoint -> per-bucket counts (+Inf last)
        self.hist_sum: dict[str, float] = {}
        self.feedback: dict[str, int] = {}
        self.model_version: str | None = None
        self.store_unavailable = 0  # requests answered 503: store down or locked

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (endpoint, method, str(status))
            self.requests[key] = self.requests.get(key, 0) + 1
            counts = self.hist.setdefault(endpoint, [0] * (len(BUCKETS) + 1))
            counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.hist_sum[endpoint] = self.hist_sum.get(endpoint, 0.0) + seconds

    def count_feedback(self, signal: str) -> None:
        with self._lock:
            self.feedback[signal] = self.feedback.get(signal, 0) + 1

    def count_unavailable(self) -> None:
        with self._lock:
            self.store_unavailable += 1

    def render(self) -> str:
        with self._lock:
            lines = [
                "# HELP instructrec_http_requests_total HTTP requests by endpoint and status.",
                "# TYPE instructrec_http_requests_total counter",
            ]
            for (ep, m, st), v in sorted(self.requests.items()):
                lines.append(
                    f'instructrec_http_requests_total{{endpoint="{_esc(ep)}",'
                    f'method="{m}",status="{st}"}} {v}'
                )
            lines += [
                "# HELP instructrec_http_request_seconds Request latency in seconds.",
                "# TYPE instructrec_http_request_seconds histogram",
            ]
            for ep, counts in sorted(self.hist.items()):
                cum = 0
                for le, c in zip([*map(str, BUCKETS), "+Inf"], counts, strict=True):
                    cum += c
                    lines.append(
                        f'instructrec_http_request_seconds_bucket{{endpoint="{_esc(ep)}",'
                        f'le="{le}"}} {cum}'
                    )
                lines.append(
                    f'instructrec_http_request_seconds_sum{{endpoint="{_esc(ep)}"}} '
                    f"{self.hist_sum[ep]:.6f}"
                )
                lines.append(
                    f'instructrec_http_request_seconds_count{{endpoint="{_esc(ep)}"}} {cum}'
                )
            lines += [
                "# HELP instructrec_feedback_total Feedback events stored, by signal.",
                "# TYPE instructrec_feedback_total counter",
            ]
            for sig, v in sorted(self.feedback.items()):
                lines.append(f'instructrec_feedback_total{{signal="{sig}"}} {v}')
            lines += [
                "# HELP instructrec_model_info The model version being served.",
                "# TYPE instructrec_model_info gauge",
            ]
            if self.model_version is not None:
                lines.append(f'instructrec_model_info{{version="{_esc(self.model_version)}"}} 1')
            lines += [
                "# HELP instructrec_store_unavailable_total Requests answered 503: the feedback "
                "store was down or locked.",
                "# TYPE instructrec_store_unavailable_total counter",
                f"instructrec_store_unavailable_total {self.store_unavailable}",
            ]
        return "\n".join(lines) + "\n"


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
