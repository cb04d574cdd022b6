"""iCalendar feeds (RFC 5545) of consultation sessions, per series and per host, behind a token nobody can guess.

A feed link is pasted into calendar apps and may end up anywhere, so it carries what a notice
on the town hall door would: when, where, how many places are booked. Never a citizen's name,
concern or address. Each session keeps its UID when it is moved or cancelled, so subscribed
calendars update the event instead of adding one.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from gettext import NullTranslations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from icalendar import Calendar, Event
from sqlalchemy import ColumnElement, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from hub.consultations.models import (
    LOCATION_LABELS,
    CalendarFeed,
    ConsultationSeries,
    ConsultationSession,
    ConsultationSlot,
)
from hub.consultations.service import ensure_sessions
from hub.db import get_session, utcnow
from hub.errors import NotFound
from hub.i18n import N_, gettext_for, language_of
from hub.tenancy.models import Municipality, StaffUser

# How long past sessions stay in a feed: calendars keep what they once showed anyway.
KEPT = timedelta(days=90)


def _new_token() -> str:
    return secrets.token_urlsafe(32)


def _which(series_id: int | None, host_user_id: int | None) -> ColumnElement[bool]:
    assert (series_id is None) != (host_user_id is None)
    if series_id is not None:
        return col(CalendarFeed.series_id) == series_id
    return col(CalendarFeed.host_user_id) == host_user_id


def feed_token(
    session: Session, *, municipality_id: int, series_id: int | None = None, host_user_id: int | None = None
) -> str:
    """The token of the series' (or the host's) feed, made the first time it is asked for; commits a new one."""
    where = _which(series_id, host_user_id)
    found = session.exec(select(CalendarFeed).where(where)).first()
    if found is not None:
        return found.token
    feed = CalendarFeed(
        municipality_id=municipality_id, series_id=series_id, host_user_id=host_user_id, token=_new_token()
    )
    session.add(feed)
    try:
        session.commit()
    except IntegrityError:  # another request made it a moment ago
        session.rollback()
        return session.exec(select(CalendarFeed).where(where)).one().token
    return feed.token


def rotate_feed(
    session: Session, *, municipality_id: int, series_id: int | None = None, host_user_id: int | None = None
) -> str:
    """A new token for the feed: the old link stops working at once (for a link that went where it should not)."""
    feed_token(session, municipality_id=municipality_id, series_id=series_id, host_user_id=host_user_id)
    feed = session.exec(select(CalendarFeed).where(_which(series_id, host_user_id))).one()
    feed.token = _new_token()
    feed.created_at = utcnow()
    session.add(feed)
    session.flush()
    return feed.token


def _feed(session: Session, token: str) -> CalendarFeed:
    feed = session.exec(select(CalendarFeed).where(CalendarFeed.token == token)).first() if token else None
    if feed is None:
        raise NotFound(
            N_("Diesen Kalender gibt es nicht, oder sein Link wurde erneuert. Bitte den neuen Link abonnieren.")
        )
    return feed


def feed_calendar(session: Session, *, token: str, language: str = "de", now: datetime | None = None) -> bytes:
    """The feed's sessions as an iCalendar file, in UTC: the last 90 days and the booking window."""
    now = now or utcnow()
    feed = _feed(session, token)
    municipality = session.get(Municipality, feed.municipality_id)
    assert municipality is not None
    texts = gettext_for(language)
    if feed.series_id is not None:
        chosen = select(ConsultationSeries).where(ConsultationSeries.id == feed.series_id)
    else:
        chosen = select(ConsultationSeries).where(
            ConsultationSeries.municipality_id == feed.municipality_id,
            ConsultationSeries.host_user_id == feed.host_user_id,
        )
    series_by_id = {series.id: series for series in session.exec(chosen)}
    for series in series_by_id.values():
        if series.active:
            ensure_sessions(session, series=series, municipality=municipality, now=now)
    places = (
        select(
            ConsultationSession,
            func.coalesce(func.sum(ConsultationSlot.booked), 0),
            func.coalesce(func.sum(ConsultationSlot.capacity), 0),
        )
        .outerjoin(ConsultationSlot, col(ConsultationSlot.session_id) == ConsultationSession.id)
        .where(
            col(ConsultationSession.series_id).in_(list(series_by_id)),
            col(ConsultationSession.starts_at) >= now - KEPT,
        )
        .group_by(col(ConsultationSession.id))
        .order_by(col(ConsultationSession.starts_at))
    )
    calendar = Calendar()
    calendar.add("prodid", "-//Rathaus Hub//Sprechstunden//DE")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", _name(session, feed, series_by_id, municipality, texts))
    for held, booked, capacity in session.exec(places).all():
        series = series_by_id[held.series_id]
        event = Event()
        event.add("uid", f"sprechstunde-{held.id}@{municipality.slug}.rathaus-hub")
        event.add("dtstamp", now)
        event.add("dtstart", held.starts_at)
        event.add("dtend", held.ends_at)
        event.add("summary", series.title)
        event.add("location", series.address if series.location == "in_person" and series.address else
                  texts.gettext(LOCATION_LABELS.get(series.location, series.location)))  # fmt: skip
        event.add("status", "CANCELLED" if held.status == "cancelled" else "CONFIRMED")
        event.add(
            "description",
            texts.gettext(N_("Abgesagt.")) if held.status == "cancelled" else
            texts.gettext(N_("Gebucht: {booked} von {capacity} Plätzen.")).format(booked=booked, capacity=capacity),
        )  # fmt: skip
        calendar.add_component(event)
    return calendar.to_ical()


def _name(session: Session, feed: CalendarFeed, series_by_id: dict[int | None, ConsultationSeries],
          municipality: Municipality, texts: NullTranslations) -> str:  # fmt: skip
    """What calendar apps call the feed: the series' title, or the host's name."""
    if feed.series_id is not None:
        return f"{series_by_id[feed.series_id].title} – {municipality.name}"
    host = session.get(StaffUser, feed.host_user_id)
    name = host.name if host else ""
    return texts.gettext(N_("Sprechstunden von {name}")).format(name=name) + f" – {municipality.name}"


feed_router = APIRouter(include_in_schema=False)


@feed_router.get("/kalender/{token}.ics")
def calendar_feed(token: str, request: Request, session: Session = Depends(get_session)) -> Response:
    """The feed a calendar app subscribes to; no sign-in, the token is the key."""
    body = feed_calendar(session, token=token, language=language_of(request))
    return Response(body, media_type="text/calendar; charset=utf-8")
