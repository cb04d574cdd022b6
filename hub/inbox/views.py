"""Saved views of the inbox list: a clerk's named filter and search, kept for themself or shared with their team."""

from __future__ import annotations

from sqlmodel import Session, col, or_, select

from hub.errors import InvalidInput, NotFound
from hub.i18n import N_
from hub.inbox.models import SavedView
from hub.tenancy.models import StaffUser


def list_views(session: Session, *, user: StaffUser) -> list[SavedView]:
    """The person's own views and those shared with their team, by name."""
    mine = col(SavedView.owner_id) == user.id
    shown = or_(mine, col(SavedView.team_id) == user.team_id) if user.team_id is not None else mine
    return list(
        session.exec(
            select(SavedView)
            .where(SavedView.municipality_id == user.municipality_id, shown)
            .order_by(col(SavedView.name), col(SavedView.id))
        ).all()
    )


def save_view(session: Session, *, owner: StaffUser, name: str, query: str, for_team: bool) -> SavedView:
    """Keeps the list's query string (already normalised by the page) under `name`; `for_team` shares it."""
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > 60:
        raise InvalidInput(N_("Der Name der Ansicht muss 1 bis 60 Zeichen lang sein."))
    if len(query) > 1000:
        raise InvalidInput(N_("Diese Auswahl ist zu lang, um sie zu speichern."))
    if for_team and owner.team_id is None:
        raise InvalidInput(N_("Sie gehören keinem Team an; die Ansicht kann nur für Sie gelten."))
    assert owner.id is not None
    view = SavedView(
        municipality_id=owner.municipality_id, owner_id=owner.id, team_id=owner.team_id if for_team else None,
        name=cleaned, query=query,
    )  # fmt: skip
    session.add(view)
    session.flush()
    return view


def delete_view(session: Session, *, user: StaffUser, view_id: int) -> None:
    """Only the one who saved a view deletes it; a colleague's shared view is not found for this."""
    view = session.get(SavedView, view_id)
    if view is None or view.municipality_id != user.municipality_id or view.owner_id != user.id:
        raise NotFound(N_("Ansicht {view_id} nicht gefunden."), view_id=view_id)
    session.delete(view)
    session.flush()
