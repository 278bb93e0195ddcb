"""`instructrec serve`: the HTTP service over a saved run (see instructrec.serving.app).

Two keys: ``--api-key`` for clients (POST endpoints), ``--admin-key`` for hot swaps
(POST /v1/admin/model), which also need ``--model-root``; without both the admin endpoint
answers 403. ``--db-timeout`` bounds every wait on the feedback store (then 503).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import click


@click.command()
@click.option(
    "--model",
    "run_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="a run folder (`instructrec train` / `quickstart`) or its model/",
)
@click.option(
    "--db",
    default="sqlite:///instructrec-feedback.db",
    show_default=True,
    help="feedback store URL: sqlite:///file.db or postgresql+psycopg://user:pw@host/db",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--api-key",
    default=None,
    envvar="INSTRUCTREC_API_KEY",
    help="key for POST endpoints (X-API-Key); env INSTRUCTREC_API_KEY; "
    "a random one is generated and printed when absent",
)
@click.option(
    "--admin-key",
    default=None,
    envvar="INSTRUCTREC_ADMIN_KEY",
    help="key of POST /v1/admin/model (X-Admin-Key; must differ from --api-key); env "
    "INSTRUCTREC_ADMIN_KEY; without it (and --model-root) hot swaps are disabled (403)",
)
@click.option(
    "--model-root",
    default=None,
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="hot swaps (POST /v1/admin/model) may only load run folders under this",
)
@click.option(
    "--db-timeout",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.1, max=300),
    help="seconds any wait on the feedback store may take; then 503 with Retry-After",
)
@click.option(
    "--version",
    "model_version",
    default=None,
    help="name of this model version (default: the run directory's name)",
)
@click.option("--max-body-bytes", default=64 * 1024, show_default=True, type=int)
@click.option("--seed", default=None, type=int, help="seed of the template bandit")
@click.option(
    "--batch-window-ms",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0, max=100),
    help="requests arriving within this window share one model pass (0: no batching)",
)
@click.option(
    "--max-batch",
    default=32,
    show_default=True,
    type=click.IntRange(min=1, max=1024),
    help="requests per model pass at most (1: no batching)",
)
@click.option(
    "--threads",
    default=1,
    show_default=True,
    type=click.IntRange(min=0, max=256),
    help="torch CPU threads of the model (0: torch's default; 1 measured fastest on a "
    "2-core box, benchmarks/results/inference.md)",
)
@click.option(
    "--int8",
    is_flag=True,
    help="int8 dynamic quantisation of the reranker's query tower (1.6x faster tower on a "
    "CPU, validation unchanged within noise: benchmarks/results/inference.md)",
)
@click.option("--log-level", default="info", show_default=True)
def serve(
    run_dir: Path,
    db: str,
    host: str,
    port: int,
    api_key: str | None,
    admin_key: str | None,
    model_root: Path | None,
    db_timeout: float,
    model_version: str | None,
    max_body_bytes: int,
    seed: int | None,
    batch_window_ms: float,
    max_batch: int,
    threads: int,
    int8: bool,
    log_level: str,
) -> None:
    """Serve recommendations and collect feedback over HTTP (OpenAPI at /docs)."""
    import uvicorn

    from instructrec.feedback.store import Store
    from instructrec.recommender import Recommender
    from instructrec.serving.app import ServeSettings, create_app

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from .common import model_path

    if admin_key is not None and model_root is None:
        raise click.UsageError("--admin-key needs --model-root (where hot swaps may load from)")
    if admin_key is not None and (not admin_key or admin_key == api_key):
        raise click.UsageError("--admin-key must be non-empty and differ from --api-key")
    model_dir = Path(model_path(run_dir)).resolve()  # DataError -> exit 2
    rec = Recommender.load(model_dir)
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    if int8:
        from instructrec.models.quantize import quantize_query_tower

        if not quantize_query_tower(rec.reranker):
            raise click.UsageError("--int8: this model has no reranker query tower to quantise")
    generated = api_key is None
    if generated:
        api_key = secrets.token_urlsafe(24)
        click.echo(
            "no --api-key (or INSTRUCTREC_API_KEY) given: generated an X-API-Key for this run",
            err=True,
        )
    if admin_key is None:
        click.echo("no --admin-key: POST /v1/admin/model is disabled (403)", err=True)
    # a run folder's name (runs/books), not the "model" folder inside it
    default_version = model_dir.parent.name if model_dir.name == "model" else model_dir.name
    settings = ServeSettings(
        api_key=api_key,
        admin_key=admin_key,
        max_body_bytes=max_body_bytes,
        model_version=model_version or default_version,
        run_dir=str(model_dir),
        model_root=str(model_root) if model_root else None,
        seed=seed,
        batch_window_ms=batch_window_ms,
        max_batch=max_batch,
    )
    from sqlalchemy.engine import make_url

    from instructrec.feedback.database import unavailable_errors

    shown = make_url(db).render_as_string(hide_password=True)
    try:
        app = create_app(rec, Store(db, timeout=db_timeout), settings)
    except unavailable_errors() as e:  # a wrong URL or a server that is down: no traceback
        first = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise click.ClickException(f"cannot reach the feedback store {shown}: {first}") from e
    click.echo(
        f"serving {settings.model_version} on http://{host}:{port} (store {shown})", err=True
    )
    page = f"http://{host}:{port}/"
    if generated:  # the key travels in the link's fragment, which browsers never send
        click.echo(f"page: {page}#key={api_key} (signs the browser in)", err=True)
        click.echo(f"API docs: {page}docs; X-API-Key {api_key}", err=True)
    else:
        click.echo(f"page: {page} (sign in with the API key); API docs: {page}docs", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
