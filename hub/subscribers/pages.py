"""Staff pages for subscribers: search, one subscriber's record, STOP, GDPR export and erasure, import, topics.

The CSV import runs within the upload request, not in a worker: it is all or nothing, a list
of a few thousand lines is checked and imported in seconds, and so it works the same in the
embedded and the production setup with no progress table to keep. Without script the form
posts and the page shows every line's outcome; with script the same import streams its
progress (lines checked, then imported) to a <progress> bar, one JSON line per step.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlmodel import Session

from channels.registry import identity_labels
from hub.contacts import gdpr
from hub.contacts.registry import SUBSCRIBER_PAGE, contact_record
from hub.db import get_session, session_scope
from hub.errors import DomainError, InvalidInput
from hub.i18n import DEFAULT_LANGUAGE, N_, language_of, translate
from hub.subscribers import catalogue, consent, importer, listing
from hub.tenancy.models import Municipality
from hub.web.auth import Staff, require
from hub.web.downloads import download
from hub.web.rendering import environment, render
from hub.web.security import verify_csrf

log = logging.getLogger(__name__)

router = APIRouter(prefix="/app/subscribers", include_in_schema=False, dependencies=[Depends(verify_csrf)])

PER_PAGE = 25
MAX_IMPORT_BYTES = 5 * 1024 * 1024
STATE_LABELS = {"pending": N_("unbestätigt"), "active": N_("aktiv"), "stopped": N_("abgemeldet")}
IDENTITY_LABELS = identity_labels()
ACTION_LABELS = {
    "subscribed": N_("angemeldet"), "confirmed": N_("bestätigt"), "topics_changed": N_("Auswahl geändert"),
    "stopped": N_("abgemeldet"), "restarted": N_("wieder angemeldet"), "imported": N_("importiert"),
    "erased": N_("gelöscht"), "opted_in": N_("Einwilligung auf dem Kanal"),
}  # fmt: skip
LABELS: dict[str, Any] = {
    "state_labels": STATE_LABELS,
    "identity_labels": IDENTITY_LABELS,
    "action_labels": ACTION_LABELS,
}


@router.get("", response_class=HTMLResponse)
def subscriber_list(
    request: Request, q: str = "", state: str = "", topic: str = "", district: str = "", channel: str = "",
    page: int = 1, staff: Staff = Depends(require("subscribers.read")), session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    filters = {
        "q": q.strip(), "state": state if state in consent.STATES else "", "topic": topic, "district": district,
        "channel": channel if channel in IDENTITY_LABELS else "",
    }  # fmt: skip
    found = listing.list_subscribers(
        session, municipality_id=staff.municipality_id, state=filters["state"] or None, topic=topic or None,
        district=district or None, search=filters["q"] or None, channel=filters["channel"] or None,
        page=max(page, 1), per_page=PER_PAGE,
    )  # fmt: skip
    query = "&".join(f"{key}={value}" for key, value in filters.items() if value)
    return render(
        request, "staff/subscribers/list.html", title=translate(request, "Abonnenten"), found=found,
        filters=filters, query=query, states=consent.STATES,
        topics=catalogue.list_topics(session, municipality_id=staff.municipality_id),
        districts=catalogue.list_districts(session, municipality_id=staff.municipality_id), **LABELS,
    )  # fmt: skip


def _catalogue(request: Request, session: Session, staff: Staff, *, error: str | None = None,
               success: str | None = None, status_code: int = 200) -> HTMLResponse:  # fmt: skip
    return render(
        request, "staff/subscribers/topics.html", status_code=status_code,
        title=translate(request, "Themen und Ortsteile"), error=error, success=success,
        topics=catalogue.list_topics(session, municipality_id=staff.municipality_id),
        districts=catalogue.list_districts(session, municipality_id=staff.municipality_id),
    )  # fmt: skip


@router.get("/topics", response_class=HTMLResponse)
def topics_page(
    request: Request, staff: Staff = Depends(require("subscribers.read")), session: Session = Depends(get_session)
) -> HTMLResponse:
    return _catalogue(request, session, staff)


def _catalogue_change(
    request: Request, session: Session, staff: Staff, change: Callable[[], object], done: str
) -> HTMLResponse:
    """Runs one create or rename and shows the page again, with what happened or what was wrong."""
    try:
        change()
    except DomainError as problem:
        session.rollback()
        return _catalogue(
            request, session, staff, error=problem.text(language_of(request)), status_code=problem.status_code
        )
    session.commit()
    return _catalogue(request, session, staff, success=translate(request, done))


@router.post("/topics", response_class=HTMLResponse)
def create_topic(
    request: Request, key: Annotated[str, Form()] = "", name_de: Annotated[str, Form()] = "",
    name_en: Annotated[str, Form()] = "", is_warning: Annotated[bool, Form()] = False,
    staff: Staff = Depends(require("subscribers.write")), session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    return _catalogue_change(
        request, session, staff,
        lambda: catalogue.create_topic(session, municipality_id=staff.municipality_id, key=key, name_de=name_de,
                                     name_en=name_en or None, is_warning=is_warning),
        N_("Das Thema ist angelegt."),
    )  # fmt: skip


@router.post("/topics/{topic_id}", response_class=HTMLResponse)
def rename_topic(
    request: Request, topic_id: int, name_de: Annotated[str, Form()] = "", name_en: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("subscribers.write")), session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    return _catalogue_change(
        request, session, staff,
        lambda: catalogue.rename_topic(session, municipality_id=staff.municipality_id, topic_id=topic_id,
                                     name_de=name_de, name_en=name_en),
        N_("Das Thema ist umbenannt."),
    )  # fmt: skip


@router.post("/districts", response_class=HTMLResponse)
def create_district(
    request: Request, key: Annotated[str, Form()] = "", name: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("subscribers.write")), session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    return _catalogue_change(
        request, session, staff,
        lambda: catalogue.create_district(session, municipality_id=staff.municipality_id, key=key, name=name),
        N_("Der Ortsteil ist angelegt."),
    )  # fmt: skip


@router.post("/districts/{district_id}", response_class=HTMLResponse)
def rename_district(
    request: Request, district_id: int, name: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("subscribers.write")), session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    return _catalogue_change(
        request, session, staff,
        lambda: catalogue.rename_district(session, municipality_id=staff.municipality_id, district_id=district_id,
                                        name=name),
        N_("Der Ortsteil ist umbenannt."),
    )  # fmt: skip


@router.get("/import", response_class=HTMLResponse)
def import_form(request: Request, _staff: Staff = Depends(require("subscribers.write"))) -> HTMLResponse:
    return render(request, "staff/subscribers/import.html", title=translate(request, "Abonnenten importieren"),
                  checked=None, imported=None, file_name="", columns=importer.COLUMN_NAMES)  # fmt: skip


@router.get("/import/sample.csv")
def import_sample(
    staff: Staff = Depends(require("subscribers.write")), session: Session = Depends(get_session)
) -> Response:
    """A file to fill in, with the town's own topics and districts in its example lines."""
    sample = importer.sample_csv(session, municipality_id=staff.municipality_id)
    return download(sample, filename="abonnenten-vorlage.csv", media_type="text/csv; charset=utf-8")


async def _read_upload(file: UploadFile) -> tuple[str, str]:
    """The uploaded CSV as text, and its name for the consent record."""
    raw = await file.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        raise InvalidInput(N_("Die Datei ist größer als 5 MB; bitte teilen Sie sie auf."))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(N_("Die Datei ist nicht in UTF-8 gespeichert.")) from None
    return text, (file.filename or "import.csv")[:200]


def _run_import(session: Session, municipality: Municipality, text: str, name: str,
                progress: Callable[[str, int], None] | None = None,
                ) -> tuple[importer.Checked, list[importer.Imported] | None]:  # fmt: skip
    """Checks every line; only a file without problems is imported, all in one transaction."""
    checked = importer.validate(
        session, municipality=municipality, text=text, progress=(lambda n: progress("check", n)) if progress else None
    )
    if not checked.ok:
        return checked, None
    imported = importer.import_rows(
        session, municipality=municipality, rows=checked.rows, file_name=name,
        progress=(lambda n: progress("import", n)) if progress else None,
    )  # fmt: skip
    session.commit()
    return checked, imported


@router.post("/import", response_class=HTMLResponse)
async def import_upload(
    request: Request, file: Annotated[UploadFile, File()], staff: Staff = Depends(require("subscribers.write")),
    session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    """Without script: the whole import in the request, then every line's outcome."""
    text, name = await _read_upload(file)
    checked, imported = _run_import(session, staff.municipality, text, name)
    return render(
        request, "staff/subscribers/import.html", status_code=200 if checked.ok else 422,
        title=translate(request, "Abonnenten importieren"), checked=checked, imported=imported, file_name=name,
        columns=importer.COLUMN_NAMES,
    )  # fmt: skip


@router.post("/import/progress")
async def import_with_progress(
    request: Request, file: Annotated[UploadFile, File()], staff: Staff = Depends(require("subscribers.write"))
) -> StreamingResponse:
    """With script: the same import, answered as one JSON line per step so the page's progress bar follows it.

    The work runs in a thread with its own session, and its progress reaches the response
    through a queue; the last line carries the outcome, rendered as on the page without script.
    """
    text, name = await _read_upload(file)
    lines = max(len(text.splitlines()) - 1, 1)
    language = getattr(request.state, "language", DEFAULT_LANGUAGE)
    municipality_id = staff.municipality_id
    events: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def work() -> None:
        done = {"check": 0, "import": 0}
        every = max(lines // 50, 1)

        def step(phase: str, count: int) -> None:
            done[phase] += count
            if done[phase] % every == 0 or done[phase] == lines:
                events.put({"phase": phase, "done": done[phase], "total": lines})

        try:
            with session_scope() as session:
                municipality = session.get(Municipality, municipality_id)
                assert municipality is not None
                checked, imported = _run_import(session, municipality, text, name, step)
            html = (
                environment(language)
                .get_template("ui/staff/subscribers/import_result.html")
                .render(checked=checked, imported=imported, file_name=name)
            )
            count = None if imported is None else len(imported)
            events.put({"phase": "done", "ok": checked.ok, "imported": count, "html": html})
        except Exception:
            log.exception("subscriber import failed")
            events.put({"phase": "failed"})
        finally:
            events.put(None)

    threading.Thread(target=work, name="subscriber-import", daemon=True).start()

    def stream() -> Iterator[str]:
        while (event := events.get()) is not None:
            yield json.dumps(event, ensure_ascii=False) + "\n"

    return StreamingResponse(stream(), media_type="application/x-ndjson")


@router.get("/{contact_id}", response_class=HTMLResponse)
def subscriber_detail(
    request: Request, contact_id: int, staff: Staff = Depends(require("subscribers.read")),
    session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    found = listing.get_subscriber(session, municipality_id=staff.municipality_id, contact_id=contact_id)
    events = consent.consent_history(session, municipality_id=staff.municipality_id, contact_id=contact_id)
    handled = listing.handled_without_case(session, municipality_id=staff.municipality_id, contact_id=contact_id)
    name = found.contact.display_name or translate(request, "Kontakt {id}").format(id=contact_id)
    return render(
        request, "staff/subscribers/detail.html", title=name, found=found, events=events, handled=handled,
        stopped=request.query_params.get("stopped") == "1", **LABELS,
        **contact_record(session, page=SUBSCRIBER_PAGE, municipality_id=staff.municipality_id, contact_id=contact_id),
    )  # fmt: skip


@router.post("/{contact_id}/stop")
def stop_subscription(
    contact_id: int, staff: Staff = Depends(require("subscribers.write")), session: Session = Depends(get_session)
) -> RedirectResponse:
    """Records a STOP the citizen gave by phone, letter or at the counter."""
    listing.get_subscriber(session, municipality_id=staff.municipality_id, contact_id=contact_id)
    consent.stop(
        session, municipality_id=staff.municipality_id, contact_id=contact_id, channel_kind=None, source="api",
        evidence={"actor_id": staff.user_id, "via": "staff page"},
    )  # fmt: skip
    session.commit()
    return RedirectResponse(f"/app/subscribers/{contact_id}?stopped=1", status_code=303)


@router.get("/{contact_id}/export")
def export_data(
    contact_id: int, staff: Staff = Depends(require("subscribers.write")), session: Session = Depends(get_session)
) -> Response:
    """Everything about the citizen as one JSON file (DSGVO Art. 15), to hand to them."""
    document = gdpr.export_contact(session, staff.municipality_id, contact_id)
    return download(
        json.dumps(document, ensure_ascii=False, indent=2, default=str),
        filename=f"kontakt-{contact_id}.json",
        media_type="application/json",
    )


@router.get("/{contact_id}/erase", response_class=HTMLResponse)
def erase_confirm(
    request: Request, contact_id: int, staff: Staff = Depends(require("subscribers.erase")),
    session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    found = listing.get_subscriber(session, municipality_id=staff.municipality_id, contact_id=contact_id)
    return render(request, "staff/subscribers/erase.html", title=translate(request, "Daten löschen"), found=found,
                  error=None, kept=None, **LABELS)  # fmt: skip


@router.post("/{contact_id}/erase", response_class=HTMLResponse)
def erase_data(
    request: Request, contact_id: int, confirm: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("subscribers.erase")), session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    """Erases the citizen's personal data (DSGVO Art. 17) once the admin has ticked the confirmation."""
    found = listing.get_subscriber(session, municipality_id=staff.municipality_id, contact_id=contact_id)
    if confirm != "yes":
        error = translate(request, "Bitte bestätigen Sie, dass die Daten gelöscht werden sollen.")
        return render(
            request, "staff/subscribers/erase.html", status_code=422, title=translate(request, "Daten löschen"),
            found=found, error=error, kept=None, **LABELS,
        )  # fmt: skip
    kept = gdpr.erase_contact(session, municipality_id=staff.municipality_id, contact_id=contact_id,
                              actor_id=staff.user_id)  # fmt: skip
    session.commit()
    return render(request, "staff/subscribers/erase.html", title=translate(request, "Daten gelöscht"), found=None,
                  error=None, kept=kept, **LABELS)  # fmt: skip
