"""Mail to staff (a reset link, an invitation, a notice to the admins), sent from the town's email channel."""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import Session, col, func, select

from channels.base import OutboundMessage
from hub.delivery.classes import STAFF_MAIL
from hub.delivery.engine import send_while_waiting
from hub.errors import DomainError, TooManyRequests
from hub.i18n import N_
from hub.ratelimit import shared_limiter, try_acquire
from hub.settings import Settings
from hub.templating import greeting, render_message
from hub.tenancy.administration import INVITATION_VALID, invitation_link
from hub.tenancy.models import Municipality, StaffUser
from hub.tenancy.service import channel_reaching
from hub.tenancy.signin import RESET_VALID, create_password_reset

log = logging.getLogger(__name__)

RESETS_PER_ADDRESS_PER_HOUR = 3
RESETS_PER_CLIENT_PER_HOUR = 20


def mail_staff(session: Session, *, settings: Settings, user: StaffUser, template: str, **context: Any) -> bool:
    """Mails `<template>_subject.txt.j2` and `<template>.txt.j2` to `user`, who gets `salutation` and `name` too.

    False when the town has no email channel or the send failed; it is logged, and the caller
    decides what the person is told instead.
    """
    account = channel_reaching(session, municipality_id=user.municipality_id, identity="email")
    if account is None:
        log.warning("mail %s to staff member %s: the municipality has no email channel", template, user.id)
        return False
    greeted = {**greeting(user.language, user.name), **context}
    message = OutboundMessage(
        to=user.email,
        subject=render_message(f"{template}_subject.txt.j2", user.language, **greeted),
        text=render_message(f"{template}.txt.j2", user.language, **greeted),
        automated=True,
    )
    try:
        send_while_waiting(settings, account, message, language=user.language, delivery_class=STAFF_MAIL)
    except DomainError:
        log.warning("mail %s to staff member %s could not be sent", template, user.id, exc_info=True)
        return False
    return True


def mail_password_reset(session: Session, *, settings: Settings, client: str | None, email: str) -> None:
    """Mails a one-time reset link to each active account with this address, within the limits.

    Says nothing of whether there was such an account: the answer must not tell addresses apart.
    """
    address = email.strip().lower()
    limiter = shared_limiter(settings)
    if not (
        try_acquire(limiter, f"reset:ip:{client or 'unknown'}", RESETS_PER_CLIENT_PER_HOUR, 3600)
        and try_acquire(limiter, f"reset:mail:{address}", RESETS_PER_ADDRESS_PER_HOUR, 3600)
    ):
        raise TooManyRequests(N_("Zu viele Anfragen. Bitte versuchen Sie es in einer Stunde noch einmal."))
    users = session.exec(
        select(StaffUser).where(func.lower(StaffUser.email) == address, col(StaffUser.active).is_(True))
    ).all()
    for user in users:
        municipality = session.get(Municipality, user.municipality_id)
        if municipality is None:
            continue
        token = create_password_reset(session, user=user)
        session.commit()
        mail_staff(
            session, settings=settings, user=user, template="password_reset", municipality=municipality.name,
            link=f"{settings.public_url.rstrip('/')}/app/password/reset/{token}",
            minutes=int(RESET_VALID.total_seconds() // 60),
        )  # fmt: skip


def mail_invitation(session: Session, *, settings: Settings, user: StaffUser, inviter: StaffUser, token: str) -> bool:
    """Mails the first-password link from the town's email channel; False when there is none or it failed."""
    municipality = session.get(Municipality, user.municipality_id)
    if municipality is None:
        return False
    return mail_staff(
        session, settings=settings, user=user, template="staff_invitation", inviter=inviter.name,
        municipality=municipality.name, email=user.email, link=invitation_link(settings, token),
        days=INVITATION_VALID.days,
    )  # fmt: skip
