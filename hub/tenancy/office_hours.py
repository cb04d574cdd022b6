"""Office hours and response targets of a town and its teams, and the clock that counts only office time.

Targets are minutes of office time: a message at 15:50 with a 30-minute target and office hours
until 16:00 is due at 08:20 the next working day. Office hours come from the team, else the
municipality; none at all means the clock runs around the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hub.tenancy.models import Municipality, Team
from hub.tenancy.preferences import preference

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A deadline further out than this many days of looking means the hours are effectively closed.
_SEARCH_DAYS = 400

OfficeHours = dict[str, list[list[str]]]

# Staff set targets in hours or working days of office time; they are stored as minutes. A working day
# is eight office hours whatever the opening hours of a given day (the defaults: one and five of them).
WORKING_DAY_MINUTES = 8 * 60
TARGET_UNITS = {"hours": 60, "working_days": WORKING_DAY_MINUTES}


@dataclass(frozen=True)
class Targets:
    first_response_minutes: int | None
    resolution_minutes: int | None


def target_in_units(minutes: int | None) -> tuple[str, str]:
    """A stored target as the settings form shows it: ("5", "working_days"), ("1,5", "hours"); none is ("", "hours")."""
    if not minutes:
        return "", "hours"
    unit = "working_days" if minutes % WORKING_DAY_MINUTES == 0 else "hours"
    amount = round(minutes / TARGET_UNITS[unit], 2)
    return f"{amount:g}".replace(".", ","), unit


def office_hours(municipality: Municipality, team: Team | None) -> OfficeHours:
    own = team.office_hours if team is not None else None
    return dict(own) if own else dict(preference(municipality, "office_hours"))


def targets(municipality: Municipality, team: Team | None) -> Targets:
    if team is not None and (team.first_response_minutes or team.resolution_minutes):
        return Targets(team.first_response_minutes, team.resolution_minutes)
    defaults: dict[str, Any] = preference(municipality, "response_targets")
    return Targets(defaults.get("first_response_minutes"), defaults.get("resolution_minutes"))


def _intervals(hours: OfficeHours, day: datetime) -> list[tuple[datetime, datetime]]:
    """The office intervals of one local calendar day, as aware datetimes."""
    spans = []
    for start, end in hours.get(WEEKDAYS[day.weekday()], []):
        opens = datetime.combine(day.date(), time.fromisoformat(start), tzinfo=day.tzinfo)
        closes = datetime.combine(day.date(), time.fromisoformat(end), tzinfo=day.tzinfo)
        if closes > opens:
            spans.append((opens, closes))
    return sorted(spans)


def deadline(start: datetime, minutes: int, hours: OfficeHours, timezone: str) -> datetime:
    """The moment `minutes` of office time after `start` have passed."""
    if not hours:
        return start + timedelta(minutes=minutes)
    zone = ZoneInfo(timezone)
    local = start.astimezone(zone)
    remaining = timedelta(minutes=minutes)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    for _ in range(_SEARCH_DAYS):
        for opens, closes in _intervals(hours, day):
            begin = max(opens, local)
            if begin >= closes:
                continue
            if begin + remaining <= closes:
                return (begin + remaining).astimezone(start.tzinfo)
            remaining -= closes - begin
        day = (day + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return start + timedelta(days=_SEARCH_DAYS)
