"""The application factory: one FastAPI app over one monitor store (DuckDB or PostgreSQL).

Several apps (replicas, in several processes) may serve one PostgreSQL store: everything they
share lives in the database (idempotency keys, rollout states under row locks), nothing in
the process but counters and the group committer's queue.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from scaleguard._version import __version__
from scaleguard.monitor import Store, open_store
from scaleguard.safety._prometheus import PrometheusClient
from scaleguard.service._approval import router as approval_router
from scaleguard.service._argo import router as argo_router
from scaleguard.service._assignment import router as assignment_router
from scaleguard.service._committer import GroupCommitter
from scaleguard.service._dashboard import router as dashboard_router
from scaleguard.service._errors import install_error_handlers
from scaleguard.service._flagger import router as flagger_router
from scaleguard.service._guards import require_read
from scaleguard.service._json import SafeJSONResponse
from scaleguard.service._limits import BodySizeLimit
from scaleguard.service._metrics import ServiceMetrics
from scaleguard.service._rollouts import router as rollouts_router
from scaleguard.service._runs import router as runs_router
from scaleguard.service._scheduler import LookScheduler, LoopCollector
from scaleguard.service._settings import ServiceSettings
from scaleguard.service._webhooks import WebhookDispatcher

__all__ = ["create_app"]


def create_app(settings: ServiceSettings, store: Store | None = None) -> FastAPI:
    """A FastAPI app serving the API under ``/api/v1``, the dashboard, ``/healthz`` and
    ``/metrics``.

    Parameters
    ----------
    settings:
        Where the store is, who may write, whether reads are open, the body size limit.
    store:
        A monitor store to serve instead of opening ``settings.store`` (the app then does not
        close it).

    Examples
    --------
    >>> app = create_app(ServiceSettings(store=":memory:"))
    >>> app.url_path_for("healthz")
    '/healthz'
    """
    owned = store is None
    if store is None:
        store = open_store(settings.store)
    served: Store = store

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.scheduler:
            app.state.scheduler.start()
        yield
        app.state.scheduler.stop()  # no look starts on a store that is closing
        app.state.webhooks.close()
        if app.state.scheduler.prometheus is not None:
            app.state.scheduler.prometheus.close()
        app.state.committer.close()  # commits what is queued before the store closes
        if owned:
            served.close()

    app = FastAPI(
        title="scaleguard",
        version=__version__,
        description="Monitoring and safe rollouts: post metrics, watch runs, widen deployments "
                    "only while their gates hold. Writes need a bearer token.",
        default_response_class=SafeJSONResponse,
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.metrics = ServiceMetrics(store)
    app.state.started_at = time.time()
    app.state.committer = GroupCommitter(store)
    app.state.metrics.watch_committer(app.state.committer)
    app.state.webhooks = WebhookDispatcher(settings.webhook_targets())
    app.state.scheduler = LookScheduler(
        store, prometheus=PrometheusClient(settings.prometheus_url)
        if settings.prometheus_url else None, publish=app.state.webhooks.publish)
    app.state.metrics.registry.register(LoopCollector(app.state.scheduler, app.state.webhooks))
    install_error_handlers(app)

    @app.middleware("http")
    async def _timed(request: Request,
                     call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        began = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        app.state.metrics.requests.labels(request.method, path, str(response.status_code)) \
            .observe(time.perf_counter() - began)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    # Outermost: the size check runs before anything reads or parses the body.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)

    @app.get("/healthz", tags=["service"], summary="Liveness: the app answers and its store too")
    def healthz() -> dict[str, Any]:
        served.ping()
        return {"status": "ok", "version": __version__,
                "uptime_s": round(time.time() - app.state.started_at, 3)}

    @app.get("/metrics", tags=["service"], dependencies=[Depends(require_read)],
             summary="Prometheus metrics: ingest counts, latest values, alert counts")
    def metrics() -> Response:
        return Response(generate_latest(app.state.metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    app.include_router(runs_router)
    app.include_router(rollouts_router)
    app.include_router(assignment_router)
    app.include_router(approval_router)
    app.include_router(dashboard_router)
    app.include_router(argo_router)
    app.include_router(flagger_router)
    return app
