"""The admins' page of the official warnings relay: the town's regional key, the action per source and severity,
the last poll and its error, and what became of the recent official warnings."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session
from starlette.datastructures import FormData

from hub.broadcasts.pages import SEVERITY_LABELS, STATUS_LABELS
from hub.db import get_session
from hub.errors import InvalidInput
from hub.i18n import N_, language_of, translate
from hub.official_warnings import relay
from hub.official_warnings.models import ACTIONS, WarningRelay
from hub.web.auth import Staff, require
from hub.web.forms import form_text, posted_form
from hub.web.rendering import render
from hub.web.security import verify_csrf

router = APIRouter(prefix="/app/admin/official-warnings", include_in_schema=False,
                   dependencies=[Depends(verify_csrf)])  # fmt: skip

# German msgids for what admins read; the template translates them.
SOURCE_LABELS = {
    "MOWAS": N_("MoWaS (Bund und Länder)"), "KATWARN": N_("KATWARN"), "BIWAPP": N_("BIWAPP"),
    "DWD": N_("Deutscher Wetterdienst (DWD)"), "LHP": N_("Hochwasserzentralen (LHP)"), "POLICE": N_("Polizei"),
}  # fmt: skip
ACTION_LABELS = {"draft": N_("Entwurf zur Freigabe"), "send": N_("Sofort senden"), "ignore": N_("Nicht weiterleiten")}
OUTCOME_LABELS = {
    "outside": N_("Nicht für die Gemeinde"), "ignored": N_("Nicht weitergeleitet (Einstellung)"),
    "drafted": N_("Als Entwurf angelegt"), "sent": N_("Sofort gesendet"),
    "unmatched": N_("Aufhebung einer Warnung, die nicht weitergeleitet wurde"),
    "withdrawn": N_("Entwurf zurückgezogen, keine Entwarnung nötig"), "pending": N_("In Bearbeitung"),
}  # fmt: skip
MESSAGE_TYPE_LABELS = {"Alert": N_("Neu"), "Update": N_("Aktualisiert"), "Cancel": N_("Aufgehoben")}
WARNING_SEVERITY_LABELS = {**SEVERITY_LABELS, "Unknown": N_("Unbekannt")}
DONE = {"saved": N_("Die Einstellungen der amtlichen Warnungen wurden gespeichert.")}


def _field(source: str, severity: str) -> str:
    return f"action-{source}-{severity}"


def _values(row: WarningRelay | None) -> dict[str, str]:
    """The form as the town's relay stands; a new relay drafts everything."""
    if row is None:
        return {"ars": "", "default_action": "draft"}
    values = {"ars": row.ars, "default_action": row.default_action}
    for source, by_severity in (row.actions or {}).items():
        for severity, action in by_severity.items():
            values[_field(source, severity)] = action
    return values


def _actions(form: FormData) -> dict[str, dict[str, str]]:
    """The actions the admin chose; a field left at "as the default" names nothing."""
    actions: dict[str, dict[str, str]] = {}
    for source in relay.SOURCES:
        for severity in relay.OFFICIAL_SEVERITIES:
            action = form_text(form, _field(source, severity))
            if action:
                actions.setdefault(source, {})[severity] = action
    return actions


def _page(request: Request, session: Session, staff: Staff, *, values: dict[str, str],
          messages: list[tuple[str, str]], status_code: int = 200) -> HTMLResponse:  # fmt: skip
    return render(
        request, "staff/admin/official_warnings.html", status_code=status_code,
        title=translate(request, "Amtliche Warnungen"), values=values, field_name=_field, messages=messages,
        relay=relay.relay_of(session, municipality_id=staff.municipality_id),
        outcomes=relay.recent_outcomes(session, municipality_id=staff.municipality_id),
        sources=relay.SOURCES, severities=relay.OFFICIAL_SEVERITIES, actions=ACTIONS, source_labels=SOURCE_LABELS,
        action_labels=ACTION_LABELS, outcome_labels=OUTCOME_LABELS, message_type_labels=MESSAGE_TYPE_LABELS,
        severity_labels=WARNING_SEVERITY_LABELS, status_labels=STATUS_LABELS,
    )  # fmt: skip


@router.get("", response_class=HTMLResponse)
def relay_page(request: Request, done: str | None = None, staff: Staff = Depends(require("admin")),
               session: Session = Depends(get_session)) -> HTMLResponse:  # fmt: skip
    messages = [("success", translate(request, DONE[done]))] if done in DONE else []
    values = _values(relay.relay_of(session, municipality_id=staff.municipality_id))
    return _page(request, session, staff, values=values, messages=messages)


@router.post("", response_class=HTMLResponse)
def save_relay(request: Request, form: FormData = Depends(posted_form), staff: Staff = Depends(require("admin")),
               session: Session = Depends(get_session)) -> Response:  # fmt: skip
    try:
        relay.configure(session, actor=staff.user, ars=form_text(form, "ars"), actions=_actions(form),
                        default_action=form_text(form, "default_action"))  # fmt: skip
    except InvalidInput as refusal:
        session.rollback()
        values = {key: value for key, value in form.items() if isinstance(value, str)}
        return _page(request, session, staff, values=values, status_code=422,
                     messages=[("error", refusal.text(language_of(request)))])  # fmt: skip
    session.commit()
    return RedirectResponse("/app/admin/official-warnings?done=saved", status_code=303)
