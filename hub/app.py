"""Builds the FastAPI app from the domain routers, with health checks and one error shape."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DataError

from hub import webhooks
from hub.broadcasts import api as broadcasts_api
from hub.broadcasts import public as broadcasts_public
from hub.contacts import api as contacts_api
from hub.db import get_engine
from hub.errors import DomainError
from hub.inbox import api as inbox_api
from hub.subscribers import api as subscribers_api
from hub.tenancy import api as tenancy_api
from workers.app import celery_app

log = logging.getLogger(__name__)


def create_app() -> FastAPI:
    app = FastAPI(
        title="Rathaus Hub",
        version="0.1.0",
        description="Ein Posteingang für SMS, Telegram, Facebook und E-Mail einer Gemeinde.",
    )
    app.include_router(webhooks.router)
    app.include_router(broadcasts_api.router)
    app.include_router(broadcasts_public.router)
    app.include_router(inbox_api.router)
    app.include_router(contacts_api.router)
    app.include_router(tenancy_api.router)
    app.include_router(subscribers_api.router)
    app.include_router(subscribers_api.public_router)

    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, error: DomainError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()]
        return JSONResponse({"detail": "Ungültige Anfrage: " + "; ".join(problems)}, status_code=422)

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def out_of_range(_request: Request, error: Exception) -> JSONResponse:
        # A number in the path or body beyond what the database stores (ids are 64-bit).
        return JSONResponse({"detail": "Ungültige Anfrage: eine Zahl ist zu groß für eine Kennung."}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"detail": "Interner Fehler; er wurde protokolliert."}, status_code=500)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """The database and the broker are reachable."""
        checks: dict[str, str] = {}
        try:
            with get_engine().connect() as connection:
                connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as error:
            checks["database"] = f"unreachable: {type(error).__name__}"
        try:
            with celery_app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
            checks["broker"] = "ok"
        except Exception as error:
            checks["broker"] = f"unreachable: {type(error).__name__}"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", **checks},
            status_code=200 if ready else 503,
        )

    return app
