"""Server-rendered pages (Jinja2 + HTMX)."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    from kefu.web import routes

    routes.install(app)
