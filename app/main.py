"""The ASGI application: `uvicorn --factory app.main:create_app`."""

import gc
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import Depends, FastAPI

import app.models  # noqa: F401  (every mapper configured before first use)
from app import geocoding
from app.body_limit import BodyLimitMiddleware
from app.config import Settings, get_settings
from app.db import ReadRouting, engine_from_settings, make_sessionmaker
from app.edge.cors import PublicReadCORS
from app.edge.logs import configure_logging
from app.edge.metrics import Metrics
from app.edge.middleware import EdgeMiddleware
from app.edge.query import check_query_parameters
from app.edge.router import router as metrics_router
from app.errors import publish_problems, register_error_handlers
from app.health.router import router as health_router
from app.imports.jobs import Worker
from app.imports.router import router as imports_router
from app.networks.router import router as networks_router
from app.ratelimit.clients import ClientKeys
from app.ratelimit.limiter import limiter_from_settings
from app.ratelimit.middleware import RateLimitMiddleware, document_rate_limit
from app.reference.router import router as reference_router
from app.search.router import router as search_router
from app.therapists.router import router as therapists_router

DESCRIPTION = """
Find physical therapists by specialty (above all neurological PT for people with
neuropathy), by the insurance plans they accept and by distance.

Reads are public. Writes need `Authorization: Bearer <api key>`: admin keys manage
everything, payer keys manage their own payer's plans and networks.
Errors are [RFC 9457](https://www.rfc-editor.org/rfc/rfc9457) problem details.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    metrics = Metrics()
    limiter = limiter_from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = engine_from_settings(settings, requests=True)
        # Imports run in their own pool, without the per-statement time limit, so a
        # long import neither times out nor takes connections from requests.
        import_engine = engine_from_settings(settings)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        replica = (
            engine_from_settings(settings, requests=True, replica=True)
            if settings.read_database_url
            else None
        )
        app.state.reads = ReadRouting(app.state.sessionmaker, replica)
        metrics.watch_imports(engine)
        # Build the ZIP and city indexes now rather than on the first request.
        await anyio.to_thread.run_sync(geocoding.warm_up)
        # Those indexes and the imported modules live as long as the process: take them
        # out of the garbage collector's sight, so its passes stay short under load.
        gc.collect()
        gc.freeze()
        workers = [
            Worker(import_engine, settings.import_dir) for _ in range(settings.import_workers)
        ]
        for worker in workers:
            worker.start()
        app.state.import_worker = workers[0] if workers else None
        try:
            yield
        finally:
            for worker in workers:
                worker.stop()
            engine.dispose()
            import_engine.dispose()
            if replica is not None:
                replica.dispose()
            if limiter is not None:
                await limiter.aclose()

    app = FastAPI(
        title="Physical therapist directory",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(check_query_parameters)],
    )
    app.state.settings = settings
    app.state.metrics = metrics
    framework_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = publish_problems(framework_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    register_error_handlers(app)
    # Added innermost first: the edge layer sees every response (429s and CORS included).
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        streamed=re.compile(r"^/v1/(payers/[^/]+/)?imports/?$"),
    )
    # Monitors and the schema pages are polled; they stay out of clients' allowances.
    unlimited = frozenset(
        path
        for path in (
            "/healthz",
            "/readyz",
            "/metrics",
            app.openapi_url,
            app.docs_url,
            app.swagger_ui_oauth2_redirect_url,
            app.redoc_url,
        )
        if path
    )
    if limiter is not None:
        app.add_middleware(
            RateLimitMiddleware,
            limiter=limiter,
            burst=settings.rate_limit_burst,
            clients=ClientKeys(settings.trusted_proxies),
            exempt=unlimited,
        )
    app.add_middleware(PublicReadCORS, origins=settings.cors_origin_list)
    app.add_middleware(EdgeMiddleware, metrics=metrics, access_log=settings.access_log)
    for router in (
        health_router,
        metrics_router,
        search_router,
        reference_router,
        networks_router,
        therapists_router,
        imports_router,
    ):
        app.include_router(router)
    if limiter is not None:
        document_rate_limit(app, unlimited)
    return app
