"""When a series meets: its RRULE expanded in the town's time zone into sessions in UTC, across daylight-saving changes.

The rule is read as local wall-clock time (the mayor's office hours are at 17:00 in winter and
in summer), so each occurrence is placed in the zone on its own day. A start or end that does not
exist on a day the clocks go forward is refused when the series is defined; one that exists
twice, when they go back, is the first of the two (summer time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr

from hub.errors import InvalidInput, Term
from hub.i18n import N_

_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
# How far ahead a definition is checked for times the clocks skip.
CHECKED_AHEAD = timedelta(days=2 * 366)
# A session is a stretch of one day: rules that recur within a day make no sense here.
_WITHIN_A_DAY = re.compile(r"FREQ=(HOURLY|MINUTELY|SECONDLY)")


@dataclass(frozen=True)
class Occurrence:
    starts_at: datetime  # UTC
    ends_at: datetime  # UTC


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(N_("Unbekannte Zeitzone {name!r}."), name=name) from None


def clock_time(value: str, *, field: str) -> time:
    match = _TIME.fullmatch(value.strip())
    if match is None:
        raise InvalidInput(N_("{field}: {value!r} ist keine Uhrzeit im Format HH:MM."), field=Term(field), value=value)
    return time(int(match.group(1)), int(match.group(2)))


def parse_rule(rule: str, first_day: date) -> rrule:
    """The RRULE (without DTSTART) as dateutil reads it, or a German message saying what is wrong."""
    text = rule.strip().removeprefix("RRULE:")
    if not text or "\n" in text or "DTSTART" in text.upper():
        raise InvalidInput(N_("Die Wiederholung muss eine RRULE-Zeile sein, z. B. FREQ=WEEKLY;BYDAY=TU."))
    if _WITHIN_A_DAY.search(text.upper()):
        raise InvalidInput(
            N_("Sprechstunden wiederholen sich höchstens täglich (FREQ=DAILY, WEEKLY, MONTHLY oder YEARLY).")
        )
    try:
        parsed = rrulestr(f"RRULE:{text}", dtstart=datetime.combine(first_day, time()))
    except (ValueError, TypeError) as error:
        raise InvalidInput(
            N_("Die Wiederholung {text!r} ist keine gültige RRULE: {error}."), text=text, error=error
        ) from None
    assert isinstance(parsed, rrule)
    return parsed


def local_to_utc(day: date, at: time, tz: ZoneInfo) -> datetime | None:
    """`at` on `day` in `tz` as UTC; None if the clocks skip that time on that day."""
    local = datetime.combine(day, at, tzinfo=tz)  # fold=0: of a time that exists twice, the first
    as_utc = local.astimezone(UTC)
    return as_utc if as_utc.astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None) else None


def _days(rule: rrule, first_day: date, until: date, exdates: list[str], rdates: list[str]) -> list[date]:
    skipped = {date.fromisoformat(day) for day in exdates}
    days = {
        moment.date()
        for moment in rule.between(datetime.combine(first_day, time()), datetime.combine(until, time.max), inc=True)
    }
    days |= {extra for extra in (date.fromisoformat(day) for day in rdates) if first_day <= extra <= until}
    return sorted(days - skipped)


def occurrences(
    *,
    rule: str,
    first_day: date,
    start_time: str,
    end_time: str,
    exdates: list[str],
    rdates: list[str],
    timezone: str,
    between: tuple[date, date],
) -> list[Occurrence]:
    """The series' sessions on the days from `between[0]` to `between[1]`, both included; skipped times left out."""
    tz, starts, ends = (
        zone(timezone),
        clock_time(start_time, field=N_("Beginn")),
        clock_time(end_time, field=N_("Ende")),
    )
    found = []
    for day in _days(parse_rule(rule, first_day), max(first_day, between[0]), between[1], exdates, rdates):
        begin, end = local_to_utc(day, starts, tz), local_to_utc(day, ends, tz)
        if begin is not None and end is not None:
            found.append(Occurrence(begin, end))
    return found


def check_definition(
    *,
    rule: str,
    first_day: date,
    start_time: str,
    end_time: str,
    exdates: list[str],
    rdates: list[str],
    timezone: str,
) -> None:
    """Refuses, in German, a series that cannot be held as defined: the message says what is wrong."""
    tz, starts, ends = (
        zone(timezone),
        clock_time(start_time, field=N_("Beginn")),
        clock_time(end_time, field=N_("Ende")),
    )
    if ends <= starts:
        raise InvalidInput(
            N_("Das Ende ({end_time}) muss nach dem Beginn ({start_time}) liegen."),
            end_time=end_time,
            start_time=start_time,
        )
    for listed in (*exdates, *rdates):
        try:
            date.fromisoformat(listed)
        except ValueError:
            raise InvalidInput(N_("{listed!r} ist kein Datum im Format JJJJ-MM-TT."), listed=listed) from None
    for day in _days(parse_rule(rule, first_day), first_day, first_day + CHECKED_AHEAD, exdates, rdates):
        for at, label in ((starts, start_time), (ends, end_time)):
            if local_to_utc(day, at, tz) is None:
                raise InvalidInput(
                    N_(
                        "Am {day} gibt es {label} Uhr nicht: die Uhren werden umgestellt. Bitte diesen "
                        "Tag ausnehmen oder eine andere Uhrzeit wählen."
                    ),
                    day=day.strftime("%d.%m.%Y"),
                    label=label,
                )
