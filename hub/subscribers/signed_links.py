"""Signed link tokens: what a link in a message carries, signed with the server's key per purpose."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fastapi import Request, Response

from hub.errors import DomainError, InvalidInput
from hub.i18n import N_
from hub.settings import get_settings
from hub.web.security import set_cookie

log = logging.getLogger(__name__)

# Development default only: anyone who knows it can forge confirmation links, so production
# must set RATHAUS_SECRET_KEY (hub.settings) to a long random value.
DEVELOPMENT_SECRET_KEY = "rathaus-hub-development-key-not-for-production"  # noqa: S105 (public on purpose)


@lru_cache
def secret_key() -> bytes:
    """The server's HMAC key from RATHAUS_SECRET_KEY, or the development default (with a warning)."""
    configured = get_settings().secret_key
    if not configured:
        log.warning("RATHAUS_SECRET_KEY is not set; using the development key, which is not secret")
        configured = DEVELOPMENT_SECRET_KEY
    return configured.encode("utf-8")


def _derived_key(purpose: str) -> bytes:
    # One key per purpose, so a signature made for one use can never be replayed for another.
    return hmac.new(secret_key(), purpose.encode("utf-8"), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(payload: dict[str, Any], *, purpose: str) -> str:
    """payload.signature, both URL-safe base64; the payload gets the issue time `iat`."""
    body = _b64(json.dumps({**payload, "iat": int(time.time())}, separators=(",", ":")).encode("utf-8"))
    signature = hmac.new(_derived_key(purpose), body.encode("ascii"), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}"


def read_token(token: str, *, purpose: str, max_age_seconds: int) -> dict[str, Any]:
    """The payload of a token this server signed for `purpose`, if it is not older than allowed."""
    body, _, signature = token.strip().partition(".")
    try:
        expected = hmac.new(_derived_key(purpose), body.encode("ascii"), hashlib.sha256).digest()
        valid = hmac.compare_digest(expected, _unb64(signature))
        payload = json.loads(_unb64(body)) if valid else None
    except (ValueError, UnicodeError):
        payload = None
    if not isinstance(payload, dict):
        raise InvalidInput(N_("Der Bestätigungslink ist ungültig. Bitte melden Sie sich noch einmal an."))
    if time.time() - float(payload.get("iat", 0)) > max_age_seconds:
        raise InvalidInput(N_("Der Bestätigungslink ist abgelaufen. Bitte melden Sie sich noch einmal an."))
    return payload


@dataclass(frozen=True)
class FormState:
    """What a browser carries between the steps of a citizen's form: a signed cookie, for one town, fresh for `seconds`.

    Nothing of an unfinished form is stored on the server; a cookie that is forged, stale or
    another town's reads as none, and the form starts again.
    """

    cookie: str
    purpose: str
    seconds: int

    def remember(self, request: Request, response: Response, *, municipality_id: int | None, **state: Any) -> None:
        token = sign_token({**state, "m": municipality_id}, purpose=self.purpose)
        set_cookie(request, response, self.cookie, token, max_age=self.seconds)

    def recall(self, request: Request, *, municipality_id: int | None) -> dict[str, Any] | None:
        token = request.cookies.get(self.cookie)
        if not token:
            return None
        try:
            state = read_token(token, purpose=self.purpose, max_age_seconds=self.seconds)
        except DomainError:
            return None
        return state if state.get("m") == municipality_id else None

    def forget(self, response: Response) -> None:
        response.delete_cookie(self.cookie, path="/")
