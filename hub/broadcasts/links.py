"""Signed links in broadcast mails: one-click unsubscribe (RFC 8058) and answering a survey from the mail.

The link alone identifies the recipient and the broadcast (an opaque, signed token), since
the mail client that follows it sends no cookie and no login.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.errors import InvalidInput
from hub.i18n import N_
from hub.settings import Settings
from hub.subscribers.signed_links import read_token, sign_token

UNSUBSCRIBE = "unsubscribe"
ANSWER = "survey-answer"
# An unsubscribe link must work for as long as someone may keep the mail.
VALID_SECONDS = 3 * 365 * 24 * 3600


@dataclass(frozen=True)
class LinkTarget:
    municipality_id: int
    contact_id: int
    broadcast_id: int


def link(settings: Settings, purpose: str, target: LinkTarget) -> str:
    token = sign_token({"m": target.municipality_id, "c": target.contact_id, "b": target.broadcast_id}, purpose=purpose)
    path = "u" if purpose == UNSUBSCRIBE else "a"
    return f"{settings.public_url.rstrip('/')}/{path}/{token}"


def read(token: str, purpose: str) -> LinkTarget:
    payload = read_token(token, purpose=purpose, max_age_seconds=VALID_SECONDS)
    try:
        return LinkTarget(
            municipality_id=int(payload["m"]), contact_id=int(payload["c"]), broadcast_id=int(payload["b"])
        )
    except (KeyError, TypeError, ValueError):
        raise InvalidInput(N_("Der Link ist ungültig.")) from None
