"""The reports page (charts and tables for a date range) and each report as CSV."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from channels.registry import channel_labels
from hub.broadcasts.models import KIND_LABELS
from hub.db import get_session
from hub.errors import InvalidInput, NotFound, Term
from hub.i18n import N_, translate
from hub.reports import consultations, service
from hub.web.auth import Staff, require
from hub.web.charts import bar_chart, daily_chart
from hub.web.downloads import download
from hub.web.rendering import format_duration, format_local, format_target, render
from hub.web.security import verify_csrf

router = APIRouter(prefix="/app/reports", include_in_schema=False, dependencies=[Depends(verify_csrf)])

CHANNEL_LABELS = channel_labels()


class Heading(str):
    """A column's name as the page shows it (its values formatted there), with the unit its CSV values are in."""

    unit: str

    def __new__(cls, text: str, unit: str) -> Heading:
        heading = super().__new__(cls, text)
        heading.unit = unit
        return heading

    def with_unit(self) -> str:
        return f"{self} ({self.unit})"


def _csv_header(header: list[str]) -> list[str]:
    return [cell.with_unit() if isinstance(cell, Heading) else cell for cell in header]


def _date(value: str | None, what: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(N_("{what}: bitte ein Datum wie 2026-01-31 angeben."), what=Term(what)) from None


def _period(staff: Staff, start: str | None, end: str | None) -> service.Period:
    return service.period(staff.municipality, _date(start, "Von"), _date(end, "Bis"))


def channel_name(request: Request, kind: str) -> str:
    """A channel kind as staff call it ("SMS"), in the visitor's language."""
    return translate(request, CHANNEL_LABELS.get(kind, kind))


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f} %"


def _percent(share: float | None) -> float | None:
    return None if share is None else share * 100


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _tables(request: Request, session: Session, staff: Staff, period: service.Period) -> dict[str, Any]:
    """Each report as (header, rows) in the visitor's language: the page's tables and the CSV files."""
    language = getattr(request.state, "language", "de")

    messages = service.messages_per_day(session, municipality_id=staff.municipality_id, period=period)
    message_rows = [
        [
            day.isoformat(),
            channel_name(request, kind),
            messages.count(day, kind, "inbound"),
            messages.count(day, kind, "outbound"),
        ]
        for day in messages.days
        for kind in messages.channels
    ]
    times = service.response_times(
        session,
        municipality=staff.municipality,
        period=period,
        no_team=translate(request, "Ohne Team"),
        everyone=translate(request, "Alle"),
    )
    time_rows = [
        [
            row.name,
            row.conversations,
            row.first_response_median,
            row.first_response_p90,
            row.resolution_median,
            row.resolution_p90,
        ]
        for row in [*times.teams, times.overall]
    ]
    target_rows = [
        [
            row.name,
            row.first_response_target,
            row.first_response_due,
            row.first_response_missed,
            row.first_response_missed_share,
            row.resolution_target,
            row.resolution_due,
            row.resolution_missed,
            row.resolution_missed_share,
        ]
        for row in [*times.teams, times.overall]
    ]
    reach = service.broadcast_reach(session, municipality_id=staff.municipality_id, period=period)
    reach_rows = [
        [
            item.broadcast_id,
            item.title,
            translate(request, KIND_LABELS.get(item.kind, item.kind)),
            format_local(item.started_at, language, period.timezone),
            item.recipients,
            item.delivered,
            item.failed,
            item.opted_out,
        ]
        for item in reach
    ]
    visits = consultations.consultation_report(
        session, municipality_id=staff.municipality_id, period=period, no_team=translate(request, "Ohne Team")
    )
    series_label, team_label = translate(request, "Sprechstunde"), translate(request, "Team")
    visit_rows = [
        [
            row.name,
            kind,
            row.bookings,
            row.no_shows,
            row.cancelled,
            row.wait_median,
            row.wait_p95,
            row.answers,
            _rounded(row.rating_average),
            row.resolved_share,
        ]
        for kind, rows in ((series_label, visits.series), (team_label, visits.teams))
        for row in rows
    ]
    yes, no = translate(request, "Ja"), translate(request, "Nein")
    # The page shows what citizens wrote as they wrote it; the CSV so that no spreadsheet runs it.
    comment_rows = [
        [
            format_local(comment.at, language, period.timezone), comment.about, comment.team, comment.rating,
            None if comment.resolved is None else yes if comment.resolved else no, comment.text,
        ]
        for comment in visits.comments
    ]  # fmt: skip
    return {
        "consultations": (
            [
                translate(request, "Name"),
                translate(request, "Art"),
                translate(request, "Buchungen"),
                translate(request, "Nicht erschienen"),
                translate(request, "Abgesagt"),
                Heading(translate(request, "Wartezeit, Median"), "s"),
                Heading(translate(request, "Wartezeit, 95. Perzentil"), "s"),
                translate(request, "Rückmeldungen"),
                translate(request, "Bewertung, Durchschnitt (1–5)"),
                translate(request, "Anliegen gelöst"),
            ],
            visit_rows,
            visits,
        ),
        "feedback": (
            [
                translate(request, "Zeitpunkt"),
                translate(request, "Zu"),
                translate(request, "Team"),
                translate(request, "Bewertung"),
                translate(request, "Gelöst"),
                translate(request, "Kommentar"),
            ],
            [
                [consultations.spreadsheet_safe(cell) if isinstance(cell, str) else cell for cell in row]
                for row in comment_rows
            ],
            comment_rows,
        ),
        "messages": (
            [
                translate(request, "Tag"),
                translate(request, "Kanal"),
                translate(request, "Eingehend"),
                translate(request, "Ausgehend"),
            ],
            message_rows,
            messages,
        ),
        "response-times": (
            [
                translate(request, "Team"),
                translate(request, "Vorgänge"),
                Heading(translate(request, "Erste Antwort, Median"), "s"),
                Heading(translate(request, "Erste Antwort, 90. Perzentil"), "s"),
                Heading(translate(request, "Erledigung, Median"), "s"),
                Heading(translate(request, "Erledigung, 90. Perzentil"), "s"),
            ],
            time_rows,
            times,
        ),
        "targets": (
            [
                translate(request, "Team"),
                Heading(translate(request, "Ziel erste Antwort"), translate(request, "Min.")),
                translate(request, "Fällig"),
                translate(request, "Verfehlt"),
                translate(request, "Anteil verfehlt"),
                Heading(translate(request, "Ziel Erledigung"), translate(request, "Min.")),
                translate(request, "Fällig"),
                translate(request, "Verfehlt"),
                translate(request, "Anteil verfehlt"),
            ],
            target_rows,
            times,
        ),
        "broadcasts": (
            [
                translate(request, "Nr."),
                translate(request, "Titel"),
                translate(request, "Art"),
                translate(request, "Versand ab"),
                translate(request, "Empfänger"),
                translate(request, "Zugestellt"),
                translate(request, "Fehlgeschlagen"),
                translate(request, "Abgemeldet"),
            ],
            reach_rows,
            reach,
        ),
    }


@router.get("", response_class=HTMLResponse)
def reports(
    request: Request,
    start: str | None = None,
    end: str | None = None,
    staff: Staff = Depends(require("reports.read")),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    period = _period(staff, start, end)
    tables = _tables(request, session, staff, period)
    language = getattr(request.state, "language", "de")
    messages: service.MessagesReport = tables["messages"][2]
    times: service.TimesReport = tables["response-times"][2]
    reach: list[service.Reach] = tables["broadcasts"][2]
    span = f"{period.start:%d.%m.%Y}–{period.end:%d.%m.%Y}"
    rows = [*times.teams, times.overall]
    charts = {
        "messages": daily_chart(
            title=translate(request, "Nachrichten pro Tag"),
            description=translate(
                request, "Eingehende und ausgehende Nachrichten aller Kanäle pro Tag, {span}."
            ).format(span=span),
            days=messages.days,
            series=[
                (translate(request, "Eingehend"), messages.per_day("inbound")),
                (translate(request, "Ausgehend"), messages.per_day("outbound")),
            ],
        ),
        "channels": bar_chart(
            title=translate(request, "Nachrichten pro Kanal"),
            description=translate(request, "Eingehende und ausgehende Nachrichten je Kanal, {span}.").format(span=span),
            bars=[
                (
                    f"{channel_name(request, kind)} · {translate(request, direction_label)}",
                    messages.total(kind, direction),
                )
                for kind in messages.channels
                for direction, direction_label in (("inbound", "Eingehend"), ("outbound", "Ausgehend"))
            ],
        ),
        "first-response": bar_chart(
            title=translate(request, "Erste Antwort: Median je Team"),
            description=translate(request, "Median der Zeit bis zur ersten Antwort je Team, {span}.").format(span=span),
            bars=[(row.name, row.first_response_median) for row in rows],
            format_value=lambda seconds: format_duration(seconds, language),
        ),
        "resolution": bar_chart(
            title=translate(request, "Erledigung: Median je Team"),
            description=translate(request, "Median der Zeit bis zur Erledigung je Team, {span}.").format(span=span),
            bars=[(row.name, row.resolution_median) for row in rows],
            format_value=lambda seconds: format_duration(seconds, language),
        ),
        "targets": bar_chart(
            title=translate(request, "Verfehlte Ziele für die erste Antwort"),
            description=translate(
                request, "Anteil der Vorgänge je Team, deren erste Antwort das Ziel verfehlte, {span}."
            ).format(span=span),
            bars=[(row.name, _percent(row.first_response_missed_share)) for row in rows],
            format_value=lambda share: f"{share:.0f} %",
        ),
        "broadcasts": bar_chart(
            title=translate(request, "Reichweite der Rundsendungen"),
            description=translate(request, "Zugestellte Nachrichten je Rundsendung, {span}.").format(span=span),
            bars=[(item.title, item.delivered) for item in reach],
        ),
    }
    visits: consultations.ConsultationReport = tables["consultations"][2]
    charts["ratings"] = daily_chart(
        title=translate(request, "Bewertungen der Sprechstunden und Vorgänge"),
        description=translate(
            request,
            "Durchschnittliche Bewertung (1 bis 5) der Rückmeldungen pro Tag, {span}; Tage ohne Rückmeldung zeigen 0.",
        ).format(span=span),
        days=visits.days,
        series=[(translate(request, "Bewertung, Durchschnitt"), [value or 0 for value in visits.average_per_day])],
    )
    return render(
        request,
        "staff/reports/index.html",
        title=translate(request, "Berichte"),
        period=period,
        tables=tables,
        times=times,
        reach=reach,
        messages=messages,
        charts=charts,
        share=_share,
        average=lambda value: "–" if value is None else f"{value:.1f}".replace(".", ","),
        comments_shown=consultations.COMMENTS_SHOWN,
        duration=lambda seconds: format_duration(seconds, language),
        target=lambda minutes: format_target(minutes, language),
    )


@router.get("/{report}.csv")
def report_csv(
    request: Request,
    report: str,
    start: str | None = None,
    end: str | None = None,
    staff: Staff = Depends(require("reports.read")),
    session: Session = Depends(get_session),
) -> Response:
    if report not in service.REPORTS:
        raise NotFound(N_("Diesen Bericht gibt es nicht."))
    period = _period(staff, start, end)
    header, rows, _data = _tables(request, session, staff, period)[report]
    filename = f"{report}_{period.start.isoformat()}_{period.end.isoformat()}.csv"
    return download(service.to_csv(_csv_header(header), rows), filename=filename, media_type="text/csv; charset=utf-8")
