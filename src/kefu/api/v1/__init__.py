"""/api/v1: a FastAPI sub-application with its own OpenAPI document and error handlers."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from kefu import __version__
from kefu.api.v1 import (
    audit,
    auth,
    calendars,
    complaints,
    customer_import,
    customers,
    mail,
    notices,
    phrases,
    portal,
    problems,
    reports,
    return_visits,
    robots,
    routing,
    service_levels,
    staff,
    surveys,
    ticket_fields,
    ticket_links,
    ticket_views,
    tickets,
    tiering,
    units,
    webhooks,
)
from kefu.errors import DomainError


def create_api() -> FastAPI:
    api = FastAPI(
        title="Kefu API",
        version=__version__,
        description="REST API of Kefu (客服). Bearer tokens; errors are RFC 9457 problem "
        "documents in the language of Accept-Language; lists are cursor-paginated.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    api.add_exception_handler(DomainError, problems.on_domain_error)
    api.add_exception_handler(RequestValidationError, problems.on_validation_error)
    api.add_exception_handler(StarletteHTTPException, problems.on_http_error)
    api.add_exception_handler(Exception, problems.on_unexpected)
    # Routes are matched in order, one by one: the busiest (ticket intake) comes first.
    for module in (
        tickets,
        auth,
        units,
        staff,
        customer_import,
        customers,
        service_levels,
        tiering,
        ticket_fields,
        ticket_links,
        calendars,
        routing,
        return_visits,
        surveys,
        complaints,
        reports,
        ticket_views,
        mail,
        phrases,
        audit,
        webhooks,
        robots,
        notices,
        portal,
    ):
        api.include_router(module.router)
    api.include_router(customers.industries_router)
    api.include_router(tiering.pins)
    api.include_router(tickets.categories_router)
    api.include_router(ticket_fields.category_fields_router)
    api.include_router(webhooks.deliveries_router)
    api.include_router(surveys.recovery_router)
    api.include_router(mail.inbound_router)
    api.include_router(notices.preferences_router)
    api.include_router(mail.templates_router)
    return api
