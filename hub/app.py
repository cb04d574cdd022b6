"""Builds the FastAPI app from the domain routers, with health checks and one error shape."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from gettext import NullTranslations
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from hub import webhooks
from hub.broadcasts import routes as broadcasts
from hub.composition import install
from hub.consultations import routes as consultations
from hub.contacts import routes as contacts
from hub.db import get_engine
from hub.doctor import broker_error, database_error
from hub.errors import DomainError
from hub.i18n import N_, gettext_for, language_of, translate
from hub.inbox import routes as inbox
from hub.logs import RequestIdMiddleware, bind_town
from hub.migrate import code_head, code_version, schema_state
from hub.monitoring import router as monitoring
from hub.official_warnings import routes as official_warnings
from hub.open311 import routes as open311
from hub.problems import routes as problems
from hub.reports import routes as reports
from hub.settings import get_settings
from hub.subscribers import routes as subscribers
from hub.tenancy import routes as tenancy
from hub.web import routes as web
from hub.web.auth import SignInRequired
from hub.web.citizen_pages import town_for_error_page
from hub.web.rendering import render
from hub.web.security import PageSecurity
from hub.webcases import routes as webcases
from workers.app import celery_app

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "web" / "static"
# What the error page's heading says for each status, German msgids translated at render time.
_ERROR_TITLES = {
    400: N_("Das hat nicht geklappt"),
    403: N_("Keine Berechtigung"),
    404: N_("Nicht gefunden"),
    409: N_("Das geht gerade nicht"),
    422: N_("Bitte prüfen Sie die Eingaben"),
    429: N_("Zu viele Anfragen"),
    503: N_("Gerade nicht erreichbar"),
}


_INVALID_REQUEST = N_("Ungültige Anfrage: {problems}")
# What the JSON API says of a value its input shapes refuse, by pydantic's error type; German
# msgids filled from the error's context. A type not named here keeps the message it comes with
# (the German ones of hub.api_fields are msgids too).
_VALIDATION_TEXTS = {
    "missing": N_("Angabe fehlt."),
    "string_type": N_("Bitte einen Text angeben."),
    "int_type": N_("Bitte eine ganze Zahl angeben."),
    "int_parsing": N_("Bitte eine ganze Zahl angeben."),
    "int_from_float": N_("Bitte eine ganze Zahl angeben."),
    "float_type": N_("Bitte eine Zahl angeben."),
    "float_parsing": N_("Bitte eine Zahl angeben."),
    "bool_type": N_("Bitte true oder false angeben."),
    "bool_parsing": N_("Bitte true oder false angeben."),
    "list_type": N_("Bitte eine Liste angeben."),
    "dict_type": N_("Bitte ein Objekt angeben."),
    "model_type": N_("Bitte ein Objekt angeben."),
    "model_attributes_type": N_("Bitte ein Objekt angeben."),
    "literal_error": N_("Erlaubt: {expected}."),
    "enum": N_("Erlaubt: {expected}."),
    "string_too_short": N_("Mindestens {min_length} Zeichen."),
    "string_too_long": N_("Höchstens {max_length} Zeichen."),
    "too_short": N_("Mindestens {min_length} Einträge."),
    "too_long": N_("Höchstens {max_length} Einträge."),
    "string_pattern_mismatch": N_("Das Format stimmt nicht; erwartet: {pattern}."),
    "greater_than": N_("Bitte eine Zahl größer als {gt} angeben."),
    "greater_than_equal": N_("Bitte eine Zahl ab {ge} angeben."),
    "less_than": N_("Bitte eine Zahl kleiner als {lt} angeben."),
    "less_than_equal": N_("Bitte eine Zahl bis {le} angeben."),
    "datetime_type": N_("Bitte einen Zeitpunkt nach ISO 8601 angeben, z. B. 2030-06-01T09:30:00+02:00."),
    "datetime_parsing": N_("Bitte einen Zeitpunkt nach ISO 8601 angeben, z. B. 2030-06-01T09:30:00+02:00."),
    "datetime_from_date_parsing": N_("Bitte einen Zeitpunkt nach ISO 8601 angeben, z. B. 2030-06-01T09:30:00+02:00."),
    "date_type": N_("Bitte ein Datum im Format JJJJ-MM-TT angeben."),
    "date_parsing": N_("Bitte ein Datum im Format JJJJ-MM-TT angeben."),
    "date_from_datetime_parsing": N_("Bitte ein Datum im Format JJJJ-MM-TT angeben."),
    "json_invalid": N_("Kein gültiges JSON ({error})."),
    "extra_forbidden": N_("Diese Angabe ist unbekannt."),
}
_NUMBER_TOO_LARGE = N_("Ungültige Anfrage: eine Zahl ist zu groß für eine Kennung.")
_NUL_IN_TEXT = N_("Ungültige Anfrage: ein Text enthält ein Nullzeichen (U+0000), das die Datenbank nicht annimmt.")
_INTERNAL = N_("Interner Fehler; er wurde protokolliert.")


def _carries_nul(parameters: object) -> bool:
    """Whether a statement's parameters hold a text with a NUL character, which PostgreSQL does not store."""
    if isinstance(parameters, dict):
        parameters = list(parameters.values())
    if isinstance(parameters, list | tuple):
        return any(_carries_nul(value) for value in parameters)
    return isinstance(parameters, str) and "\x00" in parameters


def validation_problem(item: Mapping[str, Any], texts: NullTranslations) -> str:
    """One refused value as "where: what", in the language of `texts`."""
    where = ".".join(str(part) for part in item["loc"])
    template = _VALIDATION_TEXTS.get(item["type"])
    what = texts.gettext(template).format(**item.get("ctx", {})) if template else texts.gettext(item["msg"])
    return f"{where}: {what}"


def is_page(request: Request) -> bool:
    """Pages answer errors with HTML; the API and the webhooks with JSON."""
    return not request.url.path.startswith(("/api/", "/webhooks/"))


def error_page(request: Request, status_code: int, message: str) -> Response:
    title = translate(request, _ERROR_TITLES.get(status_code, _ERROR_TITLES[400]))
    if not request.url.path.startswith("/app"):
        # Citizens reach error pages from links in messages: their own layout, no way into the staff app.
        town = town_for_error_page(request.path_params.get("slug"))
        return render(request, "citizen/error.html", status_code=status_code, title=title, message=message, **town)
    return render(request, "staff/error.html", status_code=status_code, title=title, message=message, back="/app/")


# The webhooks, the sign-in and administration pages, then each domain's pages and JSON routes
# (hub/<domain>/routes.py).
ROUTERS: tuple[APIRouter, ...] = (
    webhooks.router,
    monitoring,
    *web.ROUTERS,
    *tenancy.ROUTERS,
    *contacts.ROUTERS,
    *inbox.ROUTERS,
    *subscribers.ROUTERS,
    *broadcasts.ROUTERS,
    *consultations.ROUTERS,
    *problems.ROUTERS,
    *webcases.ROUTERS,
    *open311.ROUTERS,
    *official_warnings.ROUTERS,
    *reports.ROUTERS,
)


def health_answer(request: Request) -> JSONResponse:
    """/healthz: 200 while this process can serve, 503 when the database's schema is older than the code.

    A database migrated ahead by a newer version is the middle of a rolling upgrade: migrations add
    before they remove, so this process still serves and stays in the proxy's rotation, saying so.
    """
    body: dict[str, object] = {"status": "ok", "version": code_version(), "code_schema": code_head()}
    try:
        found = schema_state(get_engine())
    except SQLAlchemyError as error:  # reachability is /readyz's verdict; the process itself is alive
        return JSONResponse({**body, "database_schema": None, "database": f"unreachable: {type(error).__name__}"})
    body["database_schema"] = found.database
    problem = found.problem(gettext_for(language_of(request)))
    if problem is None:
        return JSONResponse(body)
    body["status"], body["detail"] = f"database_{found.state}", problem
    return JSONResponse(body, status_code=200 if found.state == "ahead" else 503)


async def town_from_path(request: Request) -> None:
    """The citizens' pages name their town in the path (/sprechstunden/{slug}/…): their log lines say which."""
    if slug := request.path_params.get("slug"):
        bind_town(slug)


def create_app() -> FastAPI:
    install()
    app = FastAPI(
        title="Rathaus Hub",
        version=code_version(),
        description="Ein Posteingang für SMS, Telegram, Facebook und E-Mail einer Gemeinde.",
        dependencies=[Depends(town_from_path)],
    )
    app.add_middleware(PageSecurity)
    # Outside the page security, so that its refusals carry the request id too.
    app.add_middleware(RequestIdMiddleware)
    trusted_proxies = get_settings().trusted_proxies.strip()
    if trusted_proxies:
        # Outermost, so that every layer below sees the citizen's address and the proxy's https.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted_proxies)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, error: DomainError) -> Response:
        # In the language `choose_language` found for the request (Accept-Language), German by default.
        message = error.text(language_of(request))
        if is_page(request):
            return error_page(request, error.status_code, message)
        return JSONResponse({"detail": message}, status_code=error.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if is_page(request) and error.status_code >= 400:
            missing = error.status_code == 404
            message = translate(request, "Diese Seite gibt es nicht.") if missing else str(error.detail)
            return error_page(request, error.status_code, message)
        return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(SignInRequired)
    async def sign_in_required(_request: Request, error: SignInRequired) -> RedirectResponse:
        return RedirectResponse(f"/app/login?{urlencode({'next': error.next_path})}", status_code=303)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        texts = gettext_for(language_of(request))
        problems = "; ".join(validation_problem(item, texts) for item in error.errors())
        return JSONResponse({"detail": texts.gettext(_INVALID_REQUEST).format(problems=problems)}, status_code=422)

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def unstorable(request: Request, error: Exception) -> Response:
        # A value the database cannot store: a number beyond 64 bits, or (PostgreSQL) a NUL in a text.
        nul = isinstance(error, DataError) and _carries_nul(error.params)
        message = translate(request, _NUL_IN_TEXT if nul else _NUMBER_TOO_LARGE)
        if is_page(request):
            return error_page(request, 422, message)
        return JSONResponse({"detail": message}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"detail": translate(request, _INTERNAL)}, status_code=500)

    @app.get("/healthz", tags=["health"])
    def healthz(request: Request) -> JSONResponse:
        """The process is alive, and whether the database's schema is the one this code expects."""
        return health_answer(request)

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """The database and the broker are reachable."""
        checks = {
            name: "ok" if error is None else f"unreachable: {type(error).__name__}"
            for name, error in (("database", database_error(get_engine())), ("broker", broker_error(celery_app)))
        }
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", **checks},
            status_code=200 if ready else 503,
        )

    return app
