"""The demo town's inbox: a clerk's saved view, a caller the clerks know by name, a case set aside for later,
a citizen who wrote twice about one thing (to merge), and the clerk's browser notifications on."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from channels.registry import sms_kinds
from hub.contacts.service import rename_contact, resolve_contact
from hub.db import utcnow
from hub.inbox.alerts import save_settings
from hub.inbox.models import Message
from hub.inbox.service import open_conversation
from hub.inbox.snooze import snooze, town
from hub.inbox.views import save_view
from hub.tenancy import service as tenancy

# The citizen whose SMS about a dark street lamp the demo sends (hub/demo.py): SMS tells no names.
DEMO_NAMED_CALLER = "+4915112345678"
DEMO_SNOOZED_EMAIL = "petra.schneider@example.org"
DEMO_TWICE_EMAIL = "jonas.weber@example.org"


def seed_inbox_demo(session: Session, municipality_id: int, *, clerk_email: str) -> None:
    clerk = tenancy.get_user_by_email(session, municipality_id=municipality_id, email=clerk_email)
    save_view(session, owner=clerk, name="Offene SMS", query=f"status=open&channel={sms_kinds()[0]}", for_team=False)
    # The browser still asks its own permission on the settings page; the sound stays the clerk's choice.
    save_settings(session, user_id=clerk.id or 0, browser=True, sound=False)
    seed_known_caller(session, municipality_id, clerk_id=clerk.id)
    seed_snoozed_case(session, municipality_id, clerk_id=clerk.id or 0)
    seed_written_twice(session, municipality_id)


def seed_known_caller(session: Session, municipality_id: int, *, clerk_id: int | None) -> None:
    """An SMS citizen a clerk named, with a case closed two months ago that the side panel lists beside the new one."""
    account = next(
        a for a in tenancy.list_channel_accounts(session, municipality_id=municipality_id) if a.kind in sms_kinds()
    )
    contact = resolve_contact(session, municipality_id=municipality_id, kind="phone", address=DEMO_NAMED_CALLER)
    assert contact.id is not None and account.id is not None
    rename_contact(session, municipality_id=municipality_id, contact_id=contact.id, name="Karl Becker",
                   actor_id=clerk_id)  # fmt: skip
    earlier = open_conversation(session, account=account, contact_id=contact.id, subject="Sperrmüll Lindenweg")
    written = utcnow() - timedelta(days=61)
    answered = written + timedelta(hours=2)
    session.add_all([
        Message(
            municipality_id=municipality_id, conversation_id=earlier.id, channel_account_id=account.id,
            direction="inbound", body="Wann wird am Lindenweg der Sperrmüll abgeholt?", created_at=written,
        ),
        Message(
            municipality_id=municipality_id, conversation_id=earlier.id, channel_account_id=account.id,
            direction="outbound", author_id=clerk_id, status="delivered", created_at=answered,
            body="Guten Tag Herr Becker, die nächste Abholung am Lindenweg ist am Donnerstag.",
        ),
    ])  # fmt: skip
    # Closed long before the reopening window, so the demo's new SMS opens a case of its own.
    earlier.status, earlier.first_response_at, earlier.resolved_at = "resolved", answered, answered
    earlier.created_at, earlier.last_inbound_at, earlier.last_activity_at = written, written, answered
    session.flush()


def seed_snoozed_case(session: Session, municipality_id: int, *, clerk_id: int) -> None:
    """A citizen who sends missing papers next week: the clerk answered and set the case aside until then.

    Stored directly rather than through the webhook, like the other seeded cases that need a past.
    """
    account = next(
        a for a in tenancy.list_channel_accounts(session, municipality_id=municipality_id) if a.kind == "email"
    )
    assert account.id is not None
    contact = resolve_contact(
        session, municipality_id=municipality_id, kind="email", address=DEMO_SNOOZED_EMAIL,
        display_name="Petra Schneider",
    )  # fmt: skip
    assert contact.id is not None
    conversation = open_conversation(
        session, account=account, contact_id=contact.id, subject="Unterlagen zum Bauantrag"
    )
    written, answered = utcnow() - timedelta(days=1, hours=2), utcnow() - timedelta(days=1)
    session.add_all([
        Message(
            municipality_id=municipality_id, conversation_id=conversation.id, channel_account_id=account.id,
            direction="inbound", body="Den Lageplan reiche ich nächste Woche nach, er ist noch beim Vermesser.",
            created_at=written,
        ),
        Message(
            municipality_id=municipality_id, conversation_id=conversation.id, channel_account_id=account.id,
            direction="outbound", body="Vielen Dank, wir legen Ihren Antrag bis dahin zurück.", author_id=clerk_id,
            status="delivered", created_at=answered, sent_at=answered, delivered_at=answered,
        ),
    ])  # fmt: skip
    conversation.last_inbound_at, conversation.last_activity_at = written, answered
    conversation.first_response_at = answered
    session.flush()
    today = utcnow().astimezone(ZoneInfo(town(session, municipality_id).timezone)).date()
    snooze(
        session, municipality_id=municipality_id, conversation_id=conversation.id or 0, actor_id=clerk_id,
        day=today + timedelta(days=7),
    )  # fmt: skip


def seed_written_twice(session: Session, municipality_id: int) -> None:
    """A citizen who sent a second mail with a new subject about the same hedge: two open cases to merge in the list."""
    account = next(
        a for a in tenancy.list_channel_accounts(session, municipality_id=municipality_id) if a.kind == "email"
    )
    assert account.id is not None
    contact = resolve_contact(
        session, municipality_id=municipality_id, kind="email", address=DEMO_TWICE_EMAIL, display_name="Jonas Weber"
    )
    assert contact.id is not None
    mails = [
        ("Hecke am Schulweg", "Die Hecke am Schulweg ragt so weit auf den Gehweg, dass Kinder auf die Straße müssen.",
         timedelta(hours=5)),
        ("Nachtrag: Hecke Schulweg", "Nachtrag: Es geht um die Hecke vor Hausnummer 12.", timedelta(hours=3)),
    ]  # fmt: skip
    for subject, body, ago in mails:
        conversation = open_conversation(session, account=account, contact_id=contact.id, subject=subject)
        written = utcnow() - ago
        session.add(
            Message(
                municipality_id=municipality_id, conversation_id=conversation.id, channel_account_id=account.id,
                direction="inbound", body=body, subject=subject, created_at=written,
            )
        )  # fmt: skip
        conversation.created_at, conversation.last_inbound_at, conversation.last_activity_at = written, written, written
    session.flush()
