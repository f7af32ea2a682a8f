"""create_app(): the web pages, the API under /api/v1, static files and error pages."""

from __future__ import annotations

import gc
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker

from kefu import __version__
from kefu.api.v1 import create_api
from kefu.api.v1.ticket_intake import IntakeQueue
from kefu.config import Settings, get_settings, use_settings
from kefu.db import make_engine, make_sessionmaker
from kefu.i18n.middleware import LocaleMiddleware
from kefu.request_id import RequestIdMiddleware


def create_app(
    settings: Settings | None = None, session_factory: sessionmaker[Session] | None = None
) -> FastAPI:
    if settings is not None:
        use_settings(settings)
    settings = get_settings()
    if session_factory is None:
        session_factory = make_sessionmaker(
            make_engine(settings.database_url, pool_size=settings.database_pool_size)
        )

    app = FastAPI(
        title="Kefu", version=__version__, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.sessionmaker = session_factory
    api = create_api()
    api.state.sessionmaker = session_factory
    api.state.intake = IntakeQueue(session_factory)  # the ticket intake's group commit
    app.mount("/api/v1", api)
    app.add_middleware(LocaleMiddleware)
    app.add_middleware(RequestIdMiddleware)

    from kefu.web import install  # the web layer owns templates (Jinja2) and pages

    install(app)
    app.mount(
        "/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static"
    )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    return app


def served_app() -> FastAPI:
    """The app of one web process of `kefu serve --workers N` (uvicorn's factory)."""
    app = create_app()
    # Objects made at import live forever; freezing them spares every full collection
    # from scanning them again (long pauses otherwise show up as p99 latency).
    gc.collect()
    gc.freeze()
    # A request makes a few hundred short-lived objects (ORM rows, JSON): collecting the
    # young generation every 700 allocations cost the intake ~5 % of its CPU.
    gc.set_threshold(20_000, 20, 50)
    return app
