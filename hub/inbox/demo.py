"""The demo town's inbox: a clerk's saved view beside the views everyone has, and their browser notifications on."""

from __future__ import annotations

from sqlmodel import Session

from hub.inbox.alerts import save_settings
from hub.inbox.views import save_view
from hub.tenancy import service as tenancy


def seed_inbox_demo(session: Session, municipality_id: int, *, clerk_email: str) -> None:
    clerk = tenancy.get_user_by_email(session, municipality_id=municipality_id, email=clerk_email)
    save_view(session, owner=clerk, name="Offene SMS", query="status=open&channel=twilio", for_team=False)
    # The browser still asks its own permission on the settings page; the sound stays the clerk's choice.
    save_settings(session, user_id=clerk.id or 0, browser=True, sound=False)
