"""POST /v1/admin/model: swap the served model for another saved run, without a restart.

Guarded by its own key (``X-Admin-Key``, `ServeSettings.admin_key`; never the client key)
and limited to run folders under ``--model-root``; with either unset the endpoint answers 403.
The path is checked before any filesystem call (components of at most 255 characters and
bytes, inside the root once normalised), then again after symlinks are resolved. A folder
without ``recommender.json`` is 404; a folder that cannot be loaded (pickles, a broken or
missing run file) is 422 naming the file, relative to the root. The new version is recorded
in the store before it is served, so a store failure (503) or any refusal leaves the served
model exactly as it was.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from ..data.errors import DataError
from . import schemas as S
from .errors import HTTPError, responses

log = logging.getLogger("instructrec.serving")
NAME_MAX = 255  # bytes of one path component (Linux, macOS)
PATH_MAX = 4096  # bytes of a whole path


def admin_router(settings: Any, store: Any, live: Any, make_served: Callable) -> Any:
    """The admin `APIRouter`. ``live`` holds the served version (``live.served``) and the
    swap lock (``live.lock``); ``make_served(version, recommender, run_dir)`` wraps a model."""
    from fastapi import APIRouter, Depends, Security
    from fastapi.security import APIKeyHeader

    router = APIRouter()
    enabled = bool(settings.admin_key) and bool(settings.model_root)
    root = Path(settings.model_root).resolve() if enabled else None
    scheme = APIKeyHeader(
        name="X-Admin-Key",
        scheme_name="AdminKey",
        auto_error=False,
        description="the server's --admin-key (INSTRUCTREC_ADMIN_KEY); never the client key",
    )

    def require_admin(key: str | None = Security(scheme)) -> None:
        if key is None or not hmac.compare_digest(key.encode(), settings.admin_key.encode()):
            raise HTTPError(401, "missing or wrong X-Admin-Key header")

    def disabled() -> None:
        raise HTTPError(
            403, "admin endpoint disabled: start the server with --admin-key and --model-root"
        )

    codes = (401, 403, 404, 409, 413, 422, 503) if enabled else (403, 413, 422)

    @router.post(
        "/v1/admin/model",
        response_model=S.ModelSwapResponse,
        dependencies=[Security(require_admin)] if enabled else [Depends(disabled)],
        responses=responses(*codes),
        tags=["admin"],
    )
    def swap_model(body: S.ModelSwapRequest) -> S.ModelSwapResponse:
        """Load a run folder under the model root and serve it (atomic swap; requests in
        flight finish on the old version). Disabled (403) unless the server was started with
        ``--admin-key`` and ``--model-root``."""
        from ..recommender import Recommender

        assert root is not None
        run_dir = checked_run_dir(root, body.run_dir)
        rel = _relative(run_dir, root)
        name = (  # one swap, one version: reuse what `feedback tune` registered for this run
            body.version
            or store.version_of(str(run_dir))
            or f"{run_dir.name or 'root'}-{int(time.time())}"
        )
        with live.lock:  # one load at a time; requests keep being served meanwhile
            known = {m["version"]: m["run_dir"] for m in store.model_versions()}
            if name in known and known[name] != str(run_dir):
                raise HTTPError(409, f"version {name!r} already names another run")
            try:
                new = Recommender.load(run_dir)
            except DataError as e:
                raise HTTPError(422, _relative_message(str(e), root)) from e
            except Exception as e:  # noqa: BLE001 - any unreadable run is the caller's 422
                log.warning("hot swap of %s failed", run_dir, exc_info=True)
                msg = f"run folder {rel!r} cannot be loaded ({type(e).__name__}: {e})"
                raise HTTPError(422, _relative_message(msg, root)) from e
            old = live.served
            store.register_model(name, str(run_dir), parent=old.version, activate=True)
            live.served = make_served(name, new, str(run_dir))  # atomic reference swap
        log.info("model swapped: %s -> %s (%s)", old.version, name, rel)
        return S.ModelSwapResponse(version=name, previous_version=old.version, run_dir=rel)

    return router


def checked_run_dir(root: Path, run_dir: str) -> Path:
    """The run folder ``run_dir`` names under ``root`` (resolved), or an `HTTPError`:
    404 for a name no file system can hold or a folder that is not there or holds no
    ``recommender.json``, 403 for anything outside ``root``, 422 for pickles."""
    parts = PurePosixPath(run_dir).parts
    for part in parts:
        if len(part.encode("utf-8", "surrogatepass")) > NAME_MAX:
            raise HTTPError(404, f"no run folder: a path component is over {NAME_MAX} bytes")
    path = os.path.normpath(os.path.join(root, run_dir))  # lexical: no filesystem call
    if path != str(root) and not path.startswith(str(root).rstrip("/") + "/"):
        raise HTTPError(403, "run_dir must lie under the model root")
    if len(path.encode("utf-8", "surrogatepass")) > PATH_MAX:
        raise HTTPError(404, f"no run folder: the path is over {PATH_MAX} bytes")
    try:
        resolved = Path(path).resolve()
        if resolved != root and root not in resolved.parents:  # a symlink out of the root
            raise HTTPError(403, "run_dir must lie under the model root")
        if not resolved.is_dir():
            raise HTTPError(
                404, f"no run folder {_relative(resolved, root)!r} under the model root"
            )
        if not (resolved / "recommender.json").is_file():
            from ..data.runfiles import refuse_pickles

            try:
                refuse_pickles(resolved)  # an old pickled run: say so (422)
            except DataError as e:
                raise HTTPError(422, _relative_message(str(e), root)) from e
            raise HTTPError(
                404, f"{_relative(resolved, root)!r} is not a run folder (no recommender.json)"
            )
    except (OSError, RuntimeError) as e:  # unreadable, symlink loop
        raise HTTPError(404, f"no run folder ({type(e).__name__})") from e
    return resolved


def _relative(path: Path, root: Path) -> str:
    return "." if path == root else str(path.relative_to(root))


def _relative_message(message: str, root: Path) -> str:
    """A loader's message with the server's root path left out."""
    return message.replace(str(root).rstrip("/") + "/", "").replace(str(root), ".")
