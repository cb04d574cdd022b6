"""Video rooms of consultations: the town's platform settings, a room per booking (or open session), and its links.

A room is made when it is first needed, not at booking: when the citizen opens their join
page, when a clerk calls them in, or by the sweep shortly before the session (`prepare_rooms`).
So a booking never waits for, or fails because of, the video server; while it is down the
page says the room is being prepared, and the next look tries again. The citizen's link
(participant) is only made for their own join page and their channel; the host's link
(moderator) only for a signed-in clerk, behind a staff route.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from channels.base import InvalidSetting, PermanentError, SettingField, TransientError
from channels.video import Room, VideoPlatform, build_video_platform, video_platform_class, video_platform_kinds
from hub.consultations.models import (
    Booking,
    ConsultationSeries,
    ConsultationSession,
    ConsultationSlot,
    VideoPlatformAccount,
    VideoRoom,
)
from hub.db import utcnow
from hub.errors import InvalidInput, Joined, Term, setting_problems
from hub.i18n import N_
from hub.tenancy.administration import MASK, audit

log = logging.getLogger(__name__)

# How long before a session the sweep makes its rooms, so the first citizen does not wait for it.
PREPARE_AHEAD = timedelta(hours=2)


# The town's platform


def platform_kinds() -> dict[str, str]:
    """Each platform's kind with its name for staff."""
    return {kind: video_platform_class(kind).label for kind in video_platform_kinds()}


def platform_fields(kind: str) -> tuple[SettingField, ...]:
    if kind not in video_platform_kinds():
        raise InvalidInput(N_("Unbekannte Videoplattform {kind!r}."), kind=kind)
    return tuple(field for field in video_platform_class(kind).configuration.fields() if field.on_form)


def platform_account(session: Session, *, municipality_id: int) -> VideoPlatformAccount | None:
    return session.exec(
        select(VideoPlatformAccount).where(VideoPlatformAccount.municipality_id == municipality_id)
    ).first()


def masked_secrets(account: VideoPlatformAccount | None) -> dict[str, str]:
    """What a page may show of the secrets: that they are set, never their value."""
    return {key: MASK for key, value in (account.secrets if account else {}).items() if value}


def configure_platform(
    session: Session, *, municipality_id: int, actor_id: int | None, kind: str, values: Mapping[str, str]
) -> VideoPlatformAccount:
    """Sets the town's platform; a secret left empty, or a setting not given, keeps the stored one (same kind)."""
    account = platform_account(session, municipality_id=municipality_id)
    same = account is not None and account.kind == kind
    kept = dict(account.secrets) if account and same else {}
    config: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    malformed = []
    platform_fields(kind)  # refuses an unknown kind
    for field in video_platform_class(kind).configuration.fields():
        if field.key not in values:
            # Not asked for (a setting only the command line sets): what was stored stays.
            if account and same and field.key in account.config:
                config[field.key] = account.config[field.key]
            continue
        value = (values.get(field.key) or "").strip()
        if field.secret:
            if value:
                secrets[field.key] = value
            continue
        if not value:
            continue
        try:
            config[field.key] = field.parse(value)
        except InvalidSetting as error:
            malformed.append(error.problem)
    if malformed:
        raise InvalidInput(setting_problems(malformed, " "))
    secrets = {**kept, **secrets}
    problems = video_platform_class(kind).configuration.problems(config, secrets)
    if problems:
        raise InvalidInput(setting_problems(problems, end="."))
    if account is None:
        account = VideoPlatformAccount(municipality_id=municipality_id, kind=kind)
    account.kind, account.config, account.secrets, account.updated_at = kind, config, secrets, utcnow()
    session.add(account)
    session.flush()
    audit(session, actor_id=actor_id, municipality_id=municipality_id, action="video_platform.configured",
          object_type="video_platform", object_id=account.id, kind=kind, secrets_set=sorted(secrets))  # fmt: skip
    return account


def remove_platform(session: Session, *, municipality_id: int, actor_id: int | None) -> None:
    """Video consultations are then held without links until a platform is set again; rooms made stay."""
    account = platform_account(session, municipality_id=municipality_id)
    if account is not None:
        session.delete(account)
        audit(session, actor_id=actor_id, municipality_id=municipality_id, action="video_platform.removed",
              object_type="video_platform", object_id=account.id)  # fmt: skip


def platform_of(session: Session, *, municipality_id: int) -> VideoPlatform | None:
    """The town's platform, or None where none is configured (phone and in-person consultations still run)."""
    account = platform_account(session, municipality_id=municipality_id)
    if account is None:
        return None
    try:
        return build_video_platform(account.kind, account.config, account.secrets)
    except PermanentError as error:
        log.warning("video platform of town %s unusable: %s", municipality_id, error)
        return None


# Rooms


def _room(row: VideoRoom) -> Room:
    return Room(row.kind, row.room_id, row.title, row.starts_at, row.ends_at, row.max_participants)


def _stored_room(session: Session, booking: Booking, shared: bool) -> VideoRoom | None:
    where = VideoRoom.session_id == booking.session_id if shared else VideoRoom.booking_id == booking.id
    return session.exec(select(VideoRoom).where(where)).first()


def ensure_room(session: Session, *, booking: Booking) -> VideoRoom | None:
    """The booking's room, made now if it has none; None for a consultation not by video, or while it cannot be made.

    An open session (a slot for more than one) shares one room; an appointment has its own.
    """
    slot = session.get(ConsultationSlot, booking.slot_id)
    held = session.get(ConsultationSession, booking.session_id)
    series = session.get(ConsultationSeries, held.series_id) if held else None
    if slot is None or held is None or series is None or series.location != "video":
        return None
    shared = slot.capacity > 1
    stored = _stored_room(session, booking, shared)
    if stored is not None:
        return stored
    platform = platform_of(session, municipality_id=booking.municipality_id)
    if platform is None:
        return None
    starts_at, ends_at = (held.starts_at, held.ends_at) if shared else (slot.starts_at, slot.ends_at)
    try:
        room = platform.create_room(
            title=series.title, starts_at=starts_at, ends_at=ends_at, max_participants=slot.capacity + 2
        )
    except (TransientError, PermanentError) as error:
        log.warning("no room yet for booking %s: %s", booking.id, error)
        return None
    row = VideoRoom(
        municipality_id=booking.municipality_id, booking_id=None if shared else booking.id,
        session_id=booking.session_id if shared else None, kind=room.kind, room_id=room.id, title=room.title,
        starts_at=room.starts_at, ends_at=room.ends_at, max_participants=room.max_participants,
    )  # fmt: skip
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # Someone made the session's room a moment ago: that one is the room.
        return _stored_room(session, booking, shared)
    return row


def _link(session: Session, booking: Booking, *, name: str, moderator: bool, user_id: str) -> str | None:
    room = ensure_room(session, booking=booking)
    platform = platform_of(session, municipality_id=booking.municipality_id) if room else None
    if room is None or platform is None or platform.kind != room.kind:
        return None
    try:
        return platform.join_url(_room(room), name=name, moderator=moderator, user_id=user_id)
    except (TransientError, PermanentError) as error:
        log.warning("no link for booking %s: %s", booking.id, error)
        return None


def citizen_link(session: Session, *, booking: Booking) -> str | None:
    """The citizen's way into the room (participant rights); None while there is none."""
    return _link(session, booking, name=booking.name, moderator=False, user_id=f"buchung-{booking.id}")


def host_link(session: Session, *, booking: Booking, staff_name: str, staff_id: int) -> str | None:
    """A clerk's way into the citizen's room, as host: for staff pages only, never for the citizen."""
    return _link(session, booking, name=staff_name, moderator=True, user_id=f"staff-{staff_id}")


def prepare_rooms(session: Session, *, now: datetime | None = None) -> int:
    """Makes the missing rooms of live video bookings starting within PREPARE_AHEAD; returns how many exist now.

    Run by beat beside the reminders; what the video server refused now is tried on the next run.
    """
    now = now or utcnow()
    bookings = session.exec(
        select(Booking)
        .join(ConsultationSlot, col(ConsultationSlot.id) == Booking.slot_id)
        .join(ConsultationSession, col(ConsultationSession.id) == Booking.session_id)
        .join(ConsultationSeries, col(ConsultationSeries.id) == ConsultationSession.series_id)
        .where(
            Booking.status == "booked",
            ConsultationSession.status == "scheduled",
            ConsultationSeries.location == "video",
            col(ConsultationSlot.ends_at) > now,
            col(ConsultationSlot.starts_at) <= now + PREPARE_AHEAD,
        )
    ).all()
    made = sum(1 for booking in bookings if ensure_room(session, booking=booking) is not None)
    session.commit()
    return made


def settings_summary(account: VideoPlatformAccount) -> str:
    """One line for the command line: the kind and the settings, the secrets only as set."""
    shown = [f"{key}={value}" for key, value in sorted(account.config.items())]
    shown += [f"{key}={MASK}" for key in sorted(account.secrets)]
    return f"{account.kind}\t" + " ".join(shown)


def parse_pairs(kind: str, pairs: tuple[str, ...]) -> dict[str, str]:
    """KEY=VALUE pairs of the command line as form values; an unknown key is refused by name."""
    platform_fields(kind)  # refuses an unknown kind
    known = {field.key for field in video_platform_class(kind).configuration.fields()}
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in known:
            raise InvalidInput(N_("Unbekannte Einstellung {keys}."), keys=Joined([Term(key)]))
        values[key] = value
    return values
