"""The staff inbox in the browser: the list, a conversation with its tools, live updates, labels and canned replies."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from sqlmodel import Session

from channels.registry import adapter_class, adapter_classes, channel_labels, identity_labels
from hub.contacts.merge import merge
from hub.contacts.models import NAME_FROM_CHANNEL, NAME_FROM_CITIZEN, NAME_FROM_STAFF
from hub.contacts.registry import CONVERSATION_PANEL, contact_record
from hub.contacts.service import get_contact, identities_of
from hub.db import get_engine, get_session, utcnow
from hub.errors import Conflict, DomainError, InvalidInput, NotFound
from hub.i18n import N_, language_of, translate
from hub.inbox import alerts, bulk, history, live, overview, service, sla, snooze, tools, views
from hub.inbox.models import Conversation, Message
from hub.tenancy.models import StaffUser
from hub.web.auth import Staff, require
from hub.web.downloads import download
from hub.web.rendering import environment, render
from hub.web.security import verify_csrf
from hub.web.town_lists import TownList
from workers.app import enqueue_send

router = APIRouter(prefix="/app/inbox", include_in_schema=False, dependencies=[Depends(verify_csrf)])

PER_PAGE = 25
# What a form left behind, shown after the redirect (German msgids).
NOTICES = {
    "reply": N_("Die Antwort ist unterwegs."),
    "note": N_("Die Notiz ist gespeichert."),
    "assigned": N_("Die Zuweisung ist gespeichert."),
    "status": N_("Der Status ist geändert."),
    "label": N_("Die Labels sind geändert."),
    "merged": N_("Die Kontakte sind zusammengeführt."),
    # A Mängelmelder page merges reports and comes back here (hub/problems/staff_pages.py).
    "alerts": N_("Ihre Benachrichtigungen sind gespeichert."),
    "reports_merged": N_(
        "Die Meldungen sind zusammengeführt. Alle Meldenden erfahren, wie es mit dieser Meldung weitergeht."
    ),
    "named": N_("Der Name ist gespeichert."),
    "snoozed": N_("Die Wiedervorlage ist gesetzt; bis dahin steht der Vorgang nicht in den offenen Listen."),
    "unsnoozed": N_("Der Vorgang ist wieder in den offenen Listen."),
}
# Where the contact's name came from (Contact.name_origin), beside the name.
NAME_ORIGINS = {
    NAME_FROM_CHANNEL: N_("wie im Kanal angezeigt"),
    NAME_FROM_CITIZEN: N_("von der Person selbst angegeben"),
    NAME_FROM_STAFF: N_("von Mitarbeitenden eingetragen"),
}
STATUS_LABELS = {"open": N_("Offen"), "pending": N_("Wartend"), "resolved": N_("Erledigt")}
DELIVERY_LABELS = {
    "queued": N_("in der Warteschlange"),
    "sending": N_("wird gesendet"),
    "sent": N_("gesendet"),
    "delivered": N_("zugestellt"),
    "read": N_("gelesen"),
    "undelivered": N_("nicht zugestellt"),
    "failed": N_("fehlgeschlagen"),
}
CHANNEL_LABELS = channel_labels()
# A contact's addresses are named by identity kind (ChannelAdapter.identity), not channel kind.
IDENTITY_LABELS = identity_labels()
SUBSCRIPTION_STATES = {
    "pending": N_("angefragt, noch nicht bestätigt"),
    "active": N_("aktiv"),
    "stopped": N_("abgemeldet"),
}
CONSENT_ACTIONS = {
    "subscribed": N_("angemeldet"),
    "confirmed": N_("bestätigt"),
    "topics_changed": N_("Themen geändert"),
    "stopped": N_("abgemeldet"),
    "restarted": N_("wieder angemeldet"),
    "imported": N_("importiert"),
    "erased": N_("gelöscht"),
    "opted_in": N_("Einwilligung auf dem Kanal"),
}
# A channel's own source (its bot's buttons) is named after the channel.
CONSENT_SOURCES = {
    **{adapter.consent_source: adapter.label for adapter in adapter_classes()},
    "keyword": N_("Stichwort"),
    "form": N_("Webformular"),
    "email_link": N_("Link in E-Mail"),
    "topics_link": N_("Link „Themen ändern“"),
    "import": N_("Import"),
    "api": N_("Mitarbeitende"),
    "provider_error": N_("Meldung des Anbieters"),
}


def _int(value: str | None) -> int | None:
    """A filter id from the query string; anything else counts as not given rather than a 422."""
    return int(value) if value and value.isdigit() else None


@dataclass(frozen=True)
class Filters:
    """The list's filters as the query string carries them."""

    status: str = "open"
    channel: str = ""
    team: str = ""
    assignee: str = ""
    label: str = ""
    q: str = ""
    overdue: bool = False
    snoozed: bool = False

    @classmethod
    def from_request(cls, request: Request) -> Filters:
        return cls.from_params(request.query_params)

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Filters:
        status = params.get("status", "open")
        channel = params.get("channel", "")
        return cls(
            status=status if status in (*service.STATUSES, "all") else "open",
            channel=channel if channel in CHANNEL_LABELS else "",
            team=params.get("team", ""),
            assignee=params.get("assignee", ""),
            label=params.get("label", ""),
            q=params.get("q", "")[:200],
            overdue=params.get("overdue") == "1",
            snoozed=params.get("snoozed") == "1",
        )

    def query(self, **changes: Any) -> str:
        values = {
            "status": self.status,
            "channel": self.channel,
            "team": self.team,
            "assignee": self.assignee,
            "label": self.label,
            "q": self.q,
            "overdue": "1" if self.overdue else "",
            "snoozed": "1" if self.snoozed else "",
            **changes,
        }
        return urlencode({name: value for name, value in values.items() if value not in ("", None)})


# Everyone's views in the side navigation, before their own: (name, filters); "Mein Team" needs a team.
DEFAULT_VIEWS = (
    (N_("Mir zugewiesen"), Filters(assignee="mine")),
    (N_("Mein Team"), Filters(team="mine")),
    (N_("Nicht zugewiesen"), Filters(assignee="unassigned")),
    (N_("Überfällig"), Filters(overdue=True)),
    (N_("Warten auf Bürger"), Filters(status="pending")),
    (N_("Wiedervorlage"), Filters(snoozed=True)),
)


@dataclass(frozen=True)
class ViewLink:
    """A view in the side navigation: its name, where it leads, how many it holds; `id` if it was saved."""

    name: str
    query: str
    count: int
    id: int | None = None
    shared: bool = False


def _views(request: Request, session: Session, staff: Staff) -> list[ViewLink]:
    def count(filters: Filters) -> int:
        return service.count_conversations(session, municipality_id=staff.municipality_id,
                                           **_matching(session, staff, filters))  # fmt: skip

    links = [
        ViewLink(name=translate(request, name), query=filters.query(), count=count(filters))
        for name, filters in DEFAULT_VIEWS
        if filters.team != "mine" or staff.user.team_id is not None
    ]
    for saved in views.list_views(session, user=staff.user):
        filters = Filters.from_params(dict(parse_qsl(saved.query)))
        links.append(ViewLink(name=saved.name, query=filters.query(), count=count(filters), id=saved.id,
                              shared=saved.team_id is not None))  # fmt: skip
    return links


def _matching(session: Session, staff: Staff, filters: Filters, only_ids: list[int] | None = None) -> dict[str, Any]:
    """The filters as keywords of service.conversation_query; "past target" becomes the ids past it.

    A conversation set aside for later is only in the view "Wiedervorlage" and under every status ("all").
    """
    if filters.overdue:
        overdue = sla.overdue_conversation_ids(session, municipality_id=staff.municipality_id, now=utcnow())
        only_ids = overdue if only_ids is None else [i for i in only_ids if i in set(overdue)]
    return {
        "status": None if filters.status == "all" else filters.status,
        "channel_kind": filters.channel or None,
        "assignee_id": staff.user_id if filters.assignee == "mine" else _int(filters.assignee),
        "unassigned": filters.assignee == "unassigned",
        "team_id": staff.user.team_id if filters.team == "mine" else _int(filters.team),
        "label_id": _int(filters.label),
        "search": filters.q or None,
        "only_ids": only_ids,
        "snoozed": True if filters.snoozed else None if filters.status == "all" else False,
    }


def _list(
    session: Session, staff: Staff, filters: Filters, *, page: int, only_ids: list[int] | None = None
) -> tuple[service.ConversationPage, list[overview.Summary]]:
    found = service.list_conversations(
        session, municipality_id=staff.municipality_id, page=page, per_page=PER_PAGE,
        **_matching(session, staff, filters, only_ids),
    )  # fmt: skip
    rows = overview.summaries(session, municipality=staff.municipality, conversations=found.items, now=utcnow())
    return found, rows


def _fragment(request: Request, template: str, **context: Any) -> str:
    """A piece of a page for the live stream, escaped like the page itself."""
    language = getattr(request.state, "language", "de")
    return (
        environment(language)
        .get_template(f"ui/staff/inbox/{template}")
        .render(lang=language, staff=request.state.staff, **_labels(), **context)
    )


def _labels() -> dict[str, Any]:
    return {
        "status_labels": STATUS_LABELS,
        "delivery_labels": DELIVERY_LABELS,
        "channel_labels": CHANNEL_LABELS,
        "identity_labels": IDENTITY_LABELS,
        "subscription_states": SUBSCRIPTION_STATES,
        "consent_actions": CONSENT_ACTIONS,
        "consent_sources": CONSENT_SOURCES,
        "name_origins": NAME_ORIGINS,
    }


@router.get("", response_class=HTMLResponse)
def inbox(
    request: Request,
    page: int = 1,
    change: int = 0,
    staff: Staff = Depends(require("inbox.read")),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    """The list; `?change=<id>` says what a bulk action just did and offers to undo it."""
    done = bulk.get_change(session, municipality_id=staff.municipality_id, change_id=change) if change else None
    return _inbox_page(request, staff, session, Filters.from_request(request), page=page, change=done)


def _inbox_page(
    request: Request, staff: Staff, session: Session, filters: Filters, *, page: int = 1,
    change: bulk.BulkChange | None = None, error: DomainError | None = None, status_code: int = 200,
    merge_plan: bulk.MergePlan | None = None,
) -> HTMLResponse:  # fmt: skip
    page = max(page, 1)
    found, rows = _list(session, staff, filters, page=page)
    users, teams = tools.assignable(session, municipality_id=staff.municipality_id)
    return render(
        request,
        "staff/inbox/list.html",
        status_code=status_code,
        title=translate(request, "Posteingang"),
        filters=filters,
        rows=rows,
        total=found.total,
        page=page,
        pages=max(1, math.ceil(found.total / PER_PAGE)),
        users=users,
        teams=teams,
        labels=tools.list_labels(session, municipality_id=staff.municipality_id),
        cursor=overview.latest_message_id(session, municipality_id=staff.municipality_id),
        changes_at=live.position(utcnow()),
        change=change,
        change_text=bulk.summary(change, language_of(request)) if change else None,
        merge_plan=merge_plan,
        views=_views(request, session, staff),
        error=error.text(language_of(request)) if error else None,
        alert_settings=alerts.settings_of(session, user_id=staff.user_id),
        **_labels(),
    )


@router.post("/bulk")
def post_bulk(
    request: Request,
    ids: Annotated[list[int], Form()] = [],  # noqa: B006 (FastAPI copies a form's default)
    scope: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "",
    assignee: Annotated[str, Form()] = "",
    team: Annotated[str, Form()] = "",
    label: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "",
    day: Annotated[str, Form()] = "",
    at: Annotated[str, Form()] = "",
    filter: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("inbox.write")),
    session: Session = Depends(get_session),
) -> Response:
    """The list's bulk form: the ticked rows, or with `scope=all` every match of the list's filters (`filter`).

    A merge cannot be undone, so it first shows which conversation stays and runs on `confirm=yes`."""
    filters = Filters.from_params(dict(parse_qsl(filter)))
    values = {"assign": staff.user_id if assignee == "me" else _int(assignee), "team": _int(team),
              "label": _int(label), "status": status, "snooze": f"{day}T{at}" if at else day}  # fmt: skip
    ticked = None if scope == "all" else ids
    matching = _matching(session, staff, filters) if scope == "all" else None
    try:
        if action == "merge" and confirm != "yes":
            picked = bulk.chosen_ids(
                session, municipality_id=staff.municipality_id, conversation_ids=ticked, matching=matching
            )
            plan = bulk.merge_plan(session, municipality_id=staff.municipality_id, conversation_ids=picked)
            return _inbox_page(request, staff, session, filters, merge_plan=plan)
        change = bulk.apply(
            session, municipality_id=staff.municipality_id, actor_id=staff.user_id, action=action,
            value=values.get(action), conversation_ids=ticked, matching=matching, confirmed=confirm == "yes",
        )  # fmt: skip
    except (InvalidInput, Conflict, NotFound) as error:
        session.rollback()
        return _inbox_page(request, staff, session, filters, error=error, status_code=error.status_code)
    session.commit()
    return RedirectResponse(f"/app/inbox?{filters.query(change=change.id)}", status_code=303)


@router.post("/bulk/{change_id:int}/undo")
def post_bulk_undo(
    request: Request,
    change_id: int,
    filter: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("inbox.write")),
    session: Session = Depends(get_session),
) -> Response:
    filters = Filters.from_params(dict(parse_qsl(filter)))
    try:
        bulk.undo(session, municipality_id=staff.municipality_id, actor_id=staff.user_id, change_id=change_id)
    except Conflict as error:
        session.rollback()
        return _inbox_page(request, staff, session, filters, error=error, status_code=error.status_code)
    session.commit()
    return RedirectResponse(f"/app/inbox?{filters.query(change=change_id)}", status_code=303)


@router.post("/views")
def post_view(
    request: Request,
    name: Annotated[str, Form()] = "",
    share: Annotated[str, Form()] = "",
    filter: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("inbox.write")),
    session: Session = Depends(get_session),
) -> Response:
    """Saves the list's current filters and search (`filter`) as a named view; `share=team` for the person's team."""
    filters = Filters.from_params(dict(parse_qsl(filter)))
    try:
        views.save_view(session, owner=staff.user, name=name, query=filters.query(), for_team=share == "team")
    except InvalidInput as error:
        session.rollback()
        return _inbox_page(request, staff, session, filters, error=error, status_code=error.status_code)
    session.commit()
    return RedirectResponse(f"/app/inbox?{filters.query()}", status_code=303)


@router.post("/views/{view_id:int}/delete")
def delete_view(
    view_id: int, staff: Staff = Depends(require("inbox.write")), session: Session = Depends(get_session)
) -> Response:
    views.delete_view(session, user=staff.user, view_id=view_id)
    session.commit()
    return RedirectResponse("/app/inbox", status_code=303)


@router.get("/notifications", response_class=HTMLResponse)
def notifications_page(
    request: Request, done: str = "", staff: Staff = Depends(require("inbox.read")),
    session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    """The signed-in person's own alerts: browser notifications and a sound, for what waits for them."""
    return render(request, "staff/inbox/notifications.html", title=translate(request, "Benachrichtigungen"),
                  alert_settings=alerts.settings_of(session, user_id=staff.user_id),
                  notice=translate(request, NOTICES[done]) if done in NOTICES else None)  # fmt: skip


@router.post("/notifications")
def post_notifications(
    browser: Annotated[str, Form()] = "",
    sound: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("inbox.read")),
    session: Session = Depends(get_session),
) -> Response:
    alerts.save_settings(session, user_id=staff.user_id, browser=browser == "1", sound=sound == "1")
    session.commit()
    return RedirectResponse("/app/inbox/notifications?done=alerts", status_code=303)


@router.get("/shortcuts", response_class=HTMLResponse)
def shortcuts(request: Request, _staff: Staff = Depends(require("inbox.read"))) -> HTMLResponse:
    return render(request, "staff/inbox/shortcuts.html", title=translate(request, "Tastenkürzel im Posteingang"))


@router.get("/attachments/{attachment_id:int}")
def download_attachment(
    attachment_id: int, staff: Staff = Depends(require("inbox.read")), session: Session = Depends(get_session)
) -> Response:
    """A citizen's file from a conversation, for the town's signed-in staff (the API wants a token instead)."""
    found = service.attachment_file(session, municipality_id=staff.municipality_id, attachment_id=attachment_id)
    return download(found.data, filename=found.name, media_type=found.content_type)


# --- live updates ---------------------------------------------------------------------------


def _live_events(request: Request, staff: Staff, filters: Filters, view: live.LiveView) -> list[str]:
    """One look for news (in a worker thread), as server-sent events carrying the page's HTML fragments.

    A row that changed is sent ("row", `in_place` when only its state changed, not its messages), or, when it no
    longer matches the list's filters (resolved, assigned elsewhere, set aside), the list is told to drop it ("gone").
    """
    with Session(get_engine(), expire_on_commit=False) as session:
        news = view.poll(session)
        _found, rows = (
            _list(session, staff, filters, page=1, only_ids=news.conversation_ids)
            if news.conversation_ids
            else (None, [])
        )
        still = set(
            service.matching_ids(session, municipality_id=staff.municipality_id,
                                 **_matching(session, staff, filters, news.changed_ids))
            if news.changed_ids
            else ()
        )  # fmt: skip
        events = [
            live.sse("row", _row_event(request, row, in_place=row.conversation.id in news.changed_ids), view.event_id)
            for row in rows
        ]
        events += [live.sse("gone", {"id": gone}, view.event_id) for gone in news.changed_ids if gone not in still]
        authors = _authors(session, news.messages)
        for message in news.messages:
            html = _fragment(request, "_message.html", message=message, authors=authors, attachments={})
            events.append(live.sse("message", {"id": message.id, "html": html}, view.event_id))
    if news.present is not None:
        events.append(live.sse("presence", {"html": _fragment(request, "_presence.html", present=news.present)}))
    if news.waiting is not None:
        events.append(live.sse("waiting", _waiting(request, news.waiting)))
    return events


def _row_event(request: Request, row: overview.Summary, *, in_place: bool) -> dict[str, Any]:
    return {"id": row.conversation.id, "html": _fragment(request, "_row.html", row=row), "in_place": in_place}


def _waiting(request: Request, watch: alerts.Watch) -> dict[str, Any]:
    """The tab title's count, and the notifications the page may show (if its clerk allowed them)."""
    return {
        "count": watch.count,
        "alerts": [
            {"title": translate(request, alerts.REASONS[alert.reason]), "body": alert.reference,
             "url": f"/app/inbox/{alert.conversation_id}", "tag": f"{alert.reason}-{alert.conversation_id}"}
            for alert in watch.fresh
        ],
    }  # fmt: skip


def _authors(session: Session, messages: list[Message]) -> dict[int, str]:
    ids = {message.author_id for message in messages if message.author_id is not None}
    return {user.id: user.name for user in (session.get(StaffUser, i) for i in ids) if user is not None and user.id}


@router.get("/events")
async def events(
    request: Request,
    cursor: int = 0,
    changes: int = Query(0, ge=0, le=live.LAST_POSITION),
    conversation: int | None = None,
    staff: Staff = Depends(require("inbox.read")),
    session: Session = Depends(get_session),
) -> StreamingResponse:
    """Server-sent events for an open list (new and changed rows) or conversation (messages, delivery, presence).

    `changes` is when the list was rendered (live.position); status and assignment changes after that reach it.
    Without it, the list follows only new messages.
    """
    resumed = live.resume_point(request.headers.get("last-event-id", ""))
    changes_at = live.moment_of(changes) if changes > 0 else None
    view = live.LiveView.start(
        session, municipality_id=staff.municipality_id, user_id=staff.user_id,
        cursor=resumed[0] if resumed else cursor, conversation_id=conversation,
        changes_at=resumed[1] if resumed and resumed[1] else changes_at,
    )  # fmt: skip
    session.close()
    filters = Filters.from_request(request)
    return StreamingResponse(
        live.stream(lambda: run_in_threadpool(_live_events, request, staff, filters, view), request.is_disconnected),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# --- canned replies and labels management --------------------------------------------------

TownList(
    path="/canned-replies", id_name="canned_id", template="staff/inbox/canned_replies.html",
    title=N_("Textbausteine"), items_name="replies", fields=("title", "body"), permission="inbox.write",
    list_items=tools.list_canned, create=tools.save_canned, update=tools.save_canned, delete=tools.delete_canned,
    context={"variables": tools.SNIPPET_EXAMPLE},
).add_to(router)  # fmt: skip
TownList(
    path="/labels", id_name="label_id", template="staff/inbox/labels.html", title=N_("Labels"), items_name="labels",
    fields=("name",), permission="inbox.write", list_items=tools.list_labels, create=tools.create_label,
    update=tools.rename_label, delete=tools.delete_label,
).add_to(router)  # fmt: skip


# --- one conversation -----------------------------------------------------------------------


def _conversation_page(
    request: Request,
    staff: Staff,
    session: Session,
    conversation_id: int,
    *,
    notice: str = "",
    error: DomainError | None = None,
    status_code: int = 200,
    draft: str = "",
) -> HTMLResponse:
    conversation = service.get_conversation(
        session, municipality_id=staff.municipality_id, conversation_id=conversation_id
    )
    now = utcnow()
    tools.mark_viewing(session, conversation=conversation, user_id=staff.user_id, now=now)
    session.commit()
    messages = service.list_messages(session, municipality_id=staff.municipality_id, conversation_id=conversation_id)
    row = overview.summaries(session, municipality=staff.municipality, conversations=[conversation], now=now)[0]
    contact = get_contact(session, municipality_id=staff.municipality_id, contact_id=conversation.contact_id)
    users, teams = tools.assignable(session, municipality_id=staff.municipality_id)
    return render(
        request,
        "staff/inbox/conversation.html",
        status_code=status_code,
        title=f"{conversation.reference} – {row.contact_name}",
        row=row,
        conversation=conversation,
        messages=messages,
        attachments=service.attachments_of(session, message_ids=[m.id for m in messages if m.id is not None]),
        authors=_authors(session, messages),
        contact=contact,
        identities=identities_of(session, contact_id=contact.id or 0),
        earlier=history.earlier_conversations(
            session, municipality_id=staff.municipality_id, contact_id=contact.id or 0, except_id=conversation.id
        ),
        **contact_record(
            session, page=CONVERSATION_PANEL, municipality_id=staff.municipality_id, contact_id=contact.id or 0
        ),
        present=tools.others_present(session, conversation=conversation, user_id=staff.user_id, now=now),
        users=users,
        teams=teams,
        labels=tools.list_labels(session, municipality_id=staff.municipality_id),
        canned=tools.list_canned(session, municipality_id=staff.municipality_id),
        notice=translate(request, NOTICES[notice]) if notice in NOTICES else None,
        error=error.text(language_of(request)) if error else None,
        draft=draft,
        # The reply forms say what this page showed last, so a colleague's reply sent since then is not missed;
        # once refused for that, the page shows it and the same draft goes out when sent again.
        last_message_id=max((m.id for m in messages if m.id is not None), default=0),
        replied_meanwhile=isinstance(error, service.RepliedMeanwhile),
        # The reply box counts SMS parts where a text is sent and paid in parts.
        counts_segments=adapter_class(row.channel.kind).max_segments is not None,
        # Nobody to write to: the page says so in place of the reply box.
        unreachable=_unreachable(request, session, conversation),
        # Once the channel's window is closed, the approved templates are the way to answer.
        reply_templates=service.reply_templates(
            session, municipality_id=staff.municipality_id, conversation_id=conversation_id
        ),
        cursor=overview.latest_message_id(session, municipality_id=staff.municipality_id),
        snooze_days=[(translate(request, name), day) for name, day in snooze.suggested_days(staff.municipality, now)],
        alert_settings=alerts.settings_of(session, user_id=staff.user_id),
        **_labels(),
    )


def _unreachable(request: Request, session: Session, conversation: Conversation) -> str | None:
    return None if service.reachable(session, conversation=conversation) else translate(request, service.UNREACHABLE)


def _use_tool(
    request: Request,
    staff: Staff,
    session: Session,
    conversation_id: int,
    change: Callable[[], object],
    *,
    done: str,
    draft: str = "",
    then: Callable[[Any], None] | None = None,
) -> Response:
    """Runs one tool of the conversation page: back to the page saying `done`, or saying why it was refused.

    `then` gets what `change` returned once it is committed (a reply goes to the broker only then).
    """
    try:
        changed = change()
    except (InvalidInput, Conflict) as error:
        session.rollback()
        return _conversation_page(
            request, staff, session, conversation_id, error=error, status_code=error.status_code, draft=draft
        )
    session.commit()
    if then is not None:
        then(changed)
    return _back(conversation_id, done)


def _send(message: Message) -> None:
    assert message.id is not None
    enqueue_send(message.id)


@router.get("/{conversation_id:int}", response_class=HTMLResponse)
def conversation_page(
    request: Request,
    conversation_id: int,
    done: str = "",
    canned: str = "",
    staff: Staff = Depends(require("inbox.read")),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    """The conversation; `?canned=<id>` fills the reply box with that canned reply (the way without JavaScript)."""
    draft, error = "", None
    if _int(canned) is not None and staff.can("inbox.write"):
        try:
            draft = tools.fill_canned(
                session,
                municipality_id=staff.municipality_id,
                canned_id=_int(canned) or 0,
                conversation_id=conversation_id,
                author=staff.user,
            )
        except InvalidInput as problem:
            error = problem
    return _conversation_page(request, staff, session, conversation_id, notice=done, draft=draft, error=error)


@router.get("/{conversation_id:int}/canned/{canned_id:int}")
def filled_canned_reply(
    conversation_id: int,
    canned_id: int,
    staff: Staff = Depends(require("inbox.write")),
    session: Session = Depends(get_session),
) -> JSONResponse:
    """A canned reply filled for this conversation, for the page's script to insert into the reply box."""
    text = tools.fill_canned(
        session,
        municipality_id=staff.municipality_id,
        canned_id=canned_id,
        conversation_id=conversation_id,
        author=staff.user,
    )
    return JSONResponse({"text": text})


def _back(conversation_id: int, done: str) -> RedirectResponse:
    return RedirectResponse(f"/app/inbox/{conversation_id}?done={done}", status_code=303)


@router.post("/{conversation_id:int}/reply")
def post_reply(
    request: Request,
    conversation_id: int,
    text: Annotated[str, Form()] = "",
    template: Annotated[str, Form()] = "",
    seen: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("inbox.write")),
    session: Session = Depends(get_session),
) -> Response:
    """Sends the reply; refused once, showing it, where a colleague replied after the message `seen` (an id)."""
    return _use_tool(
        request, staff, session, conversation_id, done="reply", draft=text, then=_send,
        change=lambda: service.reply(
            session, municipality_id=staff.municipality_id, conversation_id=conversation_id, author=staff.user,
            text=text, template_language=template or None, seen_message_id=_int(seen),
        ),
    )  # fmt: skip


@router.post("/{conversation_id:int}/typing", status_code=204)
def post_typing(
    conversation_id: int, staff: Staff = Depends(require("inbox.write")), session: Session = Depends(get_session)
) -> Response:
    """The page's script says, every few seconds while the clerk writes a reply, that they are writing one."""
    tools.mark_typing(session, municipality_id=staff.municipality_id, conversation_id=conversation_id,
                      user_id=staff.user_id, now=utcnow())  # fmt: skip
    session.commit()
    return Response(status_code=204)


@router.post("/{conversation_id:int}/note")
def post_note(
    request: Request,
    conversation_id: int,
    text: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("inbox.write")),
    session: Session = Depends(get_session),
) -> Response:
    return _use_tool(
        request, staff, session, conversation_id, done="note",
        change=lambda: service.add_note(
            session, municipality_id=staff.municipality_id, conversation_id=conversation_id, author=staff.user,
            text=text,
        ),
    )  # fmt: skip


@router.post("/{conversation_id:int}/assign")
def post_assign(
    conversation_id: int,
    assignee: Annotated[str, Form()] = "",
    team: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("inbox.write")),
    session: Session = Depends(get_session),
) -> Response:
    """Sets person and team together; "me" assigns the signed-in person, empty clears."""
    assignee_id = staff.user_id if assignee == "me" else _int(assignee)
    changes: dict[str, Any] = {"assignee_id": assignee_id}
    if team != "keep":
        changes["team_id"] = _int(team)
    service.update_conversation(
        session, municipality_id=staff.municipality_id, conversation_id=conversation_id, **changes
    )
    session.commit()
    return _back(conversation_id, "assigned")


@router.post("/{conversation_id:int}/status")
def post_status(
    conversation_id: int,
    status: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("inbox.write")),
    session: Session = Depends(get_session),
) -> Response:
    service.update_conversation(
        session, municipality_id=staff.municipality_id, conversation_id=conversation_id, status=status
    )
    session.commit()
    return _back(conversation_id, "status")


@router.post("/{conversation_id:int}/snooze")
def post_snooze(
    request: Request,
    conversation_id: int,
    day: Annotated[str, Form()] = "",
    at: Annotated[str, Form()] = "",
    preset: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("inbox.write")),
    session: Session = Depends(get_session),
) -> Response:
    """Sets the conversation aside until `day` (or a suggested day, `preset`) at `at` (town time, 08:00 if empty):
    the Wiedervorlage."""
    return _use_tool(
        request, staff, session, conversation_id, done="snoozed",
        change=lambda: snooze.snooze(
            session, municipality_id=staff.municipality_id, conversation_id=conversation_id, actor_id=staff.user_id,
            day=preset or day, at=at,
        ),
    )  # fmt: skip


@router.post("/{conversation_id:int}/snooze/end")
def end_snooze(
    conversation_id: int, staff: Staff = Depends(require("inbox.write")), session: Session = Depends(get_session)
) -> Response:
    snooze.end_snooze(
        session, municipality_id=staff.municipality_id, conversation_id=conversation_id, actor_id=staff.user_id
    )
    session.commit()
    return _back(conversation_id, "unsnoozed")


@router.post("/{conversation_id:int}/labels")
def post_label(
    request: Request,
    conversation_id: int,
    label: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("inbox.write")),
    session: Session = Depends(get_session),
) -> Response:
    """Adds an existing label (`label`) or a new one by `name`."""
    return _use_tool(
        request, staff, session, conversation_id, done="label",
        change=lambda: tools.add_label(
            session, municipality_id=staff.municipality_id, conversation_id=conversation_id, label_id=_int(label),
            name=name,
        ),
    )  # fmt: skip


@router.post("/{conversation_id:int}/labels/{label_id:int}/remove")
def remove_label(
    conversation_id: int,
    label_id: int,
    staff: Staff = Depends(require("inbox.write")),
    session: Session = Depends(get_session),
) -> Response:
    tools.remove_label(
        session, municipality_id=staff.municipality_id, conversation_id=conversation_id, label_id=label_id
    )
    session.commit()
    return _back(conversation_id, "label")


@router.post("/{conversation_id:int}/contact-name")
def post_contact_name(
    request: Request,
    conversation_id: int,
    name: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("inbox.write")),
    session: Session = Depends(get_session),
) -> Response:
    """Names the conversation's contact; an empty name lets the channel name them again."""
    return _use_tool(
        request, staff, session, conversation_id, done="named",
        change=lambda: tools.name_contact(
            session, municipality_id=staff.municipality_id, conversation_id=conversation_id, name=name,
            actor_id=staff.user_id,
        ),
    )  # fmt: skip


@router.post("/{conversation_id:int}/merge")
def post_merge(
    request: Request,
    conversation_id: int,
    other: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("inbox.write")),
    session: Session = Depends(get_session),
) -> Response:
    """Merges the contact named by an address or reference into this conversation's contact."""
    conversation = service.get_conversation(
        session, municipality_id=staff.municipality_id, conversation_id=conversation_id
    )

    def merge_named() -> None:
        found = tools.find_contact(session, municipality_id=staff.municipality_id, address_or_reference=other)
        merge(
            session, municipality_id=staff.municipality_id, target_id=conversation.contact_id, source_id=found.id or 0
        )

    return _use_tool(request, staff, session, conversation_id, merge_named, done="merged")
