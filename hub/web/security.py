"""Security for every page: headers (a strict CSP among them), the CSRF token and its check, safe redirects."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request, Response
from starlette.datastructures import FormData, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.errors import Forbidden
from hub.i18n import LANGUAGE_COOKIE, LANGUAGES, N_, choose_language
from hub.settings import get_settings

SESSION_COOKIE = "rathaus_session"
CSRF_COOKIE = "rathaus_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
WEBHOOK_PREFIX = "/webhooks/"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def client_address(request: Request) -> str | None:
    """The client's address; behind a proxy in RATHAUS_TRUSTED_PROXIES, the one it forwarded (hub.app)."""
    return request.client.host if request.client else None


def is_secure(request: Request) -> bool:
    """True behind TLS; a trusted proxy's X-Forwarded-Proto becomes the scheme (hub.app)."""
    return request.url.scheme == "https"


def set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int | None = None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="lax", secure=is_secure(request), path="/"
    )


def cookie_header(request: Request, name: str, value: str, *, max_age: int | None = None) -> str:
    """The Set-Cookie value that `set_cookie` would add to a response."""
    response = Response()
    set_cookie(request, response, name, value, max_age=max_age)
    return response.headers["set-cookie"]


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def session_csrf_token(session_token: str) -> str:
    """The CSRF token of a signed-in browser, derived from its session's secret token.

    Bound to the session, a token cannot be planted: a cookie written by a neighbouring
    subdomain (or a man in the middle on plain http) names a value the attacker knows, but the
    token the hub expects follows from the HttpOnly session cookie, which nobody else has.
    """
    digest = hmac.new(session_token.encode(), b"rathaus-csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def expected_csrf_token(request: Request) -> str | None:
    """Signed in: the session's token; before sign-in: the visitor's random cookie (double submit)."""
    session_token = request.cookies.get(SESSION_COOKIE)
    return session_csrf_token(session_token) if session_token else request.cookies.get(CSRF_COOKIE)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def content_security_policy(tile_url: str) -> str:
    """Pages load nothing from elsewhere but map tiles (from the tile server's origin) and run no inline script or
    style: injected markup stays inert."""
    # A {s} subdomain template stands for any of the server's subdomains.
    tiles = _origin(tile_url).replace("{s}", "*") if tile_url.startswith(("https://", "http://")) else ""
    return (
        f"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:{' ' + tiles if tiles else ''}; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )


def comes_from_this_site(request: Request) -> bool:
    """Origin (or, without it, Referer) names the public URL or the address the page was served from.

    Browsers send Origin with every form post; a request without either header (some privacy
    tools strip both) is left to the token alone. "null" (a sandboxed frame, a data: URL) is refused.
    """
    claimed = request.headers.get("origin")
    if claimed is None:
        referer = request.headers.get("referer")
        if not referer:
            return True
        claimed = _origin(referer)
    allowed = {_origin(get_settings().public_url), f"{request.url.scheme}://{request.url.netloc}".lower()}
    return claimed.lower() in allowed


class PageSecurity:
    """Middleware: language, a CSRF cookie for every visitor, and the security headers.

    Plain ASGI rather than `app.middleware("http")`: Starlette's BaseHTTPMiddleware copies every
    response through a stream, which cost a sixth of the web app's CPU per provider webhook.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.policy = content_security_policy(get_settings().map_tile_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        known = request.cookies.get(CSRF_COOKIE)
        request.state.language = choose_language(request)
        request.state.csrf_token = expected_csrf_token(request) or new_csrf_token()
        # A provider never sends cookies back: a CSRF cookie per webhook would only be noise.
        wants_cookies = not scope["path"].startswith(WEBHOOK_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if wants_cookies:
                    if request.state.csrf_token != known:
                        headers.append("set-cookie", cookie_header(request, CSRF_COOKIE, request.state.csrf_token))
                    chosen = request.query_params.get("lang")
                    if chosen in LANGUAGES and chosen != request.cookies.get(LANGUAGE_COOKIE):
                        cookie = cookie_header(request, LANGUAGE_COOKIE, chosen, max_age=365 * 86400)
                        headers.append("set-cookie", cookie)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", self.policy)
                    headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def verify_csrf(request: Request) -> None:
    """Dependency of every page router: a form that changes something must come from this site with its token.

    The token must come back in the form (or the X-CSRF-Token header for scripts): another site
    can make a browser send cookies but cannot read the page that carries the token. Signed in,
    the token is the session's own (`session_csrf_token`).
    """
    if request.method in _SAFE_METHODS:
        return
    if not comes_from_this_site(request):
        raise Forbidden(
            N_(
                "Die Anfrage kam von einer anderen Seite und wurde deshalb nicht ausgeführt. Bitte öffnen"
                " Sie das Formular direkt im Rathaus Hub."
            )
        )
    expected = expected_csrf_token(request) or ""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form: FormData = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else ""
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise Forbidden(
            N_("Das Formular ist abgelaufen oder kam nicht von dieser Seite. Bitte laden Sie die Seite neu.")
        )


def safe_next(target: str | None, default: str = "/app/") -> str:
    """Only a path on this site: `//evil.example`, `https://…` and backslash tricks fall back to the default."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target
