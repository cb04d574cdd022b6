"""A Jitsi Meet server with token authentication: /jitsi/<room>?jwt=… lets a person in only with a valid token.

The checks are those of Prosody's token plugins: the token is signed with the app secret of the
app it names as issuer (a registered jitsi account), is meant for the server's audience, has not
expired, and names this room (or `*`) and, as `sub`, the tenant of /jitsi/<tenant>/<room> or
else the server's domain (or `*`). Who gets in is kept as a meeting of the sandbox.
"""

from __future__ import annotations

import html
import time
from typing import Any

import jwt
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from channels.sandbox.state import Account, Attendee, Meeting, SandboxState, get_state, utcnow
from channels.sandbox.wire import person_page

router = APIRouter(tags=["jitsi"])

KIND = "jitsi"
ALGORITHMS = ["HS256"]
DEFAULT_AUDIENCE = "jitsi"


class Refused(Exception):
    """The token does not let its bearer into this room; the message says why."""


def _app(state: SandboxState, token: str) -> Account:
    """The registered app the token names as its issuer (read before the signature is checked)."""
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError as exc:
        raise Refused(f"not a JWT: {exc}") from exc
    account = state.find_account(KIND, app_id=issuer) if isinstance(issuer, str) else None
    if account is None:
        raise Refused(f"no app {issuer!r} is configured on this server")
    return account


def _claims(account: Account, token: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            str(account.secrets["app_secret"]),
            algorithms=ALGORITHMS,
            audience=str(account.config.get("audience") or DEFAULT_AUDIENCE),
            issuer=str(account.config["app_id"]),
            options={"require": ["exp", "room", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise Refused(f"token refused: {type(exc).__name__}: {exc}") from exc
    return claims


def _check_room(claims: dict[str, Any], tenant: str | None, room: str, domain: str) -> None:
    if claims["room"] != "*" and str(claims["room"]).lower() != room.lower():
        raise Refused(f"the token is for room {claims['room']!r}, not {room!r}")
    expected_sub = tenant.lower() if tenant else domain.lower()
    if claims["sub"] != "*" and str(claims["sub"]).lower() != expected_sub:
        raise Refused(f"the token's sub {claims['sub']!r} is not {expected_sub!r}")


def _user(claims: dict[str, Any]) -> dict[str, Any]:
    """context.user, the display information a token carries (empty where it carries none)."""
    context = claims.get("context")
    user = context.get("user") if isinstance(context, dict) else None
    return user if isinstance(user, dict) else {}


def _is_moderator(claims: dict[str, Any]) -> bool:
    """As the moderator plugins read it: context.user.affiliation or .moderator, or a top-level moderator."""
    user = _user(claims)
    return (
        user.get("affiliation") in ("owner", "moderator")
        or user.get("moderator") in ("true", True)
        or claims.get("moderator") is True
    )


@router.get("/jitsi/{path:path}", response_class=HTMLResponse)
def room_page(
    path: str, request: Request, token: str = Query("", alias="jwt"), state: SandboxState = Depends(get_state)
) -> HTMLResponse:
    tenant, _, room = path.strip("/").rpartition("/")
    if not room:
        return HTMLResponse(person_page("Jitsi Meet", "<p>No room named.</p>"), 404)
    try:
        if not token:
            raise Refused("this server lets nobody in without a token")
        account = _app(state, token)
        claims = _claims(account, token)
        domain = str(account.config.get("domain") or request.url.hostname or "")
        _check_room(claims, tenant or None, room, domain)
    except Refused as refusal:
        return HTMLResponse(person_page("Jitsi Meet", f"<p>Not let in: {html.escape(str(refusal))}</p>"), 403)
    user = _user(claims)
    attendee = Attendee(str(user.get("id", "")), str(user.get("name", "")), _is_moderator(claims), utcnow())
    key = path.strip("/").lower()
    state.join_meeting(Meeting(KIND, account.id, key, key, create_time=time.time_ns() // 1_000_000), attendee)
    role = "moderator" if attendee.moderator else "participant"
    body = f"<p>You are in the room <strong>{html.escape(key)}</strong> as {html.escape(attendee.name)} ({role}).</p>"
    return HTMLResponse(person_page("Jitsi Meet", body))
