"""An optional teacher LLM that rewrites derived preferences (P2) and vague intentions (I1).

InstructRec (Zhang et al. 2023, Sec. 3.2) asks a strong LLM (ChatGPT) to turn attributes and
reviews into natural requests. This client talks to any OpenAI-compatible endpoint
(``POST {url}/v1/chat/completions``: vLLM, llama.cpp server, OpenAI itself) with the standard
library only: answers are cached on disk keyed by a SHA-256 of the request, failures are
retried with exponential backoff, requests are spaced by a rate limit, and an unreachable
endpoint is a clear `TeacherError`. Only distinct texts are sent, so a build asks the teacher
once per distinct derived sentence, not once per instruction.

    teacher = TeacherLLM(TeacherConfig(url="http://127.0.0.1:8000", model="qwen2.5-7b"))
    build(dataset, split, teacher=teacher)
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from instructrec.data.errors import DataError

ENV = {
    "url": "INSTRUCTREC_TEACHER_URL",
    "model": "INSTRUCTREC_TEACHER_MODEL",
    "api_key": "INSTRUCTREC_TEACHER_KEY",
}
SYSTEM = "You write short, natural requests that users of a recommender system would type."
PROMPTS = {
    "P2": (
        "Rewrite this description of a user's taste as one or two natural first-person "
        "sentences. Keep every fact, add none.\n\n{text}"
    ),
    "I1": (
        "Rewrite this wish as a short, vague, natural request (at most 12 words) that does "
        "not name a title.\n\n{text}"
    ),
}


class TeacherError(DataError):
    """The teacher endpoint failed (unreachable, bad answer, too many errors)."""


@dataclass
class TeacherConfig:
    """Where the teacher lives and how politely to ask it."""

    url: str = "http://127.0.0.1:8000"  # base URL; /v1/chat/completions is appended
    model: str = "teacher"  # model name sent in the request
    api_key: str | None = None  # sent as "Authorization: Bearer ..." when set
    cache_dir: str | None = "~/.cache/instructrec/teacher"  # None: no disk cache
    max_retries: int = 3  # attempts after the first on connection errors, 429 and 5xx
    backoff: float = 1.0  # seconds before the first retry; doubles each time
    rate_limit: float = 5.0  # at most this many requests per second (0: unlimited)
    timeout: float = 60.0  # seconds per request
    temperature: float = 0.0  # deterministic answers, so the cache is meaningful
    max_tokens: int = 96  # answer length cap

    @classmethod
    def from_env(cls, **overrides) -> TeacherConfig:
        """Defaults, then INSTRUCTREC_TEACHER_URL / _MODEL / _KEY, then ``overrides``."""
        values = {k: os.environ[v] for k, v in ENV.items() if os.environ.get(v)}
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides=()) -> TeacherConfig:
        from instructrec.data.settings import load_config

        return load_config(cls, path, overrides)


class TeacherLLM:
    """OpenAI-compatible chat client with a disk cache, retries and a rate limit."""

    def __init__(
        self, config: TeacherConfig | None = None, *, sleep=time.sleep, clock=time.monotonic
    ) -> None:
        self.config = config or TeacherConfig.from_env()
        self._sleep, self._clock = sleep, clock
        self._last = -1e18
        self.requests = 0  # HTTP requests made (for tests and logs)
        self.cache_hits = 0
        cd = self.config.cache_dir
        self.cache = Path(cd).expanduser() if cd else None

    @classmethod
    def from_env(cls, **overrides) -> TeacherLLM:
        return cls(TeacherConfig.from_env(**overrides))

    @property
    def endpoint(self) -> str:
        url = self.config.url.rstrip("/")
        if url.endswith("/chat/completions"):
            return url
        return url + ("/chat/completions" if url.endswith("/v1") else "/v1/chat/completions")

    # ------------------------------------------------------------------ one request
    def complete(self, prompt: str, system: str = SYSTEM) -> str:
        """The assistant's answer to ``prompt`` (from the cache when asked before)."""
        body = {
            "model": self.config.model,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": prompt},
            ],
        }
        key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        path = self.cache / key[:2] / f"{key}.json" if self.cache else None
        if path is not None and path.exists():
            self.cache_hits += 1
            return json.loads(path.read_text())["content"]
        content = self._post(body)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"content": content, "request": body}))
            tmp.replace(path)
        return content

    def _wait_turn(self) -> None:
        if self.config.rate_limit and self.config.rate_limit > 0:
            gap = 1.0 / self.config.rate_limit - (self._clock() - self._last)
            if gap > 0:
                self._sleep(gap)
        self._last = self._clock()

    def _post(self, body: dict) -> str:
        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        data = json.dumps(body).encode()
        last_error = ""
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                self._sleep(self.config.backoff * 2 ** (attempt - 1))
            self._wait_turn()
            self.requests += 1
            req = urllib.request.Request(self.endpoint, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.config.timeout) as resp:
                    payload = json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as e:
                last_error = f"HTTP {e.code}: {e.read()[:200]!r}"
                if e.code == 429 or e.code >= 500:
                    continue
                raise TeacherError(
                    f"teacher at {self.endpoint} refused the request ({last_error})"
                ) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
                last_error = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
                continue
            except json.JSONDecodeError:
                raise TeacherError(f"teacher at {self.endpoint} did not answer JSON") from None
            try:
                return str(payload["choices"][0]["message"]["content"]).strip()
            except (KeyError, IndexError, TypeError):
                raise TeacherError(
                    f"teacher at {self.endpoint} answered without "
                    f"choices[0].message.content: {str(payload)[:200]}"
                ) from None
        raise TeacherError(
            f"teacher at {self.endpoint} is unreachable or failing after "
            f"{self.config.max_retries + 1} attempts ({last_error}); set "
            f"{ENV['url']} or build without a teacher"
        )

    # ------------------------------------------------------------------ for the builder
    def rewrite_texts(self, kind: str, texts) -> np.ndarray:
        """Rewrite each distinct non-empty text of kind "P2" or "I1" once; broadcast back."""
        arr = np.asarray(texts, dtype=object)
        uniq, inv = np.unique(arr.astype(str), return_inverse=True)
        new = np.array(
            [self.complete(PROMPTS[kind].format(text=u)) if u else "" for u in uniq], dtype=object
        )
        return new[inv.reshape(-1)]

    def rewrite(self, dataset, rows, texts: dict) -> dict:
        """The builder's hook: rewrite P2 and I1 texts in place of the derived ones."""
        out = dict(texts)
        for kind in ("P2", "I1"):
            if kind in out:
                out[kind] = self.rewrite_texts(kind, out[kind])
        return out

    def describe(self) -> dict:
        """Settings for a run manifest (the key is never written)."""
        d = asdict(self.config)
        d["api_key"] = "***" if d["api_key"] else None
        return d
