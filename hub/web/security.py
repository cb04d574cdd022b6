"""Security for every page: headers (a strict CSP among them), the CSRF cookie and its check, safe redirects."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from fastapi import Request, Response
from starlette.datastructures import FormData

from hub.errors import Forbidden
from hub.web.i18n import LANGUAGE_COOKIE, LANGUAGES, choose_language

CSRF_COOKIE = "rathaus_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Pages load nothing from elsewhere and run no inline script or style: injected markup stays inert.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def is_secure(request: Request) -> bool:
    """True behind TLS; uvicorn's proxy headers turn the proxy's X-Forwarded-Proto into the scheme."""
    return request.url.scheme == "https"


def set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int | None = None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="lax", secure=is_secure(request), path="/"
    )


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


async def page_security(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Middleware: language, a CSRF cookie for every visitor, and the security headers."""
    request.state.language = choose_language(request)
    known = request.cookies.get(CSRF_COOKIE)
    request.state.csrf_token = known or new_csrf_token()
    response = await call_next(request)
    if request.state.csrf_token != known:
        set_cookie(request, response, CSRF_COOKIE, request.state.csrf_token)
    chosen = request.query_params.get("lang")
    if chosen in LANGUAGES and chosen != request.cookies.get(LANGUAGE_COOKIE):
        set_cookie(request, response, LANGUAGE_COOKIE, chosen, max_age=365 * 86400)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.headers.get("content-type", "").startswith("text/html"):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response


async def verify_csrf(request: Request) -> None:
    """Dependency of every page router: a form that changes something must carry the visitor's token.

    The token is in a cookie and must come back in the form (or the X-CSRF-Token header for
    scripts); another site can make a browser send the cookie but cannot read it.
    """
    if request.method in _SAFE_METHODS:
        return
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form: FormData = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else ""
    if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise Forbidden("Das Formular ist abgelaufen oder kam nicht von dieser Seite. Bitte laden Sie die Seite neu.")


def safe_next(target: str | None, default: str = "/app/") -> str:
    """Only a path on this site: `//evil.example`, `https://…` and backslash tricks fall back to the default."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target
