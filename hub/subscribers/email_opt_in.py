"""Email double opt-in: a signed confirmation link by mail, and subscribing the address when it is followed."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from channels.base import OutboundMessage
from hub.contacts.service import resolve_contact
from hub.delivery.engine import send_while_waiting
from hub.errors import ChannelUnavailable, InvalidInput, TooManyRequests
from hub.i18n import N_
from hub.ratelimit import shared_limiter, try_acquire
from hub.settings import Settings
from hub.subscribers.catalogue import district_by_key, topics_by_keys
from hub.subscribers.consent import LANGUAGES, Change, subscribe
from hub.subscribers.signed_links import read_token, sign_token
from hub.templating import greeting, render_message
from hub.tenancy.models import Municipality
from hub.tenancy.preferences import preference
from hub.tenancy.service import channel_reaching

CONFIRMATION_VALID_SECONDS = 7 * 24 * 3600
OPT_IN_PER_IP_PER_HOUR = 10
OPT_IN_PER_ADDRESS_PER_HOUR = 3
EMAIL_PURPOSE = "email-double-opt-in"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def check_address(email: str, language: str) -> str:
    """The address as stored (trimmed, lower case), or a 422 if it is none, in the form's `language`.

    The language is checked first: like the phone sign-up's, these refusals speak the language
    the citizen chose on the form.
    """
    if language not in LANGUAGES:
        raise InvalidInput(N_("Unbekannte Sprache {language!r}; erlaubt: de, en."), language=language)
    address = email.strip().lower()
    if not _EMAIL.fullmatch(address) or len(address) > 254:
        raise InvalidInput(N_("{email!r} ist keine gültige E-Mail-Adresse."), email=email).in_language(language)
    return address


def mail_signed_link(
    session: Session,
    *,
    settings: Settings,
    municipality: Municipality,
    email: str,
    language: str,
    client_ip: str | None,
    purpose: str,
    payload: dict[str, Any],
    path: str,
    template: str,
    context: dict[str, Any],
) -> str:
    """Mails a link to `path` carrying `payload` signed for `purpose`; nothing is stored until it is followed.

    The link carries the whole request, signed, so an unconfirmed request leaves no trace in
    the database. `template` names the mail (with its `_subject` beside it), filled with
    `context`, the greeting, the town's name, the link and how many days it is valid.
    Returns the address the mail went to.
    """
    assert municipality.id is not None
    address = check_address(email, language)
    # The form mails whoever is named in it: without limits it would mail a stranger on and on.
    limiter = shared_limiter(settings)
    if not (
        try_acquire(limiter, f"opt-in:ip:{client_ip}", OPT_IN_PER_IP_PER_HOUR, 3600)
        and try_acquire(limiter, f"opt-in:mail:{address}", OPT_IN_PER_ADDRESS_PER_HOUR, 3600)
    ):
        raise TooManyRequests(
            N_("Zu viele Anmeldeversuche. Bitte versuchen Sie es in einer Stunde noch einmal.")
        ).in_language(language)
    account = channel_reaching(session, municipality_id=municipality.id, identity="email")
    if account is None:
        raise ChannelUnavailable(N_("E-Mails kann diese Gemeinde derzeit nicht verschicken.")).in_language(language)
    token = sign_token({**payload, "m": municipality.id, "e": address, "l": language, "ip": client_ip}, purpose=purpose)
    texts = preference(municipality, "texts")
    filled = {
        **context,
        **greeting(language, context.get("name")),
        "municipality": municipality.name,
        "link": f"{settings.public_url.rstrip('/')}{path}?token={token}",
        "days": CONFIRMATION_VALID_SECONDS // 86400,
    }
    stem = template.removesuffix(".txt.j2")
    message = OutboundMessage(
        to=address,
        subject=render_message(f"{stem}_subject.txt.j2", language, overrides=texts, **filled),
        text=render_message(template, language, overrides=texts, **filled),
        automated=True,
    )
    send_while_waiting(settings, account, message, language=language)
    return address


def request_email_subscription(
    session: Session,
    *,
    settings: Settings,
    municipality: Municipality,
    email: str,
    topics: Sequence[str],
    district: str | None,
    language: str,
    client_ip: str | None,
) -> str:
    """Mails a signed confirmation link (double opt-in) for the topics and district chosen."""
    assert municipality.id is not None
    check_address(email, language)
    chosen = topics_by_keys(session, municipality_id=municipality.id, words=topics)
    place = district_by_key(session, municipality_id=municipality.id, word=district) if district else None
    if channel_reaching(session, municipality_id=municipality.id, identity="email") is None:
        raise ChannelUnavailable(
            N_("Die Anmeldung per E-Mail ist bei dieser Gemeinde derzeit nicht möglich.")
        ).in_language(language)
    return mail_signed_link(
        session, settings=settings, municipality=municipality, email=email, language=language, client_ip=client_ip,
        purpose=EMAIL_PURPOSE, payload={"t": [topic.key for topic in chosen], "d": place.key if place else None},
        path=f"/api/v1/public/{municipality.slug}/subscriptions/email/confirm", template="email_double_opt_in.txt.j2",
        # The address is all the hub knows of the person yet: no name to greet.
        context={
            "topics": [topic.name_en if language == "en" else topic.name_de for topic in chosen],
            "district": place.name if place else None,
        },
    )  # fmt: skip


def check_email_confirmation(*, municipality: Municipality, token: str, purpose: str = EMAIL_PURPOSE) -> dict[str, Any]:
    """The request a link mailed by mail_signed_link carries, if it is genuine, unexpired and for this town."""
    payload = read_token(token, purpose=purpose, max_age_seconds=CONFIRMATION_VALID_SECONDS)
    if payload.get("m") != municipality.id:
        raise InvalidInput(N_("Der Bestätigungslink gehört zu einer anderen Gemeinde."))
    return payload


def confirm_email_subscription(
    session: Session, *, municipality: Municipality, token: str, client_ip: str | None, user_agent: str | None
) -> Change:
    """Follows a confirmation link: subscribes the address as asked; following it again changes nothing."""
    assert municipality.id is not None
    payload = check_email_confirmation(municipality=municipality, token=token)
    contact = resolve_contact(
        session, municipality_id=municipality.id, kind="email", address=payload["e"], language=payload.get("l")
    )
    assert contact.id is not None
    chosen = topics_by_keys(session, municipality_id=municipality.id, words=payload.get("t", []))
    place = district_by_key(session, municipality_id=municipality.id, word=payload["d"]) if payload.get("d") else None
    mail = channel_reaching(session, municipality_id=municipality.id, identity="email")
    return subscribe(
        session,
        municipality_id=municipality.id,
        contact_id=contact.id,
        channel_kind=mail.kind if mail else None,
        source="email_link",
        action="confirmed",
        evidence={
            "ip": client_ip,
            "user_agent": (user_agent or "")[:300],
            "requested_from_ip": payload.get("ip"),
            "requested_at": datetime.fromtimestamp(payload["iat"], UTC).isoformat(),
        },
        topic_ids=[topic.id for topic in chosen if topic.id is not None],
        district_ids=[place.id] if place and place.id else [],
        language=payload.get("l"),
    )
