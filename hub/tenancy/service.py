"""Creating and looking up municipalities, staff, teams, API tokens and channel accounts."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from channels.registry import adapter_class, kinds_reaching
from hub.db import utcnow
from hub.errors import Conflict, InvalidInput, NotFound, require_channel_kind, setting_problems
from hub.i18n import N_
from hub.settings import Settings
from hub.tenancy.models import ApiToken, ChannelAccount, Municipality, StaffUser, Team

ROLES = ("admin", "mayor", "staff", "viewer")
# How precisely a token's last use is recorded.
TOKEN_USE_RECORDED_EVERY = timedelta(minutes=1)
# A channel setting the hub fills in from the municipality when the account has none.
REGION_KEY = "default_region"


def create_municipality(session: Session, *, slug: str, name: str, default_region: str = "DE") -> Municipality:
    if session.exec(select(Municipality).where(Municipality.slug == slug)).first():
        raise Conflict(N_("Gemeinde {slug!r} gibt es schon."), slug=slug)
    municipality = Municipality(slug=slug, name=name, default_region=default_region)
    session.add(municipality)
    session.flush()
    return municipality


def get_municipality(session: Session, *, slug: str | None = None) -> Municipality:
    """The named municipality, or the only one when no slug is given."""
    query = select(Municipality)
    if slug:
        query = query.where(Municipality.slug == slug)
    found = session.exec(query.limit(2)).all()
    if not found:
        raise NotFound(
            N_("Gemeinde {slug!r} nicht gefunden.") if slug else N_("Es gibt noch keine Gemeinde."), slug=slug
        )
    if len(found) > 1:
        raise InvalidInput(N_("Mehrere Gemeinden vorhanden: bitte --municipality angeben."))
    return found[0]


def create_user(session: Session, *, municipality_id: int, email: str, name: str, role: str = "staff") -> StaffUser:
    if role not in ROLES:
        raise InvalidInput(N_("Unbekannte Rolle {role!r}; erlaubt: {allowed}."), role=role, allowed=", ".join(ROLES))
    user = StaffUser(municipality_id=municipality_id, email=email.lower(), name=name, role=role)
    session.add(user)
    session.flush()
    return user


def get_user_by_email(session: Session, *, municipality_id: int, email: str) -> StaffUser:
    user = session.exec(
        select(StaffUser).where(StaffUser.municipality_id == municipality_id, StaffUser.email == email.lower())
    ).first()
    if user is None:
        raise NotFound(N_("Kein Benutzer mit der E-Mail-Adresse {email}."), email=email)
    return user


def create_team(session: Session, *, municipality_id: int, name: str) -> Team:
    team = Team(municipality_id=municipality_id, name=name)
    session.add(team)
    session.flush()
    return team


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(session: Session, *, user: StaffUser, name: str) -> str:
    """Stores the token's digest and returns the token itself, which is shown once."""
    token = "rh_" + secrets.token_urlsafe(32)
    assert user.id is not None
    session.add(
        ApiToken(
            municipality_id=user.municipality_id,
            user_id=user.id,
            name=name,
            token_sha256=_token_digest(token),
        )
    )
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> StaffUser | None:
    """The active staff member behind a token that is not revoked; marks the token as used.

    The person's `active` flag is asked at every request, so deactivating an account ends its
    tokens at once even where a token was not revoked. `last_used_at` is written at most once a
    minute: a script polling the API should not turn every read into a write.
    """
    found = session.exec(
        select(ApiToken, StaffUser)
        .join(StaffUser, col(StaffUser.id) == col(ApiToken.user_id))
        .where(
            ApiToken.token_sha256 == _token_digest(token),
            col(ApiToken.revoked_at).is_(None),
            col(StaffUser.active).is_(True),
        )
    ).first()
    if found is None:
        return None
    api_token, user = found
    now = utcnow()
    if api_token.last_used_at is None or now - api_token.last_used_at > TOKEN_USE_RECORDED_EVERY:
        session.execute(update(ApiToken).where(col(ApiToken.id) == api_token.id).values(last_used_at=now))
        session.commit()
    return user


@dataclass(frozen=True)
class TokenListing:
    """An API token as the administration sees it: never the token itself."""

    token: ApiToken
    user: StaffUser


def list_api_tokens(
    session: Session, *, municipality_id: int, user_id: int | None = None, include_revoked: bool = True
) -> list[TokenListing]:
    """The town's tokens, newest first, with the person each acts as."""
    query = (
        select(ApiToken, StaffUser)
        .join(StaffUser, col(StaffUser.id) == col(ApiToken.user_id))
        .where(ApiToken.municipality_id == municipality_id)
        .order_by(col(ApiToken.revoked_at).is_not(None), col(ApiToken.created_at).desc(), col(ApiToken.id).desc())
    )
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    if not include_revoked:
        query = query.where(col(ApiToken.revoked_at).is_(None))
    return [TokenListing(token=token, user=user) for token, user in session.exec(query).all()]


def revoke_api_token(session: Session, *, municipality_id: int, token_id: int) -> TokenListing:
    """Revokes one of the town's tokens; revoking one twice keeps the first time."""
    row = session.exec(
        select(ApiToken, StaffUser)
        .join(StaffUser, col(StaffUser.id) == col(ApiToken.user_id))
        .where(ApiToken.id == token_id, ApiToken.municipality_id == municipality_id)
    ).first()
    if row is None:
        raise NotFound(N_("API-Token {token_id} gibt es in dieser Gemeinde nicht."), token_id=token_id)
    found = TokenListing(token=row[0], user=row[1])
    if found.token.revoked_at is None:
        found.token.revoked_at = utcnow()
        session.add(found.token)
        session.flush()
    return found


def revoke_all_api_tokens(session: Session, *, user_id: int) -> int:
    """Revokes every token of a person (when the account is deactivated); returns how many were live."""
    revoked = session.execute(
        update(ApiToken)
        .where(col(ApiToken.user_id) == user_id, col(ApiToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
    return int(revoked.rowcount)  # type: ignore[attr-defined]


def create_channel_account(
    session: Session,
    *,
    municipality_id: int,
    kind: str,
    name: str,
    config: Mapping[str, Any],
    secrets_: Mapping[str, Any] | None = None,
) -> ChannelAccount:
    """Adds a channel account; required secrets not given are generated.

    The hub's own (a webhook secret, a verify token) are meant to be made here. A provider's
    token made up stands in until the real one is set: the sandbox and the demo accept any.
    """
    require_channel_kind(kind)
    configuration = adapter_class(kind).configuration
    fields, address_key = configuration.fields(), configuration.address_key()
    if not config.get(address_key):
        raise InvalidInput(
            N_("Für einen {kind}-Kanal fehlt die Angabe {address_key!r}."), kind=kind, address_key=address_key
        )
    generated = {field.key: secrets.token_urlsafe(24) for field in fields if field.secret and field.required}
    config = dict(config)
    if any(field.key == REGION_KEY for field in fields):
        # Numbers written without a country code are read in the municipality's region unless
        # the account says otherwise.
        municipality = session.get(Municipality, municipality_id)
        if municipality is None:
            raise NotFound(N_("Gemeinde {municipality_id} nicht gefunden."), municipality_id=municipality_id)
        config.setdefault(REGION_KEY, municipality.default_region)
    secrets_ = {**generated, **(secrets_ or {})}
    problems = configuration.problems(config, secrets_)
    if problems:
        raise InvalidInput(N_("{kind}-Kanal: {problems}."), kind=kind, problems=setting_problems(problems))
    account = ChannelAccount(
        municipality_id=municipality_id,
        kind=kind,
        name=name,
        address=str(config[address_key]),
        config=config,
        secrets=secrets_,
    )
    session.add(account)
    session.flush()
    return account


def list_channel_accounts(session: Session, *, municipality_id: int | None = None) -> list[ChannelAccount]:
    query = select(ChannelAccount).order_by(ChannelAccount.id)  # type: ignore[arg-type]
    if municipality_id is not None:
        query = query.where(ChannelAccount.municipality_id == municipality_id)
    return list(session.exec(query).all())


def webhook_url(settings: Settings, account: ChannelAccount) -> str | None:
    """The URL to paste into the provider's console; None where nothing is called over HTTP (mail)."""
    if adapter_class(account.kind).webhook is None:
        return None
    return f"{settings.public_url.rstrip('/')}/webhooks/{account.kind}/{account.id}"


def status_callback_url(settings: Settings, account: ChannelAccount) -> str | None:
    """Where the provider reports delivery, for channels whose webhook takes such reports."""
    webhook = adapter_class(account.kind).webhook
    if webhook is None or not webhook.status_reports:
        return None
    return f"{settings.public_url.rstrip('/')}/webhooks/{account.kind}/{account.id}/status"


def channel_reaching(session: Session, *, municipality_id: int, identity: str) -> ChannelAccount | None:
    """The municipality's first active account that reaches `identity` addresses ("phone", "email").

    That is the one automatic messages to such an address leave from: codes by SMS, mail to staff.
    """
    return next(iter(channels_reaching(session, municipality_id=municipality_id, identity=identity)), None)


def channels_reaching(session: Session, *, municipality_id: int, identity: str) -> list[ChannelAccount]:
    """The municipality's active accounts that reach `identity` addresses, the first one first."""
    return list(
        session.exec(
            select(ChannelAccount)
            .where(
                ChannelAccount.municipality_id == municipality_id,
                col(ChannelAccount.kind).in_(kinds_reaching(identity)),
                col(ChannelAccount.active).is_(True),
            )
            .order_by(col(ChannelAccount.id))
        )
    )


def describe_channel_account(settings: Settings, account: ChannelAccount, *, show_secrets: bool) -> dict[str, Any]:
    described: dict[str, Any] = {
        "id": account.id,
        "kind": account.kind,
        "name": account.name,
        "address": account.address,
        "active": account.active,
        "webhook_url": webhook_url(settings, account),
        "config": account.config,
    }
    adapter = adapter_class(account.kind)
    if adapter.webhook is not None and adapter.webhook.status_reports:
        described["status_callback_url"] = status_callback_url(settings, account)
    if adapter.receives_mail:
        described["smtp_listener"] = f"{settings.smtp_host}:{settings.smtp_port}"
    described["secrets"] = dict(account.secrets) if show_secrets else {key: "********" for key in account.secrets}
    return described
