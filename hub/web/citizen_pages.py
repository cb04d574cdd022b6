"""The pages every town offers its citizens: a start page, the accessibility statement, a text in Leichte Sprache.

And what a citizen's error page needs to lead back to the town (`town_for_error_page`).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from channels.registry import kinds_reaching
from hub.db import get_session, session_scope
from hub.errors import DomainError
from hub.i18n import translate
from hub.tenancy.models import ChannelAccount, Municipality
from hub.tenancy.preferences import preference
from hub.tenancy.service import get_municipality
from hub.web.rendering import render

router = APIRouter(tags=["public"], include_in_schema=False)


@dataclass(frozen=True)
class TownContact:
    """Whom a citizen writes to about a barrier, and who enforces the statement."""

    email: str | None
    phone: str | None
    enforcement_name: str
    enforcement_url: str


def town_contact(session: Session, *, municipality: Municipality) -> TownContact:
    """The town's contact for barriers: its own setting, else its first active mailbox."""
    contact = preference(municipality, "accessibility_contact")
    enforcement = preference(municipality, "accessibility_enforcement")
    email = (
        contact.get("email")
        or session.exec(
            select(ChannelAccount.address)
            .where(
                ChannelAccount.municipality_id == municipality.id,
                col(ChannelAccount.kind).in_(kinds_reaching("email")),
                col(ChannelAccount.active),
            )
            .order_by(col(ChannelAccount.id))
        ).first()
    )
    return TownContact(email=email, phone=contact.get("phone"), enforcement_name=enforcement["name"],
                       enforcement_url=enforcement["url"])  # fmt: skip


@router.get("/{slug}/barrierefreiheit", response_class=HTMLResponse)
def accessibility_statement(slug: str, request: Request, session: Session = Depends(get_session)) -> HTMLResponse:
    municipality = get_municipality(session, slug=slug)
    return render(request, "citizen/accessibility.html", title=translate(request, "Erklärung zur Barrierefreiheit"),
                  municipality=municipality.name,
                  slug=slug, contact=town_contact(session, municipality=municipality))  # fmt: skip


@router.get("/{slug}/leichte-sprache", response_class=HTMLResponse)
def easy_language(slug: str, request: Request, session: Session = Depends(get_session)) -> HTMLResponse:
    municipality = get_municipality(session, slug=slug)
    return render(request, "citizen/easy_language.html", title=translate(request, "Der Nachrichten-Dienst der Stadt"),
                  municipality=municipality.name,
                  slug=slug, contact=town_contact(session, municipality=municipality))  # fmt: skip


@router.get("/{slug}/start", response_class=HTMLResponse)
def start_page(slug: str, request: Request, session: Session = Depends(get_session)) -> HTMLResponse:
    municipality = get_municipality(session, slug=slug)
    return render(request, "citizen/start.html", title=translate(request, "Bürgerservice"),
                  municipality=municipality.name,
                  slug=slug, contact=town_contact(session, municipality=municipality))  # fmt: skip


def town_for_error_page(slug: str | None) -> dict[str, object]:
    """The town, its slug and contact a citizen's error page names: the one in the path, else the only one there is.

    Empty when neither is known (or the database cannot say), and the page then says how to go on without them.
    """
    try:
        with session_scope() as session:
            try:
                municipality = get_municipality(session, slug=slug)
            except DomainError:
                municipality = get_municipality(session)
            return {"municipality": municipality.name, "slug": municipality.slug,
                    "contact": town_contact(session, municipality=municipality)}  # fmt: skip
    except (DomainError, SQLAlchemyError):
        return {}
