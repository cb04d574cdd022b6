"""The consultation hours' numbers for a date range: bookings, no-shows, waits and feedback per series and team.

Bookings count by their slot's start in the period, feedback by when it was given, waits by
when the citizen was called in. A series belongs to its host team (a series held by a person
counts as "without team"); feedback after a resolved case counts for the case's team, a wait
for the department whose room called the citizen in. A wait runs from checking in to the last
call: a citizen forwarded keeps the moment they checked in, so their wait is the whole of it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import Session, col, select

from hub.consultations.models import (
    Booking,
    ConsultationSeries,
    ConsultationSession,
    ConsultationSlot,
    Feedback,
    FeedbackRequest,
    WaitingRoomEntry,
)
from hub.inbox.models import Conversation
from hub.reports.service import Period, percentile
from hub.tenancy.models import Team

# The comments the page lists, newest first; the CSV has them all.
COMMENTS_SHOWN = 100
# A spreadsheet runs a cell that starts with one of these as a formula: a citizen's text must not.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Tally:
    """Bookings and feedback of one series or one team."""

    name: str
    bookings: int = 0
    no_shows: int = 0
    cancelled: int = 0
    ratings: list[int] = field(default_factory=list)
    resolved: list[bool] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)  # seconds from checking in to being called

    @property
    def answers(self) -> int:
        return len(self.ratings)

    @property
    def rating_average(self) -> float | None:
        return sum(self.ratings) / len(self.ratings) if self.ratings else None

    @property
    def wait_median(self) -> float | None:
        return percentile(self.waits, 0.5)

    @property
    def wait_p95(self) -> float | None:
        return percentile(self.waits, 0.95)

    @property
    def resolved_share(self) -> float | None:
        return sum(self.resolved) / len(self.resolved) if self.resolved else None


@dataclass(frozen=True)
class Comment:
    at: datetime
    about: str  # the series' title, or the case's reference
    team: str
    rating: int
    resolved: bool | None
    text: str


@dataclass
class ConsultationReport:
    days: list[date]
    series: list[Tally]
    teams: list[Tally]
    comments: list[Comment]
    # Per local day of the period: how many ratings, and their average (None on a day without).
    ratings_per_day: list[int]
    average_per_day: list[float | None]


def spreadsheet_safe(text: str) -> str:
    """A citizen's text for a CSV cell, never read as a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def consultation_report(session: Session, *, municipality_id: int, period: Period, no_team: str) -> ConsultationReport:
    teams = {team.id: team.name for team in session.exec(select(Team).where(Team.municipality_id == municipality_id))}
    by_series: dict[int, Tally] = {}
    by_team: dict[int | None, Tally] = {}

    def team_tally(team_id: int | None) -> Tally:
        return by_team.setdefault(team_id, Tally(name=teams.get(team_id, no_team) if team_id else no_team))

    series_rows = session.exec(
        select(ConsultationSeries).where(ConsultationSeries.municipality_id == municipality_id)
    ).all()
    for series in series_rows:
        assert series.id is not None
        by_series[series.id] = Tally(name=series.title)
    bookings = session.exec(
        select(Booking.status, ConsultationSession.series_id)
        .join(ConsultationSlot, col(ConsultationSlot.id) == Booking.slot_id)
        .join(ConsultationSession, col(ConsultationSession.id) == Booking.session_id)
        .where(
            Booking.municipality_id == municipality_id,
            col(ConsultationSlot.starts_at) >= period.since,
            col(ConsultationSlot.starts_at) < period.until,
        )
    ).all()
    host_team = {series.id: series.host_team_id for series in series_rows}
    for status, series_id in bookings:
        for tally in (by_series[series_id], team_tally(host_team[series_id])):
            tally.bookings += 1
            tally.no_shows += status == "no_show"
            tally.cancelled += status == "cancelled"

    waits = session.exec(
        select(WaitingRoomEntry).where(
            WaitingRoomEntry.municipality_id == municipality_id,
            col(WaitingRoomEntry.called_at).is_not(None),
            col(WaitingRoomEntry.called_at) >= period.since,
            col(WaitingRoomEntry.called_at) < period.until,
        )
    ).all()
    for entry in waits:
        assert entry.called_at is not None
        seconds = (entry.called_at - entry.queued_at).total_seconds()
        for tally in (by_series[entry.series_id], team_tally(entry.team_id)):
            tally.waits.append(seconds)

    answered = (col(Feedback.created_at) >= period.since, col(Feedback.created_at) < period.until)
    after_consultations = session.exec(
        select(Feedback, ConsultationSeries)
        .join(FeedbackRequest, col(FeedbackRequest.id) == Feedback.request_id)
        .join(Booking, col(Booking.id) == FeedbackRequest.booking_id)
        .join(ConsultationSession, col(ConsultationSession.id) == Booking.session_id)
        .join(ConsultationSeries, col(ConsultationSeries.id) == ConsultationSession.series_id)
        .where(Feedback.municipality_id == municipality_id, *answered)
    ).all()
    after_cases = session.exec(
        select(Feedback, Conversation)
        .join(FeedbackRequest, col(FeedbackRequest.id) == Feedback.request_id)
        .join(Conversation, col(Conversation.id) == FeedbackRequest.conversation_id)
        .where(Feedback.municipality_id == municipality_id, *answered)
    ).all()
    comments = []
    per_day: dict[date, list[int]] = defaultdict(list)
    answers: list[tuple[Feedback, str, int | None, Sequence[Tally]]] = [
        (answer, series.title, series.host_team_id, (by_series[series.id or 0],))
        for answer, series in after_consultations
    ]
    answers += [(answer, case.reference, case.team_id, ()) for answer, case in after_cases]
    for answer, about, team_id, tallies in answers:
        for tally in (*tallies, team_tally(team_id)):
            tally.ratings.append(answer.rating)
            if answer.resolved is not None:
                tally.resolved.append(answer.resolved)
        per_day[period.local_day(answer.created_at)].append(answer.rating)
        if answer.comment:
            team = teams.get(team_id, no_team) if team_id else no_team
            comments.append(Comment(answer.created_at, about, team, answer.rating, answer.resolved, answer.comment))
    comments.sort(key=lambda comment: comment.at, reverse=True)
    days = period.days
    counted = Counter({day: len(ratings) for day, ratings in per_day.items()})
    return ConsultationReport(
        days=days,
        series=[tally for tally in by_series.values() if tally.bookings or tally.answers or tally.waits],
        teams=sorted(by_team.values(), key=lambda tally: tally.name),
        comments=comments,
        ratings_per_day=[counted[day] for day in days],
        average_per_day=[sum(per_day[day]) / len(per_day[day]) if per_day.get(day) else None for day in days],
    )
