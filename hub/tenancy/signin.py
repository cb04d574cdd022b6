"""Staff sign-in: argon2 passwords, throttling of repeated failures per client, sessions, TOTP and password reset."""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import timedelta

import pyotp
from pwdlib import PasswordHash
from sqlalchemy import func
from sqlmodel import Session, col, delete, select

from hub.db import utcnow
from hub.errors import InvalidInput
from hub.i18n import N_
from hub.ratelimit import RateLimiter
from hub.settings import Settings
from hub.tenancy.models import Municipality, PasswordReset, StaffSession, StaffUser

MIN_PASSWORD_LENGTH = 10
RESET_VALID = timedelta(hours=1)
# Only refresh a session's last_seen_at this often: a page view should not always write.
_TOUCH_EVERY = timedelta(minutes=1)

_hasher = PasswordHash.recommended()
# Verified against when no such user exists, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class SignInFailed(Exception):
    """Wrong email or password, said the same way for both."""


class AccountLocked(Exception):
    """Too many wrong second-factor codes: only someone who knew the password can cause this."""

    def __init__(self, until_minutes: int) -> None:
        super().__init__(until_minutes)
        self.minutes = until_minutes


class SignInThrottled(Exception):
    """Too many failures from this client (for this address, or for any): it must wait, no account is locked."""

    def __init__(self, minutes: int) -> None:
        super().__init__(minutes)
        self.minutes = minutes


@dataclass(frozen=True)
class SignedIn:
    user: StaffUser
    municipality: Municipality
    session: StaffSession


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def set_password(session: Session, *, user: StaffUser, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            N_("Das Passwort muss mindestens {min_password_length} Zeichen lang sein."),
            min_password_length=MIN_PASSWORD_LENGTH,
        )
    user.password_hash = _hasher.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    session.add(user)


def password_matches(user: StaffUser, password: str) -> bool:
    return user.password_hash is not None and _hasher.verify(password, user.password_hash)


def lock_minutes_left(user: StaffUser) -> int:
    if user.locked_until is None or user.locked_until <= utcnow():
        return 0
    return max(1, int((user.locked_until - utcnow()).total_seconds() // 60) + 1)


def _record_failure(session: Session, settings: Settings, user: StaffUser) -> None:
    user.failed_logins += 1
    if user.failed_logins >= settings.sign_in_max_failures:
        user.locked_until = utcnow() + timedelta(minutes=settings.sign_in_lock_minutes)
        user.failed_logins = 0
    session.add(user)
    session.commit()


def _failure_windows(settings: Settings, client: str, address: str) -> tuple[tuple[str, int], ...]:
    """The failure counters a sign-in attempt is held to, with their limits.

    Keyed by the client and the address as typed, never by an account: an address without an
    account is counted exactly like one with, and failures from elsewhere do not touch a
    colleague's own sign-in.
    """
    return (
        (f"signin:client:{client}", settings.sign_in_client_max_failures),
        (f"signin:pair:{client}:{address}", settings.sign_in_max_failures),
    )


def authenticate(
    session: Session, *, settings: Settings, limiter: RateLimiter, client: str, email: str, password: str
) -> StaffUser:
    """The active user with this email and password.

    A client over one of its failure limits waits (SignInThrottled) before any password hash is
    computed, so guessing from one client costs it time rather than costing the server argon2.
    """
    address = email.strip().lower()
    window = settings.sign_in_lock_minutes * 60
    counters = _failure_windows(settings, client, address)
    waits = [left for key, limit in counters for used, left in [limiter.count(key, window)] if used >= limit]
    if waits:
        raise SignInThrottled(max(1, math.ceil(max(waits) / 60)))
    candidates = session.exec(
        select(StaffUser).where(func.lower(StaffUser.email) == address, col(StaffUser.active).is_(True))
    ).all()
    if not candidates:
        _hasher.verify(password, _DUMMY_HASH)
    for user in candidates:
        if user.password_hash and _hasher.verify(password, user.password_hash):
            # Locked only by wrong second-factor codes, which needed this password.
            minutes = lock_minutes_left(user)
            if minutes:
                raise AccountLocked(minutes)
            return user
    for key, _limit in counters:
        limiter.record(key, window)
    raise SignInFailed


def start_session(session: Session, *, user: StaffUser, second_factor_passed: bool = False) -> str:
    """A new session with a fresh token (never one the browser brought: no session fixation).

    With a second factor set up and not yet passed, the session is good only for entering the code.
    """
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            id=_digest(token),
            municipality_id=user.municipality_id,
            user_id=user.id,
            second_factor_pending=user.totp_secret is not None and not second_factor_passed,
        )
    )
    session.commit()
    return token


def load_session(session: Session, *, settings: Settings, token: str | None) -> SignedIn | None:
    """The signed-in staff member behind a cookie's token, or None when it is unknown or has run out."""
    if not token:
        return None
    found = session.get(StaffSession, _digest(token))
    if found is None:
        return None
    now = utcnow()
    if now - found.last_seen_at > timedelta(
        minutes=settings.session_idle_minutes
    ) or now - found.created_at > timedelta(hours=settings.session_max_hours):
        session.delete(found)
        session.commit()
        return None
    user = session.get(StaffUser, found.user_id)
    municipality = session.get(Municipality, found.municipality_id)
    if user is None or municipality is None or not user.active:
        return None
    if now - found.last_seen_at > _TOUCH_EVERY:
        found.last_seen_at = now
        session.add(found)
        session.commit()
    return SignedIn(user=user, municipality=municipality, session=found)


def end_session(session: Session, *, token: str | None) -> None:
    if token:
        session.exec(delete(StaffSession).where(col(StaffSession.id) == _digest(token)))
        session.commit()


def end_all_sessions(session: Session, *, user_id: int) -> None:
    session.exec(delete(StaffSession).where(col(StaffSession.user_id) == user_id))


def check_second_factor(session: Session, *, settings: Settings, signed_in: SignedIn, code: str) -> bool:
    """Completes a pending sign-in with the TOTP code; wrong codes count towards the account's lock-out."""
    user = signed_in.user
    if user.totp_secret is None:
        return True
    if lock_minutes_left(user):
        raise AccountLocked(lock_minutes_left(user))
    if pyotp.TOTP(user.totp_secret).verify(code.strip().replace(" ", ""), valid_window=1):
        user.failed_logins = 0
        session.add(user)
        return True
    _record_failure(session, settings, user)
    if lock_minutes_left(user):
        raise AccountLocked(lock_minutes_left(user))
    return False


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(*, secret: str, user: StaffUser, municipality: Municipality) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=f"Rathaus Hub {municipality.name}")


def is_usable_totp_secret(secret: str) -> bool:
    """Base32 of at least 112 bits, as pyotp demands; anything else came from a tampered form."""
    try:
        pyotp.TOTP(secret).now()
    except (ValueError, TypeError):
        return False
    return True


def enable_second_factor(session: Session, *, user: StaffUser, secret: str, code: str) -> None:
    if not is_usable_totp_secret(secret):
        raise InvalidInput(N_("Der Schlüssel ist ungültig. Bitte richten Sie die Anmeldung neu ein."))
    if not pyotp.TOTP(secret).verify(code.strip().replace(" ", ""), valid_window=1):
        raise InvalidInput(
            N_("Der Code passt nicht. Bitte prüfen Sie die Uhrzeit Ihres Telefons und versuchen Sie es erneut.")
        )
    user.totp_secret = secret
    session.add(user)


def disable_second_factor(session: Session, *, user: StaffUser) -> None:
    user.totp_secret = None
    session.add(user)


def create_password_reset(session: Session, *, user: StaffUser, valid: timedelta = RESET_VALID) -> str:
    """A one-time link token; an invitation to a new account passes a longer `valid`."""
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    session.add(PasswordReset(user_id=user.id, token_sha256=_digest(token), expires_at=utcnow() + valid))
    return token


def user_for_reset(session: Session, *, token: str) -> tuple[PasswordReset, StaffUser] | None:
    reset = session.exec(select(PasswordReset).where(PasswordReset.token_sha256 == _digest(token))).first()
    if reset is None or reset.used_at is not None or reset.expires_at < utcnow():
        return None
    user = session.get(StaffUser, reset.user_id)
    return (reset, user) if user is not None and user.active else None


def reset_password(session: Session, *, token: str, password: str) -> StaffUser:
    """Sets the new password once per link and signs the person out everywhere."""
    found = user_for_reset(session, token=token)
    if found is None:
        raise InvalidInput(N_("Der Link ist abgelaufen oder wurde schon benutzt. Bitte fordern Sie einen neuen an."))
    reset, user = found
    set_password(session, user=user, password=password)
    reset.used_at = utcnow()
    session.add(reset)
    assert user.id is not None
    end_all_sessions(session, user_id=user.id)
    return user
