"""The web service: ``create_app`` builds a FastAPI app from its dependencies.

Tests pass their own settings (a temporary database) and a queue double; ``prunelab serve`` passes
nothing and gets the environment's settings and the Celery queue. The app refuses to start on a
database whose schema is not at the newest migration (``prunelab db upgrade`` fixes that).

This module, and everything it imports, never imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware

from backend.api import api_router, benchmarks, compare, figures, pages, signin, team, uploads
from backend.api.artifacts import ARTIFACT_MEDIA_TYPES
from backend.api.body_limit import BodyLimit
from backend.api.deps import AppContext
from backend.api.docs import install_docs
from backend.api.errors import install_error_handlers
from backend.api.security import install_security
from backend.api.uploads_resolve import upload_resolver
from backend.auth.bootstrap import require_safe_bind
from backend.auth.errors import install_auth_errors
from backend.db import make_engine, make_session_factory
from backend.migrate import require_head
from backend.schemas import API_PREFIX
from backend.service.ports import Queue
from backend.settings import Settings, get_settings
from backend.version import package_version

#: Default seconds between two database reads of an event stream.
EVENT_POLL_SECONDS = 0.5
#: JSON and HTML answers at least this long are gzip-encoded (event streams never: they must flow;
#: model files neither: a .keras file is a zip already, and each keeps its SHA-256 ETag).
GZIP_MIN_BYTES = 1024
NOT_GZIPPED = (*DEFAULT_EXCLUDED_CONTENT_TYPES, *ARTIFACT_MEDIA_TYPES)


def create_app(
    settings: Settings | None = None,
    queue: Queue | None = None,
    *,
    check_migrations: bool = True,
    event_poll_seconds: float = EVENT_POLL_SECONDS,
) -> FastAPI:
    """The prunelab API (OpenAPI docs at ``/docs``).

    Args:
        settings: where the database and broker are. Default None: from the environment.
        queue: where new experiments' ids go. Default None: ``backend.queue.CeleryQueue(settings)``.
        check_migrations: refuse a database that is not at the newest migration. Default True.
        event_poll_seconds: how often an event stream reads the database. Default 0.5.

    Returns:
        The app; its engine is disposed when the app shuts down.

    Raises:
        backend.migrate.MigrationRequired: the database is not at head (the message says to run
            ``prunelab db upgrade``).
        backend.auth.bootstrap.UnsafeBind: authentication is off and ``settings.host`` is not loopback.
    """
    settings = settings if settings is not None else get_settings()
    require_safe_bind(settings)
    engine = make_engine(settings)
    try:
        if check_migrations:
            require_head(engine)
        if queue is None:
            from backend.queue import CeleryQueue  # imports Celery; only when nothing was injected

            queue = CeleryQueue(settings)
    except BaseException:
        engine.dispose()
        raise

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="prunelab",
        version=package_version(),
        summary="Neural-network pruning experiments: submit, follow, compare.",
        lifespan=lifespan,
        docs_url=None,  # install_docs: the explorers with their files served from here, not a CDN
        redoc_url=None,
        dependencies=[Depends(upload_resolver)],  # specs may name uploads by id (prunespec.uploaded)
    )
    app.state.context = AppContext(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        queue=queue,
        event_poll_seconds=event_poll_seconds,
    )
    install_error_handlers(app)
    install_auth_errors(app)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        limits_by_prefix={
            uploads.MODELS_PATH: settings.max_model_upload_bytes,
            uploads.DATASETS_PATH: settings.max_data_upload_bytes,
        },
    )
    app.add_middleware(
        GZipMiddleware, minimum_size=GZIP_MIN_BYTES, compresslevel=6, exclude_content_types=NOT_GZIPPED
    )
    install_docs(app)
    install_security(app, settings)  # outermost: hosts and origins are checked first
    app.include_router(api_router())
    routers = (figures.router, compare.router, pages.spec_router, benchmarks.router, team.router)
    for router in (*routers, uploads.models_router, uploads.datasets_router):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(signin.api_router, prefix=API_PREFIX)
    app.include_router(signin.page_router)
    pages.mount_frontend(app)
    return app
