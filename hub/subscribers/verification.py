"""One-time SMS codes that prove a phone number on the public web form, with the limits that stop SMS fraud.

A code is 6 digits, valid 10 minutes, at most 5 tries; a new code for the same number may be
asked for after 60 s, at most 3 times per verification; a number gets at most 5 codes an hour
and a client IP at most 20; only numbers from the municipality's allowed countries get one.
Above those, the town as a whole sends at most its hourly and daily ceiling (preferences
`verification_codes_per_hour` and `_per_day`): fraud that spreads over many numbers and
clients stops there, and the administrators are mailed once per window that it happens.

A code proves a number for a purpose named in its request: subscribing (this module's own), or
one that a higher layer registers with `register_purpose` (booking a consultation), which says
what the SMS reads and what is done once the number is proven. Subscribers cannot import those
layers, so they come to it.

Codes are stored as HMAC-SHA256 under the server key (RATHAUS_SECRET_KEY) with a per-row salt,
not with scrypt or PBKDF2: a 6-digit code has only a million values, so a slow hash would not
stop anyone holding a database dump (and codes are dead after 10 minutes anyway), while it
would hand every anonymous caller of a public endpoint a cheap way to burn CPU. Under a key
that is not in the database a dump reveals nothing, and the salt keeps equal codes unequal.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from channels.base import OutboundMessage
from hub.audit.models import AuditEvent
from hub.contacts.merge import merge
from hub.contacts.models import ContactIdentity
from hub.contacts.service import find_contact, resolve_contact
from hub.db import session_scope, utcnow
from hub.delivery.engine import RecipientOptedOut, send_while_waiting
from hub.delivery.staff_mail import mail_staff
from hub.errors import ChannelUnavailable, DomainError, InvalidInput, TooManyRequests
from hub.i18n import N_
from hub.settings import get_settings
from hub.subscribers import catalogue, consent, signed_links
from hub.subscribers.models import PhoneVerification
from hub.subscribers.opt_in import add_opt_in, opt_in_channels
from hub.templating import render_message
from hub.tenancy.models import ChannelAccount, Municipality, StaffUser
from hub.tenancy.preferences import preference
from hub.tenancy.service import channel_reaching

log = logging.getLogger(__name__)

CODE_DIGITS = 6
VALID_FOR = timedelta(minutes=10)
MAX_TRIES = 5
RESEND_AFTER = timedelta(seconds=60)
MAX_SENDS = 3
PER_NUMBER_PER_HOUR = 5
PER_IP_PER_HOUR = 20
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

# What the citizen reads on the form (or in the messenger) when something is refused: German
# msgids, English in hub/locale/en/LC_MESSAGES/subscribers.po, in the language the citizen chose.
_INVALID_NUMBER = N_("Das ist keine gültige Telefonnummer. Bitte prüfen Sie die Eingabe.")
_COUNTRY = N_("Codes können wir nur an Nummern aus diesen Ländern schicken: {countries}.")
_WAIT = N_("Bitte warten Sie noch {seconds} Sekunden, bevor Sie einen neuen Code anfordern.")
_TOO_MANY_SENDS = N_(
    "Für diese Anmeldung wurden schon {count} Codes gesendet. Bitte versuchen Sie es in {minutes} Minuten noch einmal."
)
_NUMBER_LIMIT = N_(
    "An diese Nummer wurden in der letzten Stunde zu viele Codes gesendet. Bitte versuchen Sie es später noch einmal."
)
_IP_LIMIT = N_(
    "Von Ihrem Anschluss wurden in der letzten Stunde zu viele Codes angefordert. "
    "Bitte versuchen Sie es später noch einmal."
)
_TOWN_LIMIT = N_(
    "Im Moment können wir keine Codes senden. Bitte versuchen Sie es später noch einmal "
    "oder melden Sie sich im Rathaus."
)
_NO_CHANNEL = N_("Die Anmeldung per SMS ist bei dieser Gemeinde derzeit nicht möglich.")
_NO_CODE = N_("Für diese Nummer gibt es keinen gültigen Code (mehr). Bitte fordern Sie einen neuen an.")
_EXPIRED = N_("Der Code ist abgelaufen. Bitte fordern Sie einen neuen an.")
_TOO_MANY_TRIES = N_("Der Code wurde zu oft falsch eingegeben. Bitte fordern Sie einen neuen an.")
_WRONG_CODE = N_("Der Code stimmt nicht. Sie haben noch {left} Versuch(e).")
_BAD_CODE_FORMAT = N_("Der Code besteht aus 6 Ziffern.")
_NO_OPT_IN = N_("Nachrichten über {kind!r} bietet diese Gemeinde nicht an.")


def hash_code(code: str, salt: str | None = None) -> str:
    """ "salt$hex" of HMAC-SHA256(server key, salt:code)."""
    salt = salt or secrets.token_hex(8)
    digest = hmac.new(signed_links.secret_key(), f"{salt}:{code}".encode(), hashlib.sha256).hexdigest()
    return f"{salt}${digest}"


def code_matches(code: str, stored: str) -> bool:
    salt, _, _ = stored.partition("$")
    return hmac.compare_digest(hash_code(code, salt).encode("ascii"), stored.encode("ascii"))


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def normalise_phone(municipality: Municipality, raw: str, language: str) -> str:
    """The number in E.164, if it is valid and from an allowed country; otherwise a 422 that says why."""
    try:
        number = phonenumbers.parse(raw.strip(), municipality.default_region)
    except phonenumbers.NumberParseException:
        raise InvalidInput(_INVALID_NUMBER).in_language(language) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(_INVALID_NUMBER).in_language(language)
    allowed = [country.upper() for country in preference(municipality, "allowed_phone_countries")]
    if phonenumbers.region_code_for_number(number) not in allowed:
        raise InvalidInput(_COUNTRY, countries=", ".join(allowed)).in_language(language)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True)
class Started:
    verification_id: int
    phone: str
    expires_at: datetime
    resend_after_seconds: int


@dataclass(frozen=True)
class Verified:
    contact_id: int
    change: consent.Change | None  # None when a number was added to a messenger contact, or not subscribed
    result: Any = None  # what a registered purpose made of the proof (a booking)


# What a purpose does once the number is proven: (session, town, the verification with its
# request, evidence of the proof: ip, user_agent, verification_id). It does not commit.
Apply = Callable[[Session, Municipality, PhoneVerification, dict[str, Any]], Verified]


@dataclass(frozen=True)
class Purpose:
    """What a code is asked for: the message template of the SMS, and what proving the number does."""

    name: str
    code_template: str
    apply: Apply


SUBSCRIBE = "subscribe"
_PURPOSES: dict[str, Purpose] = {}


def register_purpose(purpose: Purpose) -> None:
    """Lets a higher layer ask for codes for its own purpose; a name is registered once."""
    known = _PURPOSES.get(purpose.name)
    if known is not None and known != purpose:
        raise ValueError(f"verification purpose {purpose.name!r} is already registered")
    _PURPOSES[purpose.name] = purpose


def start_verification(
    session: Session,
    *,
    municipality: Municipality,
    phone: str,
    topics: Sequence[str] = (),
    district: str | None = None,
    language: str,
    client_ip: str | None,
    now: datetime | None = None,
    link_contact_id: int | None = None,
    purpose: str = SUBSCRIBE,
    details: Mapping[str, Any] | None = None,
    opt_in: Sequence[str] = (),
) -> Started:
    """Checks the limits, records the code and sends it by SMS while the citizen waits on the form.

    `topics` and `district` are what subscribing asks for; another purpose brings its request
    in `details` (JSON), handed back to its `apply` once the code is right. `opt_in`: the channel
    kinds needing an opt-in (opt_in_channels) the citizen ticked, recorded once the number is proven.
    Commits itself: the limits must be on record before the SMS leaves (two requests at once
    must not both pass), and a send that fails is taken back so the citizen may try again.
    """
    assert municipality.id is not None
    now = now or utcnow()
    language = language if language in consent.LANGUAGES else "de"
    chosen = _PURPOSES[purpose]
    e164 = normalise_phone(municipality, phone, language)
    if purpose == SUBSCRIBE:
        request = _request(session, municipality.id, list(topics), district, language, list(opt_in))
    else:
        request = {**(details or {}), "purpose": purpose, "language": language}
    if link_contact_id is not None:
        # Asked from a messenger chat: on success the number joins that contact.
        request["link_contact_id"] = link_contact_id
    account = _sms_account(session, municipality.id, language)
    # Take the municipality's write lock first (a row lock on PostgreSQL, the database lock on
    # SQLite), so that counting and recording are one step for concurrent requests.
    session.execute(update(Municipality).where(col(Municipality.id) == municipality.id).values(id=municipality.id))
    since = now - HOUR
    sent_to_number = session.exec(
        select(func.coalesce(func.sum(PhoneVerification.sends), 0)).where(
            PhoneVerification.municipality_id == municipality.id,
            PhoneVerification.phone == e164,
            col(PhoneVerification.last_sent_at) >= since,
        )
    ).one()
    current = session.exec(
        select(PhoneVerification)
        .where(
            PhoneVerification.municipality_id == municipality.id,
            PhoneVerification.phone == e164,
            col(PhoneVerification.verified_at).is_(None),
            col(PhoneVerification.expires_at) > now,
            col(PhoneVerification.attempts) < MAX_TRIES,
        )
        .order_by(col(PhoneVerification.created_at).desc())
    ).first()
    if current is not None:
        wait = (current.last_sent_at + RESEND_AFTER - now).total_seconds()
        if wait > 0:
            raise TooManyRequests(_WAIT, seconds=int(wait) + 1).in_language(language)
        if current.sends >= MAX_SENDS:
            minutes = int((current.expires_at - now).total_seconds() // 60) + 1
            raise TooManyRequests(_TOO_MANY_SENDS, count=current.sends, minutes=minutes).in_language(language)
    if sent_to_number >= PER_NUMBER_PER_HOUR:
        raise TooManyRequests(_NUMBER_LIMIT).in_language(language)
    if client_ip:
        sent_from_ip = session.exec(
            select(func.coalesce(func.sum(PhoneVerification.sends), 0)).where(
                PhoneVerification.client_ip == client_ip, col(PhoneVerification.last_sent_at) >= since
            )
        ).one()
        if sent_from_ip >= PER_IP_PER_HOUR:
            raise TooManyRequests(_IP_LIMIT).in_language(language)
    _check_town_ceilings(session, municipality, now, language)

    code = new_code()
    if current is None:
        verification = PhoneVerification(
            municipality_id=municipality.id,
            phone=e164,
            code_hash=hash_code(code),
            client_ip=(client_ip or "")[:64] or None,
            request=request,
            created_at=now,
            last_sent_at=now,
            expires_at=now + VALID_FOR,
        )
        session.add(verification)
        undo: dict[str, Any] | None = None
    else:
        verification = current
        undo = {
            "code_hash": current.code_hash,
            "sends": current.sends,
            "last_sent_at": current.last_sent_at,
            "request": current.request,
            "expires_at": current.expires_at,
        }
        # A new code replaces the old one; tries already used still count.
        verification.code_hash = hash_code(code)
        verification.sends += 1
        verification.last_sent_at = now
        verification.request = request
        verification.expires_at = now + VALID_FOR
    session.commit()
    try:
        _send_code(municipality, account, e164, code, language, chosen.code_template)
    except DomainError:
        if undo is None:
            session.delete(verification)
        else:
            for key, value in undo.items():
                setattr(verification, key, value)
        session.commit()
        raise
    assert verification.id is not None
    return Started(
        verification_id=verification.id,
        phone=e164,
        expires_at=verification.expires_at,
        resend_after_seconds=int(RESEND_AFTER.total_seconds()),
    )


def _codes_sent(session: Session, municipality_id: int, since: datetime) -> int:
    return int(
        session.exec(
            select(func.coalesce(func.sum(PhoneVerification.sends), 0)).where(
                PhoneVerification.municipality_id == municipality_id, col(PhoneVerification.last_sent_at) >= since
            )
        ).one()
    )


def _check_town_ceilings(session: Session, municipality: Municipality, now: datetime, language: str) -> None:
    """Refuses a code once the town has sent its hourly or daily ceiling, and tells the administrators."""
    assert municipality.id is not None
    for window, key in ((HOUR, "verification_codes_per_hour"), (DAY, "verification_codes_per_day")):
        ceiling = int(preference(municipality, key))
        if _codes_sent(session, municipality.id, now - window) < ceiling:
            continue
        _alert_administrators(session, municipality, now, window=window, ceiling=ceiling)
        raise TooManyRequests(_TOWN_LIMIT).in_language(language)


def _alert_administrators(
    session: Session, municipality: Municipality, now: datetime, *, window: timedelta, ceiling: int
) -> None:
    """Once per window: an audit entry, a log line, and a mail to every active administrator."""
    assert municipality.id is not None
    per = "day" if window == DAY else "hour"
    action = f"verification.{per}_ceiling_reached"
    already = session.exec(
        select(AuditEvent.id).where(
            AuditEvent.municipality_id == municipality.id,
            AuditEvent.action == action,
            col(AuditEvent.created_at) >= now - window,
        )
    ).first()
    if already is not None:
        return
    session.add(
        AuditEvent(
            municipality_id=municipality.id, action=action, object_type="municipality",
            object_id=municipality.id, details={"per": per, "ceiling": ceiling}, created_at=now,
        )
    )  # fmt: skip
    session.commit()
    log.warning("municipality %s reached its ceiling of %s verification codes per %s", municipality.id, ceiling, per)
    administrators = session.exec(
        select(StaffUser).where(
            StaffUser.municipality_id == municipality.id, StaffUser.role == "admin", col(StaffUser.active).is_(True)
        )
    ).all()
    for administrator in administrators:
        mail_staff(
            session, settings=get_settings(), user=administrator, template="verification_ceiling",
            municipality=municipality.name, ceiling=ceiling, per_day=per == "day",
        )  # fmt: skip


def _request(
    session: Session, municipality_id: int, topics: list[str], district: str | None, language: str, opt_in: list[str]
) -> dict[str, Any]:
    """What the citizen asked for, checked now so a typo shows before the SMS is paid for."""
    found = catalogue.topics_by_keys(session, municipality_id=municipality_id, words=topics)
    chosen = catalogue.district_by_key(session, municipality_id=municipality_id, word=district) if district else None
    offered = {channel.kind for channel in opt_in_channels(session, municipality_id=municipality_id, identity="phone")}
    unknown = sorted(set(opt_in) - offered)
    if unknown:
        raise InvalidInput(_NO_OPT_IN, kind=unknown[0]).in_language(language)
    return {
        "topics": [topic.key for topic in found],
        "district": chosen.key if chosen else None,
        "language": language,
        "opt_in": sorted(set(opt_in)),
    }


def _sms_account(session: Session, municipality_id: int, language: str) -> ChannelAccount:
    account = channel_reaching(session, municipality_id=municipality_id, identity="phone")
    if account is None:
        raise ChannelUnavailable(_NO_CHANNEL).in_language(language)
    return account


def _send_code(
    municipality: Municipality, account: ChannelAccount, phone: str, code: str, language: str, template: str
) -> None:
    text = render_message(
        template,
        language,
        overrides=preference(municipality, "texts"),
        code=code,
        municipality=municipality.name,
        minutes=int(VALID_FOR.total_seconds() // 60),
    )
    message = OutboundMessage(to=phone, text=text, automated=True)
    try:
        send_while_waiting(get_settings(), account, message, language=language)
    except RecipientOptedOut as refusal:
        _stop_opted_out_number(municipality, account, phone, refusal)
        raise


def _stop_opted_out_number(
    municipality: Municipality, account: ChannelAccount, phone: str, refusal: RecipientOptedOut
) -> None:
    """The provider says the number stopped our messages: a contact it belongs to is stopped everywhere.

    In a transaction of its own, since the form's answers with the refusal and takes its code back.
    """
    assert municipality.id is not None
    with session_scope() as session:
        contact = find_contact(session, municipality_id=municipality.id, kind="phone", address=phone)
        if contact is None or contact.id is None:
            return
        consent.stop(
            session, municipality_id=municipality.id, contact_id=contact.id, channel_kind=None,
            source="provider_error", evidence={"channel_account_id": account.id, "error": str(refusal.__cause__)},
        )  # fmt: skip


def verify_code(
    session: Session,
    *,
    municipality: Municipality,
    phone: str,
    code: str,
    client_ip: str | None,
    user_agent: str | None,
    language: str = "de",
    now: datetime | None = None,
    purpose: str = SUBSCRIBE,
) -> Verified:
    """Checks the code and, if right, does what it was asked for: subscribes the number as asked
    (source "form"), or what the registered purpose does.

    Each try is counted and committed before the code is compared, with one UPDATE that
    refuses a sixth, so parallel guesses cannot get more than five.
    """
    assert municipality.id is not None
    now = now or utcnow()
    e164 = normalise_phone(municipality, phone, language)
    code = code.strip()
    if not (code.isdigit() and len(code) == CODE_DIGITS):
        raise InvalidInput(_BAD_CODE_FORMAT).in_language(language)
    verification = session.exec(
        select(PhoneVerification)
        .where(
            PhoneVerification.municipality_id == municipality.id,
            PhoneVerification.phone == e164,
            col(PhoneVerification.verified_at).is_(None),
        )
        .order_by(col(PhoneVerification.created_at).desc())
    ).first()
    # A code asked for one purpose does nothing for another (a booking's code subscribes no one).
    if verification is None or verification.request.get("purpose", SUBSCRIBE) != purpose:
        raise InvalidInput(_NO_CODE).in_language(language)
    language = verification.request.get("language", language)
    if verification.expires_at <= now:
        raise InvalidInput(_EXPIRED).in_language(language)
    counted = session.execute(
        update(PhoneVerification)
        .where(
            col(PhoneVerification.id) == verification.id,
            col(PhoneVerification.attempts) < MAX_TRIES,
            col(PhoneVerification.verified_at).is_(None),
        )
        .values(attempts=PhoneVerification.attempts + 1)
    )
    session.commit()
    if counted.rowcount == 0:  # type: ignore[attr-defined]
        raise TooManyRequests(_TOO_MANY_TRIES).in_language(language)
    session.refresh(verification)
    if not code_matches(code, verification.code_hash):
        left = MAX_TRIES - verification.attempts
        if left <= 0:
            raise TooManyRequests(_TOO_MANY_TRIES).in_language(language)
        raise InvalidInput(_WRONG_CODE, left=left).in_language(language)
    used = session.execute(
        update(PhoneVerification)
        .where(col(PhoneVerification.id) == verification.id, col(PhoneVerification.verified_at).is_(None))
        .values(verified_at=now)
    )
    if used.rowcount == 0:  # type: ignore[attr-defined]
        raise InvalidInput(_NO_CODE).in_language(language)
    evidence = {"ip": client_ip, "user_agent": (user_agent or "")[:300], "verification_id": verification.id}
    return _PURPOSES[purpose].apply(session, municipality, verification, evidence)


def _subscribe(
    session: Session, municipality: Municipality, verification: PhoneVerification, evidence: dict[str, Any]
) -> Verified:
    assert municipality.id is not None
    request = verification.request
    if request.get("link_contact_id"):
        return _link_phone(session, municipality.id, int(request["link_contact_id"]), verification.phone)
    contact = resolve_contact(
        session,
        municipality_id=municipality.id,
        kind="phone",
        address=verification.phone,
        language=request.get("language"),
    )
    assert contact.id is not None
    topics = catalogue.topics_by_keys(session, municipality_id=municipality.id, words=request.get("topics", []))
    district = request.get("district")
    districts = [catalogue.district_by_key(session, municipality_id=municipality.id, word=district)] if district else []
    # The consent was given on the channel that carried the code.
    sms = channel_reaching(session, municipality_id=municipality.id, identity="phone")
    change = consent.subscribe(
        session,
        municipality_id=municipality.id,
        contact_id=contact.id,
        channel_kind=sms.kind if sms else None,
        source="form",
        evidence=evidence,
        topic_ids=[topic.id for topic in topics if topic.id is not None],
        district_ids=[d.id for d in districts if d.id is not None],
        language=request.get("language"),
    )
    for kind in request.get("opt_in", []):
        # The ticked box, proven by the code like the subscription itself.
        add_opt_in(
            session, municipality_id=municipality.id, contact_id=contact.id, kind=kind, source="form",
            evidence={**evidence, "how": "web_form_checkbox"},
        )  # fmt: skip
    return Verified(contact_id=contact.id, change=change)


def _link_phone(session: Session, municipality_id: int, contact_id: int, phone: str) -> Verified:
    """Adds the verified number to the messenger contact; a contact that already had it is merged in.

    The subscription is left as it is: proving a number is not consent to more, and a STOP
    on either side stays in force (see hub.subscribers.gdpr.merge).
    """
    owner = session.exec(
        select(ContactIdentity).where(
            ContactIdentity.municipality_id == municipality_id,
            ContactIdentity.kind == "phone",
            ContactIdentity.address == phone,
        )
    ).first()
    if owner is None:
        session.add(
            ContactIdentity(municipality_id=municipality_id, contact_id=contact_id, kind="phone", address=phone)
        )
        session.flush()
    elif owner.contact_id != contact_id:
        merge(session, municipality_id=municipality_id, target_id=contact_id, source_id=owner.contact_id)
    return Verified(contact_id=contact_id, change=None)


register_purpose(Purpose(name=SUBSCRIBE, code_template="verification_code.txt.j2", apply=_subscribe))


def pending_link(session: Session, *, municipality_id: int, contact_id: int) -> PhoneVerification | None:
    """The newest unconfirmed code this messenger contact asked for, if any."""
    recent = session.exec(
        select(PhoneVerification)
        .where(
            PhoneVerification.municipality_id == municipality_id,
            col(PhoneVerification.verified_at).is_(None),
            col(PhoneVerification.expires_at) > utcnow(),
        )
        .order_by(col(PhoneVerification.created_at).desc())
        .limit(50)
    )
    return next((v for v in recent if v.request.get("link_contact_id") == contact_id), None)
