"""The numbers behind the reports: messages per channel and day, response times, missed targets, broadcast reach.

Medians and 90th percentiles are computed here in Python (linear interpolation, as PostgreSQL's
`percentile_cont`), so SQLite and PostgreSQL give the same answer; the rows they come from are
a date range of one municipality. Days are the municipality's local calendar days.

Response times are measured on the wall clock from the conversation's start; whether a target
was missed is judged as the inbox does (hub.inbox.sla: minutes of office time, the team's
targets or else the municipality's).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from hub.broadcasts.models import Broadcast, Delivery
from hub.db import utcnow
from hub.errors import InvalidInput
from hub.i18n import N_
from hub.inbox import sla
from hub.inbox.models import Conversation, Message
from hub.tenancy import office_hours
from hub.tenancy.models import ChannelAccount, Municipality, Team

REPORTS = ("messages", "response-times", "targets", "broadcasts", "consultations", "feedback")
DEFAULT_DAYS = 30
# A year and a day: one column per day still reads as a chart, and the page stays quick.
MAX_DAYS = 366


@dataclass(frozen=True)
class Period:
    """Calendar days `start`..`end` (both included) in the municipality's time zone."""

    start: date
    end: date
    timezone: str = "Europe/Berlin"

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(), ZoneInfo(self.timezone))

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(), ZoneInfo(self.timezone))

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=offset) for offset in range((self.end - self.start).days + 1)]

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(ZoneInfo(self.timezone)).date()


def period(municipality: Municipality, start: date | None = None, end: date | None = None) -> Period:
    """The asked-for range, or the last 30 days up to today; a reversed range is turned round."""
    today = utcnow().astimezone(ZoneInfo(municipality.timezone)).date()
    end = end or today
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        start, end = end, start
    if (end - start).days >= MAX_DAYS:
        raise InvalidInput(N_("Der Zeitraum darf höchstens {max_days} Tage umfassen."), max_days=MAX_DAYS)
    return Period(start=start, end=end, timezone=municipality.timezone)


def percentile(values: Sequence[float], share: float) -> float | None:
    """The `share` (0..1) percentile with linear interpolation between ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * share
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# Messages per channel and day


@dataclass
class MessagesReport:
    days: list[date]
    channels: list[str]
    # (day, channel kind) -> {"inbound": n, "outbound": n}
    counts: dict[tuple[date, str], dict[str, int]] = field(default_factory=dict)

    def count(self, day: date, kind: str, direction: str) -> int:
        return self.counts.get((day, kind), {}).get(direction, 0)

    def per_day(self, direction: str) -> list[int]:
        return [sum(self.count(day, kind, direction) for kind in self.channels) for day in self.days]

    def total(self, kind: str, direction: str) -> int:
        return sum(self.count(day, kind, direction) for day in self.days)


def messages_per_day(session: Session, *, municipality_id: int, period: Period) -> MessagesReport:
    """Inbound and outbound messages (not internal notes) per channel kind and local day."""
    # Grouped by hour in SQL and folded into local days here: hours are the same in every
    # time zone the hub serves, and the rows stay few (24 per day and kind and direction).
    hour = func.strftime("%Y-%m-%d %H:00:00", Message.created_at)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        hour = func.date_trunc("hour", Message.created_at)
    rows = session.execute(
        select(hour, col(ChannelAccount.kind), col(Message.direction), func.count())
        .join(ChannelAccount, col(ChannelAccount.id) == Message.channel_account_id)
        .where(
            col(Message.municipality_id) == municipality_id,
            col(Message.direction).in_(("inbound", "outbound")),
            col(Message.created_at) >= period.since,
            col(Message.created_at) < period.until,
        )
        .group_by(hour, col(ChannelAccount.kind), col(Message.direction))
    ).all()
    kinds = [
        kind
        for (kind,) in session.execute(
            select(col(ChannelAccount.kind))
            .where(col(ChannelAccount.municipality_id) == municipality_id)
            .distinct()
            .order_by(col(ChannelAccount.kind))
        ).all()
    ]
    report = MessagesReport(days=period.days, channels=kinds)
    for started, kind, direction, count in rows:
        moment = started if isinstance(started, datetime) else datetime.fromisoformat(started)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo("UTC"))
        by_direction = report.counts.setdefault((period.local_day(moment), kind), {})
        by_direction[direction] = by_direction.get(direction, 0) + count
    return report


# Response times and targets


@dataclass
class TeamTimes:
    """One team's (or everyone's) conversations that started in the period."""

    name: str
    conversations: int = 0
    first_response: list[float] = field(default_factory=list)
    resolution: list[float] = field(default_factory=list)
    first_response_target: int | None = None
    resolution_target: int | None = None
    first_response_due: int = 0
    first_response_missed: int = 0
    resolution_due: int = 0
    resolution_missed: int = 0

    @property
    def first_response_median(self) -> float | None:
        return percentile(self.first_response, 0.5)

    @property
    def first_response_p90(self) -> float | None:
        return percentile(self.first_response, 0.9)

    @property
    def resolution_median(self) -> float | None:
        return percentile(self.resolution, 0.5)

    @property
    def resolution_p90(self) -> float | None:
        return percentile(self.resolution, 0.9)

    @property
    def first_response_missed_share(self) -> float | None:
        return self.first_response_missed / self.first_response_due if self.first_response_due else None

    @property
    def resolution_missed_share(self) -> float | None:
        return self.resolution_missed / self.resolution_due if self.resolution_due else None


@dataclass
class TimesReport:
    teams: list[TeamTimes]
    overall: TeamTimes


def _judge(times: TeamTimes, which: str, due: datetime | None, done: datetime | None, overdue: bool,
           now: datetime) -> None:  # fmt: skip
    """Counts a conversation against a target once it is settled: done, or past its deadline."""
    if due is None or (done is None and now <= due):
        return  # no target, or still within its time: neither kept nor missed yet
    setattr(times, f"{which}_due", getattr(times, f"{which}_due") + 1)
    if overdue:
        setattr(times, f"{which}_missed", getattr(times, f"{which}_missed") + 1)


def response_times(
    session: Session, *, municipality: Municipality, period: Period, no_team: str, everyone: str
) -> TimesReport:
    """First-response and resolution times (seconds) and missed targets per team and overall.

    `no_team` and `everyone` are the (translated) names of the rows for conversations without a
    team and for all conversations.
    """
    assert municipality.id is not None
    teams = {team.id: team for team in session.exec(select(Team).where(Team.municipality_id == municipality.id)).all()}
    rows = session.exec(
        select(Conversation).where(
            Conversation.municipality_id == municipality.id,
            col(Conversation.created_at) >= period.since,
            col(Conversation.created_at) < period.until,
        )
    ).all()
    by_team: dict[int | None, TeamTimes] = {}
    overall = TeamTimes(name=everyone)
    now = utcnow()
    own = sla.own_targets(session, [conversation.id for conversation in rows if conversation.id is not None])
    for conversation in rows:
        team = teams.get(conversation.team_id) if conversation.team_id else None
        goal = office_hours.targets(municipality, team)
        times = by_team.setdefault(
            team.id if team else None,
            TeamTimes(name=team.name if team else no_team, first_response_target=goal.first_response_minutes,
                      resolution_target=goal.resolution_minutes),
        )  # fmt: skip
        clock = sla.clock(
            conversation, team=team, municipality=municipality, now=now, own_target=own.get(conversation.id or 0)
        )
        started = conversation.created_at
        for bucket in (times, overall):
            bucket.conversations += 1
            if conversation.first_response_at is not None:
                bucket.first_response.append((conversation.first_response_at - started).total_seconds())
            if conversation.resolved_at is not None:
                bucket.resolution.append((conversation.resolved_at - started).total_seconds())
            _judge(bucket, "first_response", clock.first_response_due, conversation.first_response_at,
                   clock.first_response_overdue, now)  # fmt: skip
            _judge(bucket, "resolution", clock.resolution_due, conversation.resolved_at, clock.resolution_overdue,
                   now)  # fmt: skip
    ordered = sorted(by_team.values(), key=lambda times: (times.name == no_team, times.name.lower()))
    return TimesReport(teams=ordered, overall=overall)


# Broadcasts


@dataclass(frozen=True)
class Reach:
    broadcast_id: int
    title: str
    kind: str
    started_at: datetime | None
    recipients: int
    delivered: int
    failed: int
    opted_out: int


def broadcast_reach(session: Session, *, municipality_id: int, period: Period) -> list[Reach]:
    """Per broadcast that started sending in the period: recipients, delivered, failed, opted out."""

    def counted(*states: str) -> Any:
        return func.sum(case((col(Delivery.state).in_(states), 1), else_=0))

    # SQLAlchemy's own select: sqlmodel's is typed for at most four columns.
    rows = session.execute(
        sql_select(
            col(Broadcast.id),
            col(Broadcast.title),
            col(Broadcast.kind),
            col(Broadcast.started_at),
            func.count(col(Delivery.id)),
            counted("delivered", "read"),
            counted("failed", "uncertain"),
            counted("opted_out"),
        )
        .outerjoin(Delivery, col(Delivery.broadcast_id) == Broadcast.id)
        .where(
            col(Broadcast.municipality_id) == municipality_id,
            col(Broadcast.started_at) >= period.since,
            col(Broadcast.started_at) < period.until,
        )
        .group_by(col(Broadcast.id), col(Broadcast.title), col(Broadcast.kind), col(Broadcast.started_at))
        .order_by(col(Broadcast.started_at))
    ).all()
    return [
        Reach(
            broadcast_id=bid,
            title=title,
            kind=kind,
            started_at=started,
            recipients=recipients or 0,
            delivered=delivered or 0,
            failed=failed or 0,
            opted_out=opted_out or 0,
        )
        for bid, title, kind, started, recipients, delivered, failed, opted_out in rows
    ]


def to_csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Semicolon-separated, as spreadsheets set to German open it; empty cells for missing values."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
    return out.getvalue()
