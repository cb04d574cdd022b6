"""Staff pages for broadcasts: the list and approval queue, the composer, and the detail page with live progress."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlmodel import Session, col, select
from starlette.datastructures import FormData

from channels.registry import adapter_classes, channel_labels
from hub.broadcasts import invitations, service
from hub.broadcasts.api import start_if_due
from hub.broadcasts.calendar_entry import calendar_url
from hub.broadcasts.confirmation import confirmation
from hub.broadcasts.models import BROADCAST_KINDS, KIND_LABELS, SEVERITIES, SEVERITY_LABELS, Broadcast
from hub.db import get_session
from hub.errors import InvalidInput, Term
from hub.i18n import N_, language_of, translate
from hub.settings import Settings, get_settings
from hub.subscribers.catalogue import list_districts, list_topics
from hub.tenancy.models import ChannelAccount, Municipality
from hub.tenancy.preferences import preference
from hub.web.auth import Staff, require
from hub.web.charts import bar_chart, count_with_share
from hub.web.downloads import download
from hub.web.rendering import render
from hub.web.security import verify_csrf
from workers.app import enqueue_broadcast_start, enqueue_send

router = APIRouter(prefix="/app/broadcasts", include_in_schema=False, dependencies=[Depends(verify_csrf)])

PER_PAGE = 25
STATUSES = ("draft", "pending_approval", "approved", "sending", "paused", "completed", "cancelled")
# German msgids for what staff read; the templates translate them.
STATUS_LABELS = {
    "draft": N_("Entwurf"), "pending_approval": N_("Wartet auf Freigabe"), "approved": N_("Freigegeben"),
    "sending": N_("Wird gesendet"), "paused": N_("Angehalten"), "completed": N_("Abgeschlossen"),
    "cancelled": N_("Abgebrochen"),
}  # fmt: skip
CHANNEL_LABELS = channel_labels()
# The composer's hint names the length limit of the texts sent and paid in parts.
SMS_LIMIT = min((a.max_body_chars for a in adapter_classes() if a.max_segments is not None), default=0)
DELIVERY_LABELS = {
    "queued": N_("in der Warteschlange"), "claimed": N_("in Arbeit"), "sending": N_("wird gesendet"),
    "sent": N_("gesendet"), "delivered": N_("zugestellt"), "read": N_("gelesen"),
    "failed": N_("fehlgeschlagen"),
    "skipped": N_("übersprungen"), "opted_out": N_("abgemeldet"), "cancelled": N_("abgebrochen"),
    "uncertain": N_("ungewiss"),
}  # fmt: skip
ACTION_LABELS = {
    "broadcast.drafted": N_("Entworfen"), "broadcast.edited": N_("Geändert"), "broadcast.submitted": N_("Eingereicht"),
    "broadcast.approved": N_("Freigegeben"),
    "broadcast.approved_in_emergency": N_("Im Notfall ohne zweite Person freigegeben"),
    "broadcast.paused": N_("Angehalten"),
    "broadcast.resumed": N_("Fortgesetzt"), "broadcast.cancelled": N_("Abgebrochen"),
    "broadcast.relayed": N_("Aus einer amtlichen Warnung erstellt"),
    "broadcast.withdrawn": N_("Zurückgezogen: Die amtliche Warnung wurde aufgehoben oder geändert"),
}  # fmt: skip
WAITING = ("queued", "claimed", "sending")
REACHED = ("sent", "delivered", "read")
LABELS: dict[str, Any] = {
    "status_labels": STATUS_LABELS, "kind_labels": KIND_LABELS, "severity_labels": SEVERITY_LABELS,
    "channel_labels": CHANNEL_LABELS, "delivery_labels": DELIVERY_LABELS, "action_labels": ACTION_LABELS,
}  # fmt: skip


async def _form(request: Request) -> FormData:
    """The posted form, read once (the CSRF check has read it already) for the synchronous routes."""
    return await request.form()


def _local_input(value: datetime | None, municipality: Municipality) -> str:
    """A UTC moment as the value of a datetime-local field in the municipality's time zone."""
    return value.astimezone(ZoneInfo(municipality.timezone)).strftime("%Y-%m-%dT%H:%M") if value else ""


def _parse_local(raw: str, municipality: Municipality, what: str) -> datetime | None:
    if not raw.strip():
        return None
    try:
        return datetime.fromisoformat(raw.strip()).replace(tzinfo=ZoneInfo(municipality.timezone))
    except ValueError:
        raise InvalidInput(N_("{what}: {raw!r} ist kein Datum mit Uhrzeit."), what=Term(what), raw=raw) from None


def _ids(form: FormData, name: str) -> list[int]:
    values = [value for value in form.getlist(name) if isinstance(value, str) and value]
    if not all(value.isdigit() for value in values):
        raise InvalidInput(N_("Ungültige Auswahl in {name}."), name=name)
    return [int(value) for value in values]


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _values_from_form(form: FormData) -> dict[str, Any]:
    """What the composer shows again after a post: the person's input, unchanged."""
    return {
        "kind": _text(form, "kind") or "announcement", "severity": _text(form, "severity"),
        "follows_id": _text(form, "follows_id"), "title": _text(form, "title"),
        "body_de": _text(form, "body_de"), "subject_de": _text(form, "subject_de"),
        "body_en": _text(form, "body_en"), "subject_en": _text(form, "subject_en"),
        "options": _text(form, "options"), "event_when": _text(form, "event_when"),
        "event_where": _text(form, "event_where"), "event_starts_at": _text(form, "event_starts_at"),
        "event_ends_at": _text(form, "event_ends_at"),
        "topic_ids": [v for v in form.getlist("topic_ids") if isinstance(v, str)],
        "topic_match": _text(form, "topic_match") or "any",
        "district_ids": [v for v in form.getlist("district_ids") if isinstance(v, str)],
        "district_match": _text(form, "district_match") or "any",
        "channels": [v for v in form.getlist("channels") if isinstance(v, str)],
        "fallback": bool(form.get("fallback")), "send_at": _text(form, "send_at"),
        "closes_at": _text(form, "closes_at"),
    }  # fmt: skip


def _values_from_broadcast(broadcast: Broadcast, municipality: Municipality) -> dict[str, Any]:
    texts = broadcast.texts
    return {
        "kind": broadcast.kind, "severity": broadcast.severity or "", "follows_id": str(broadcast.follows_id or ""),
        "title": broadcast.title, "body_de": texts.get("de", {}).get("body", ""),
        "subject_de": texts.get("de", {}).get("subject", ""), "body_en": texts.get("en", {}).get("body", ""),
        "subject_en": texts.get("en", {}).get("subject", ""), "options": "\n".join(broadcast.options),
        "event_when": broadcast.event.get("when", ""), "event_where": broadcast.event.get("where", ""),
        "event_starts_at": _local_input(broadcast.event_starts_at, municipality),
        "event_ends_at": _local_input(broadcast.event_ends_at, municipality),
        "topic_ids": [str(i) for i in broadcast.topic_ids], "topic_match": broadcast.topic_match,
        "district_ids": [str(i) for i in broadcast.district_ids], "district_match": broadcast.district_match,
        "channels": list(broadcast.channel_kinds), "fallback": broadcast.fallback,
        "send_at": _local_input(broadcast.send_at, municipality),
        "closes_at": _local_input(broadcast.closes_at, municipality),
    }  # fmt: skip


def _draft(form: FormData, municipality: Municipality) -> service.Draft:
    """The composer's form as the service's Draft; the service validates the content."""
    texts = {"de": {"body": _text(form, "body_de")}}
    if _text(form, "subject_de"):
        texts["de"]["subject"] = _text(form, "subject_de")
    if _text(form, "body_en"):
        texts["en"] = {"body": _text(form, "body_en")}
        if _text(form, "subject_en"):
            texts["en"]["subject"] = _text(form, "subject_en")
    kind = _text(form, "kind")
    follows = _text(form, "follows_id")
    if follows and not follows.isdigit():
        raise InvalidInput(N_("Ungültige Warnung für die Entwarnung."))
    event = {key: _text(form, f"event_{key}") for key in ("when", "where") if _text(form, f"event_{key}")}
    return service.Draft(
        kind=kind, title=_text(form, "title"), texts=texts,
        severity=(_text(form, "severity") or None) if kind in service.URGENT_KINDS else None,
        follows_id=int(follows) if follows and kind == "all_clear" else None,
        topic_ids=_ids(form, "topic_ids"), topic_match=_text(form, "topic_match") or "any",
        district_ids=_ids(form, "district_ids"), district_match=_text(form, "district_match") or "any",
        channel_kinds=[v for v in form.getlist("channels") if isinstance(v, str)], fallback=bool(form.get("fallback")),
        options=[line.strip() for line in _text(form, "options").splitlines() if line.strip()]
        if kind in ("survey", "invitation") else [],
        event=event if kind == "invitation" else None,
        event_starts_at=_parse_local(_text(form, "event_starts_at"), municipality, N_("Beginn der Veranstaltung"))
        if kind == "invitation" else None,
        event_ends_at=_parse_local(_text(form, "event_ends_at"), municipality, N_("Ende der Veranstaltung"))
        if kind == "invitation" else None,
        closes_at=_parse_local(_text(form, "closes_at"), municipality, N_("Ende der Umfrage")),
        send_at=_parse_local(_text(form, "send_at"), municipality, N_("Versandzeit")),
    )  # fmt: skip


def _count(session: Session, staff: Staff, topic_ids: list[int], topic_match: str, district_ids: list[int],
           district_match: str) -> int:  # fmt: skip
    by_language = service.recipients_by_language(
        session, municipality_id=staff.municipality_id, topic_ids=topic_ids, topic_match=topic_match,
        district_ids=district_ids, district_match=district_match,
    )  # fmt: skip
    return sum(by_language.values())


def _connected_kinds(session: Session, municipality_id: int) -> list[str]:
    return sorted(
        set(
            session.exec(
                select(ChannelAccount.kind).where(
                    ChannelAccount.municipality_id == municipality_id,
                    ChannelAccount.active == True,  # noqa: E712
                )
            )
        )
    )


def _composer(request: Request, session: Session, staff: Staff, *, values: dict[str, Any],
              broadcast: Broadcast | None = None, error: str | None = None, count: int | None = None,
              saved: bool = False, status_code: int = 200) -> HTMLResponse:  # fmt: skip
    warnings = session.exec(
        select(Broadcast)
        .where(Broadcast.municipality_id == staff.municipality_id, Broadcast.kind == "warning")
        .order_by(col(Broadcast.created_at).desc())
        .limit(20)
    ).all()
    preview = None
    if broadcast is not None and broadcast.id is not None and error is None:
        preview = service.preview_broadcast(session, municipality_id=staff.municipality_id, broadcast_id=broadcast.id)
    title = translate(request, "Rundsendung bearbeiten") if broadcast else translate(request, "Neue Rundsendung")
    return render(
        request, "staff/broadcasts/compose.html", status_code=status_code, title=title, values=values,
        broadcast=broadcast, error=error, count=count, saved=saved, preview=preview, kinds=BROADCAST_KINDS,
        severities=SEVERITIES,
        topics=list_topics(session, municipality_id=staff.municipality_id),
        districts=list_districts(session, municipality_id=staff.municipality_id),
        channel_kinds=_connected_kinds(session, staff.municipality_id), warnings=warnings,
        sms_limit=SMS_LIMIT, **LABELS,
    )  # fmt: skip


def _save(request: Request, session: Session, staff: Staff, form: FormData,
          broadcast: Broadcast | None) -> Response:  # fmt: skip
    """Saves (and, if asked, submits) the draft, or counts recipients; errors go back to the composer."""
    values = _values_from_form(form)
    action = _text(form, "action")
    try:
        draft = _draft(form, staff.municipality)
        if action == "count":
            count = _count(session, staff, list(draft.topic_ids), draft.topic_match, list(draft.district_ids),
                           draft.district_match)  # fmt: skip
            return _composer(request, session, staff, values=values, broadcast=broadcast, count=count)
        if broadcast is None:
            broadcast = service.create(session, author=staff.user, draft=draft)
        else:
            assert broadcast.id is not None
            broadcast = service.update_draft(session, actor=staff.user, broadcast_id=broadcast.id, draft=draft)
        assert broadcast.id is not None
        if action == "submit":
            service.submit(session, actor=staff.user, broadcast_id=broadcast.id)
    except InvalidInput as problem:
        session.rollback()
        return _composer(
            request, session, staff, values=values, broadcast=broadcast if broadcast and broadcast.id else None,
            error=problem.text(language_of(request)), status_code=422,
        )  # fmt: skip
    session.commit()
    target = f"/app/broadcasts/{broadcast.id}" if action == "submit" else f"/app/broadcasts/{broadcast.id}/edit"
    return RedirectResponse(target + "?saved=1", status_code=303)


@router.get("", response_class=HTMLResponse)
def broadcast_list(
    request: Request, status: str = "", page: int = 1, staff: Staff = Depends(require("broadcasts.read")),
    session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    page = max(page, 1)
    wanted = status if status in STATUSES else None
    items, total = service.list_broadcasts(
        session, municipality_id=staff.municipality_id, status=wanted, page=page, per_page=PER_PAGE
    )
    queue: list[Broadcast] = []
    waiting = 0
    if staff.can("broadcasts.approve"):
        queue, waiting = service.list_broadcasts(
            session, municipality_id=staff.municipality_id, status="pending_approval", per_page=50
        )
    return render(
        request, "staff/broadcasts/list.html", title=translate(request, "Rundsendungen"), items=items, total=total,
        page=page, pages=max(1, math.ceil(total / PER_PAGE)), status=wanted or "", statuses=STATUSES, queue=queue,
        waiting=waiting, **LABELS,
    )  # fmt: skip


@router.get("/new", response_class=HTMLResponse)
def new_broadcast(
    request: Request, staff: Staff = Depends(require("broadcasts.draft")), session: Session = Depends(get_session)
) -> HTMLResponse:
    return _composer(request, session, staff, values=_values_from_form(FormData()))


@router.post("/new", response_class=HTMLResponse)
def create_broadcast(
    request: Request, form: FormData = Depends(_form), staff: Staff = Depends(require("broadcasts.draft")),
    session: Session = Depends(get_session),
) -> Response:  # fmt: skip
    return _save(request, session, staff, form, None)


@router.get("/count")
def recipient_count(
    request: Request, topic_match: str = "any", district_match: str = "any",
    staff: Staff = Depends(require("broadcasts.draft")), session: Session = Depends(get_session),
) -> JSONResponse:  # fmt: skip
    """How many active subscribers the composer's current targeting reaches; its script asks as staff choose."""
    params = request.query_params
    form = FormData([(key, value) for key, value in params.multi_items() if key in ("topic_ids", "district_ids")])
    count = _count(session, staff, _ids(form, "topic_ids"), topic_match, _ids(form, "district_ids"), district_match)
    text = translate(request, "{count} Empfängerinnen und Empfänger").format(count=count)
    return JSONResponse({"recipients": count, "text": text})


@router.get("/{broadcast_id}/edit", response_class=HTMLResponse)
def edit_broadcast(
    request: Request, broadcast_id: int, saved: bool = False, staff: Staff = Depends(require("broadcasts.draft")),
    session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    broadcast = service.get(session, municipality_id=staff.municipality_id, broadcast_id=broadcast_id)
    if broadcast.status not in ("draft", "pending_approval"):
        return render(
            request, "staff/error.html", status_code=409, title=translate(request, "Das geht gerade nicht"),
            message=translate(request, "Diese Rundsendung ist freigegeben und lässt sich nicht mehr ändern."),
            back=f"/app/broadcasts/{broadcast_id}",
        )  # fmt: skip
    count = _count(session, staff, broadcast.topic_ids, broadcast.topic_match, broadcast.district_ids,
                   broadcast.district_match)  # fmt: skip
    return _composer(
        request, session, staff, values=_values_from_broadcast(broadcast, staff.municipality), broadcast=broadcast,
        count=count, saved=saved,
    )  # fmt: skip


@router.post("/{broadcast_id}/edit", response_class=HTMLResponse)
def update_broadcast(
    request: Request, broadcast_id: int, form: FormData = Depends(_form),
    staff: Staff = Depends(require("broadcasts.draft")), session: Session = Depends(get_session),
) -> Response:  # fmt: skip
    broadcast = service.get(session, municipality_id=staff.municipality_id, broadcast_id=broadcast_id)
    return _save(request, session, staff, form, broadcast)


def _progress(report: dict[str, Any]) -> dict[str, Any]:
    """The counts the progress bar shows: reached, failed, still waiting, out of all recipients."""
    totals = report["totals"]
    sent = sum(totals[state] for state in REACHED)
    waiting = sum(totals[state] for state in WAITING)
    failed = sum(totals[state] for state in service.FAILED_STATES)
    recipients = report["recipients"] or 0
    finished = report["status"] in ("completed", "cancelled")
    return {
        "status": report["status"], "recipients": recipients, "sent": sent, "failed": failed, "queued": waiting,
        "cancelled": totals["cancelled"], "done": sum(count for state, count in totals.items() if state not in WAITING),
        "finished": finished,
        # Until the recipients are chosen their number is unknown, not zero.
        "selecting": report["recipients"] is None and not finished,
    }  # fmt: skip


@router.get("/{broadcast_id}/progress")
def broadcast_progress(
    request: Request, broadcast_id: int, staff: Staff = Depends(require("broadcasts.read")),
    session: Session = Depends(get_session),
) -> JSONResponse:  # fmt: skip
    """The live counts, polled by the detail page's script while the broadcast goes out."""
    found = _progress(service.report(session, municipality_id=staff.municipality_id, broadcast_id=broadcast_id))
    found["text"] = _progress_text(request, found)
    found["status_text"] = translate(request, STATUS_LABELS.get(found["status"], found["status"]))
    return JSONResponse(found)


def _progress_text(request: Request, found: dict[str, Any]) -> str:
    if found["selecting"]:
        if found["status"] == "sending":
            return translate(request, "Empfänger werden ausgewählt …")
        return translate(request, "Der Versand hat noch nicht begonnen.")
    return translate(request, "{sent} gesendet, {failed} fehlgeschlagen, {queued} wartend von {recipients}").format(
        **found
    )


@router.get("/{broadcast_id}/report.csv")
def broadcast_report_csv(
    broadcast_id: int, staff: Staff = Depends(require("broadcasts.read")), session: Session = Depends(get_session)
) -> Response:
    text = service.report_csv(session, municipality_id=staff.municipality_id, broadcast_id=broadcast_id)
    return download(text, filename=f"versand-{broadcast_id}.csv", media_type="text/csv; charset=utf-8")


@router.get("/{broadcast_id}", response_class=HTMLResponse)
def broadcast_detail(
    request: Request, broadcast_id: int, page: int = 1, staff: Staff = Depends(require("broadcasts.read")),
    session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    broadcast = service.get(session, municipality_id=staff.municipality_id, broadcast_id=broadcast_id)
    report = service.report(session, municipality_id=staff.municipality_id, broadcast_id=broadcast_id)
    progress = _progress(report)
    page = max(page, 1)
    failures, failure_total = service.failures(
        session, municipality_id=staff.municipality_id, broadcast_id=broadcast_id, page=page, per_page=PER_PAGE
    )
    preview = None
    if broadcast.status in ("draft", "pending_approval", "approved"):
        preview = service.preview_broadcast(session, municipality_id=staff.municipality_id, broadcast_id=broadcast_id)
    chart = None
    if report.get("answers") and broadcast.status not in ("draft", "pending_approval"):
        answers = [(answer["option"], answer["count"]) for answer in report["answers"]]
        chart = bar_chart(
            bars=answers, format_value=count_with_share(sum(count for _, count in answers)),
            title=translate(request, "Antworten auf „{title}“").format(title=broadcast.title),
            description="; ".join(f"{option}: {count}" for option, count in answers),
        )  # fmt: skip
    topics = {t.id: t for t in list_topics(session, municipality_id=staff.municipality_id)}
    districts = {d.id: d for d in list_districts(session, municipality_id=staff.municipality_id)}
    return render(
        request, "staff/broadcasts/detail.html", title=broadcast.title, broadcast=broadcast, report=report,
        progress=progress, progress_text=_progress_text(request, progress),
        trail=service.trail(session, municipality_id=staff.municipality_id, broadcast_id=broadcast_id),
        failures=failures, failure_total=failure_total, page=page,
        pages=max(1, math.ceil(failure_total / PER_PAGE)), preview=preview, chart=chart,
        topic_names=[topics[i].name_de for i in broadcast.topic_ids if i in topics],
        district_names=[districts[i].name for i in broadcast.district_ids if i in districts],
        saved=request.query_params.get("saved") == "1", urgent=broadcast.kind in service.URGENT_KINDS,
        calendar_url=calendar_url(get_settings(), broadcast),
        reschedule_starts=_local_input(broadcast.event_starts_at, staff.municipality),
        reschedule_ends=_local_input(broadcast.event_ends_at, staff.municipality),
        four_eyes=preference(staff.municipality, "broadcast_four_eyes"),
        quiet_shift=service.quiet_hours_shift(session, broadcast), **LABELS,
    )  # fmt: skip


def _done(broadcast_id: int) -> RedirectResponse:
    return RedirectResponse(f"/app/broadcasts/{broadcast_id}", status_code=303)


@router.post("/{broadcast_id}/submit")
def submit_broadcast(
    broadcast_id: int, staff: Staff = Depends(require("broadcasts.draft")), session: Session = Depends(get_session)
) -> RedirectResponse:
    service.submit(session, actor=staff.user, broadcast_id=broadcast_id)
    session.commit()
    return _done(broadcast_id)


# The two ways out of the confirmation page: approving what was submitted, and a warning sent straight from the draft.
CONFIRM_STEPS = {
    "approve": (("pending_approval",), False),
    "send-warning": (("draft",), True),
}


def _confirm_page(request: Request, session: Session, staff: Staff, broadcast_id: int, step: str) -> HTMLResponse:
    """What will happen, with the one button that does it; a broadcast not in the step's state gets a 409 page."""
    statuses, urgent_only = CONFIRM_STEPS[step]
    broadcast = service.get(session, municipality_id=staff.municipality_id, broadcast_id=broadcast_id)
    if broadcast.status not in statuses or (urgent_only and broadcast.kind not in service.URGENT_KINDS):
        return render(
            request, "staff/error.html", status_code=409, title=translate(request, "Das geht gerade nicht"),
            message=translate(request, "Diese Rundsendung lässt sich in ihrem Zustand so nicht senden."),
            back=f"/app/broadcasts/{broadcast_id}",
        )  # fmt: skip
    found = confirmation(session, actor=staff.user, broadcast_id=broadcast_id)
    title = translate(request, "Warnung senden") if urgent_only else translate(request, "Freigeben und senden")
    return render(
        request, "staff/broadcasts/confirm.html", title=title, step=step, confirmation=found, broadcast=broadcast,
        **LABELS,
    )  # fmt: skip


def _emergency_reason(form: FormData) -> str | None:
    """The reason typed for sending without a second person, when that button was pressed; None otherwise."""
    return _text(form, "emergency_reason") if form.get("emergency") == "1" else None


@router.get("/{broadcast_id}/approve", response_class=HTMLResponse)
def confirm_approval(
    request: Request, broadcast_id: int, staff: Staff = Depends(require("broadcasts.approve")),
    session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    return _confirm_page(request, session, staff, broadcast_id, "approve")


@router.post("/{broadcast_id}/approve")
def approve_broadcast(
    broadcast_id: int, form: FormData = Depends(_form), staff: Staff = Depends(require("broadcasts.approve")),
    session: Session = Depends(get_session),
) -> RedirectResponse:  # fmt: skip
    reason = _emergency_reason(form)
    broadcast = service.approve(session, actor=staff.user, broadcast_id=broadcast_id, emergency_reason=reason)
    session.commit()
    start_if_due(broadcast)
    return _done(broadcast_id)


@router.get("/{broadcast_id}/send-warning", response_class=HTMLResponse)
def confirm_warning(
    request: Request, broadcast_id: int, staff: Staff = Depends(require("warnings.send")),
    session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    return _confirm_page(request, session, staff, broadcast_id, "send-warning")


@router.post("/{broadcast_id}/send-warning")
def send_warning(
    broadcast_id: int, form: FormData = Depends(_form), staff: Staff = Depends(require("warnings.send")),
    session: Session = Depends(get_session),
) -> RedirectResponse:  # fmt: skip
    """A warning or all-clear goes out straight from the draft, by a second person or as an emergency."""
    broadcast = service.get(session, municipality_id=staff.municipality_id, broadcast_id=broadcast_id)
    if broadcast.kind not in service.URGENT_KINDS:
        raise InvalidInput(N_("Sofort senden lässt sich nur eine Warnung oder Entwarnung."))
    reason = _emergency_reason(form)
    broadcast = service.approve(session, actor=staff.user, broadcast_id=broadcast_id, emergency_reason=reason)
    session.commit()
    start_if_due(broadcast)
    return _done(broadcast_id)


@router.post("/{broadcast_id}/pause")
def pause_broadcast(
    broadcast_id: int, staff: Staff = Depends(require("broadcasts.approve")), session: Session = Depends(get_session)
) -> RedirectResponse:
    service.pause(session, actor=staff.user, broadcast_id=broadcast_id)
    session.commit()
    return _done(broadcast_id)


@router.post("/{broadcast_id}/resume")
def resume_broadcast(
    broadcast_id: int, staff: Staff = Depends(require("broadcasts.approve")), session: Session = Depends(get_session)
) -> RedirectResponse:
    broadcast = service.resume(session, actor=staff.user, broadcast_id=broadcast_id)
    session.commit()
    enqueue_broadcast_start(broadcast_id, urgent=broadcast.kind in service.URGENT_KINDS)
    return _done(broadcast_id)


def _told(session: Session, told: invitations.Told) -> RedirectResponse:
    """Commits the change with its messages to those invited, hands the messages to the workers, shows the broadcast."""
    session.commit()
    for message_id in told.message_ids:
        enqueue_send(message_id)
    assert told.broadcast.id is not None
    return _done(told.broadcast.id)


@router.post("/{broadcast_id}/cancel")
def cancel_broadcast(
    broadcast_id: int, staff: Staff = Depends(require("broadcasts.draft")), session: Session = Depends(get_session),
    settings: Settings = Depends(get_settings),
) -> RedirectResponse:  # fmt: skip
    """Staff may withdraw their drafts; once approved, the service lets only a mayor or admin stop it (or call an
    invitation off)."""
    return _told(session, invitations.cancel(session, settings=settings, actor=staff.user, broadcast_id=broadcast_id))


@router.post("/{broadcast_id}/reschedule")
def reschedule_invitation(
    broadcast_id: int, starts_at: str = Form(""), ends_at: str = Form(""), where: str = Form(""),
    staff: Staff = Depends(require("broadcasts.approve")), session: Session = Depends(get_session),
    settings: Settings = Depends(get_settings),
) -> RedirectResponse:  # fmt: skip
    """A sent invitation's new time or place, to everyone invited."""
    starts = _parse_local(starts_at, staff.municipality, N_("Beginn der Veranstaltung"))
    if starts is None:
        raise InvalidInput(N_("Geben Sie den neuen Beginn der Veranstaltung an."))
    told = invitations.reschedule(
        session, settings=settings, actor=staff.user, broadcast_id=broadcast_id, starts_at=starts,
        ends_at=_parse_local(ends_at, staff.municipality, N_("Ende der Veranstaltung")), where=where,
    )  # fmt: skip
    return _told(session, told)
