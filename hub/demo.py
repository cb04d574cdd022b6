"""Demo data: a town with staff, teams, a sandbox channel account per kind, consultation hours, citizens writing in,
official warnings relayed, an invitation with a calendar entry."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from io import BytesIO
from typing import Any

from PIL import Image, ImageDraw
from sqlmodel import Session, func, select

import hub.models  # noqa: F401  (every table: the domains' rows point at each other's)
from channels.sandbox.client import SandboxClient
from hub.broadcasts.demo import seed_invitation_demo
from hub.consultations import rooms
from hub.consultations.demo import seed_consultation_demo
from hub.consultations.feedback_demo import seed_feedback_demo
from hub.contacts.service import resolve_contact
from hub.db import utcnow
from hub.inbox.demo import seed_inbox_demo
from hub.inbox.models import InboundEvent, Message
from hub.inbox.service import open_conversation
from hub.official_warnings.demo import seed_warning_demo
from hub.open311.demo import seed_open311_demo
from hub.problems.demo import seed_problem_demo
from hub.problems.web_demo import seed_web_reports
from hub.settings import Settings
from hub.subscribers.demo import seed_subscriber_demo
from hub.tenancy import service as tenancy
from hub.tenancy.mail_signing import generate_dkim_key
from hub.tenancy.models import ChannelAccount, Municipality
from hub.tenancy.signin import set_password
from hub.webcases.demo import seed_letter_demo

log = logging.getLogger(__name__)

DEMO_SLUG = "musterstadt"
DEMO_ADMIN = "admin@musterstadt.example"
DEMO_PASSWORD = "musterstadt-demo"  # noqa: S105 (the demo town only; documented in the README)
# One person per role, all with the demo password, so each role can be tried in the browser.
DEMO_STAFF = (
    (DEMO_ADMIN, "Anna Admin", "admin"),
    ("buergermeisterin@musterstadt.example", "Birgit Bürgermeisterin", "mayor"),
    ("sachbearbeitung@musterstadt.example", "Stefan Sachbearbeiter", "staff"),
    ("lesezugriff@musterstadt.example", "Vera Viewer", "viewer"),
)
DEMO_MAILBOX = "rathaus@musterstadt.example"
DEMO_PDF = b"%PDF-1.4\n% Antrag Strassenfest\n%%EOF\n"
# The WhatsApp sender's approved templates (content SID: the setting naming it, language, text), as the
# provider's console holds them: for notices, and for appointment reminders and feedback requests.
DEMO_WHATSAPP_TEMPLATES = {
    "HX" + "0" * 30 + "de": ("template_de", "de", "Neues aus der Stadt Musterstadt: {{1}}"),
    "HX" + "0" * 30 + "e0": ("template_en", "en", "News from the town of Musterstadt: {{1}}"),
    "HX" + "0" * 30 + "d1": ("reminder_template_de", "de", "Terminerinnerung der Stadt Musterstadt: {{1}}"),
    "HX" + "0" * 30 + "e1": ("reminder_template_en", "en", "Appointment reminder from Musterstadt: {{1}}"),
    "HX" + "0" * 30 + "d2": ("feedback_template_de", "de", "Ihre Meinung zu Ihrem Termin in Musterstadt: {{1}}"),
    "HX" + "0" * 30 + "e2": ("feedback_template_en", "en", "Your view of your appointment in Musterstadt: {{1}}"),
}

# The citizen who wrote on WhatsApp longer ago than its window allows free replies (seed_late_whatsapp_case).
DEMO_LATE_WHATSAPP = "+4917698765432"

# The demo's video platform: the sandbox's BigBlueButton, which is told the same shared secret.
DEMO_VIDEO_KIND = "bigbluebutton"
DEMO_VIDEO_SECRET = "musterstadt-demo-bigbluebutton-secret"  # noqa: S105 (the sandbox's only)


@dataclass(frozen=True)
class DemoAccounts:
    municipality_id: int
    accounts: list[ChannelAccount]


def demo_channel_configs(settings: Settings) -> list[tuple[str, str, dict[str, Any]]]:
    """One account per kind, each SDK pointed at the local emulators instead of the provider."""
    sandbox = settings.sandbox_url
    return [
        (
            "twilio",
            "SMS Bürgertelefon",
            {
                "account_sid": "AC" + "0" * 30 + "42",
                "phone_number": "+4930901820",
                "api_base_url": sandbox,
            },
        ),
        (
            "whatsapp",
            "WhatsApp Bürgertelefon",
            {
                "account_sid": "AC" + "0" * 30 + "42",
                "phone_number": "+4930901821",
                "api_base_url": sandbox,
                "daily_recipients": 1000,
                **{setting: sid for sid, (setting, _, _) in DEMO_WHATSAPP_TEMPLATES.items()},
            },
        ),
        (
            "telegram",
            "Telegram @MusterstadtBot",
            {
                "bot_username": "MusterstadtBot",
                "api_base_url": f"{sandbox}/bot",
            },
        ),
        (
            "facebook",
            "Facebook-Seite Stadt Musterstadt",
            {
                "page_id": "104857600000001",
                "graph_url": f"{sandbox}/",
                "graph_version": "v19.0",
            },
        ),
        (
            "email",
            "E-Mail Rathaus",
            {
                "address": DEMO_MAILBOX,
                "display_name": "Stadt Musterstadt",
                "smtp_host": settings.sandbox_host,
                "smtp_port": settings.sandbox_smtp_port,
            },
        ),
    ]


def seed_demo(session: Session, settings: Settings) -> DemoAccounts:
    """Creates the demo municipality once; later calls return what is there."""
    municipality = session.exec(select(Municipality).where(Municipality.slug == DEMO_SLUG)).first()
    if municipality is None:
        municipality = tenancy.create_municipality(session, slug=DEMO_SLUG, name="Stadt Musterstadt")
        assert municipality.id is not None
        # The accessibility statement names whom to tell about a barrier; the mailbox comes from the channels.
        # Four eyes stay off, so the demo's mayor sends a warning alone after its confirmation page; the
        # town's settings page shows the switch.
        municipality.preferences = {
            "accessibility_contact": {"email": None, "phone": "+49 30 1234 5678"},
            "broadcast_four_eyes": False,
        }
        session.add(municipality)
        for email, name, role in DEMO_STAFF:
            staff = tenancy.create_user(session, municipality_id=municipality.id, email=email, name=name, role=role)
            set_password(session, user=staff, password=DEMO_PASSWORD)
        teams = {
            name: tenancy.create_team(session, municipality_id=municipality.id, name=name)
            for name in ("Bürgerbüro", "Bauamt", "Ordnungsamt")
        }
        for kind, name, config in demo_channel_configs(settings):
            tenancy.create_channel_account(
                session, municipality_id=municipality.id, kind=kind, name=name, config=config
            )
        # The demo's mail goes out signed, as a town's should; the sandbox outbox shows the header.
        generate_dkim_key(session, municipality_id=municipality.id, selector="demo")
        seed_subscriber_demo(session, municipality.id)
        seed_late_whatsapp_case(session, municipality.id)
        seed_inbox_demo(session, municipality.id, clerk_email="sachbearbeitung@musterstadt.example")
        video = {"api_url": f"{settings.sandbox_url}/bigbluebutton/", "secret": DEMO_VIDEO_SECRET}
        rooms.configure_platform(
            session, municipality_id=municipality.id, actor_id=None, kind=DEMO_VIDEO_KIND, values=video
        )
        seed_consultation_demo(session, municipality)
        seed_feedback_demo(session, municipality)
        seed_problem_demo(session, municipality.id, team_id=teams["Bauamt"].id)
        seed_web_reports(session, settings, municipality)
        seed_letter_demo(session, municipality)
        seed_open311_demo(session, settings, municipality)
        seed_invitation_demo(
            session, municipality,
            author=tenancy.get_user_by_email(session, municipality_id=municipality.id,
                                             email="sachbearbeitung@musterstadt.example"),
            mayor=tenancy.get_user_by_email(session, municipality_id=municipality.id,
                                            email="buergermeisterin@musterstadt.example"),
        )  # fmt: skip
    assert municipality.id is not None
    # Outside the first seeding: a demo database from before official warnings gets them too.
    admin = tenancy.get_user_by_email(session, municipality_id=municipality.id, email=DEMO_ADMIN)
    seed_warning_demo(session, admin)
    return DemoAccounts(
        municipality_id=municipality.id,
        accounts=tenancy.list_channel_accounts(session, municipality_id=municipality.id),
    )


def seed_late_whatsapp_case(session: Session, municipality_id: int) -> None:
    """A WhatsApp case whose citizen wrote 30 hours ago: its composer offers the approved templates.

    Stored directly rather than through the webhook, which would date the message now.
    """
    account = next(
        a for a in tenancy.list_channel_accounts(session, municipality_id=municipality_id) if a.kind == "whatsapp"
    )
    assert account.id is not None
    contact = resolve_contact(
        session, municipality_id=municipality_id, kind="phone", address=DEMO_LATE_WHATSAPP, display_name="Jonas Weber"
    )
    assert contact.id is not None
    conversation = open_conversation(session, account=account, contact_id=contact.id, subject=None)
    written = utcnow() - timedelta(hours=30)
    session.add(
        Message(
            municipality_id=municipality_id, conversation_id=conversation.id, channel_account_id=account.id,
            direction="inbound", body="Ist mein Antrag auf einen Anwohnerparkausweis schon bearbeitet?",
            created_at=written,
        )
    )  # fmt: skip
    conversation.last_inbound_at = conversation.last_activity_at = written
    session.flush()


def register_with_sandbox(settings: Settings, sandbox: SandboxClient, accounts: list[ChannelAccount]) -> None:
    """Configures the emulated providers as an administrator would configure the real consoles."""
    for account in accounts:
        config = dict(account.config)
        if account.kind == "email":
            config.update(hub_smtp_host=settings.smtp_host, hub_smtp_port=settings.smtp_port)
        if account.kind == "whatsapp":
            templates = {
                sid: {"language": lang, "body": body} for sid, (_, lang, body) in DEMO_WHATSAPP_TEMPLATES.items()
            }
            config.update(templates=templates)
        sandbox.register_account(
            kind=account.kind,
            webhook_url=tenancy.webhook_url(settings, account),
            config=config,
            secrets=account.secrets,
        )
    sandbox.register_account(kind=DEMO_VIDEO_KIND, webhook_url=None, config={}, secrets={"secret": DEMO_VIDEO_SECRET})


def citizens_have_written(session: Session, municipality_id: int) -> bool:
    """Whether the demo's citizens have written in yet: their messages come through the webhooks.

    Conversations alone do not tell: the seeded bookings' concerns open some before anyone wrote.
    """
    count = session.exec(
        select(func.count()).select_from(InboundEvent).where(InboundEvent.municipality_id == municipality_id)
    ).one()
    return count > 0


def demo_photo() -> bytes:
    """A photo as a phone sends it in a chat (a JPEG), for the demo's Telegram report."""
    image = Image.new("RGB", (800, 600), (96, 128, 72))
    ImageDraw.Draw(image).rectangle((250, 300, 550, 520), fill=(120, 100, 80))
    out = BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def send_demo_citizen_messages(sandbox: SandboxClient, accounts: list[ChannelAccount]) -> None:
    """Citizens write in on every channel, through the same wire path the real providers use."""
    by_kind = {account.kind: account for account in accounts}
    sandbox.send_sms(
        from_="+4915112345678",
        to=by_kind["twilio"].address,
        body="Guten Tag, die Straßenlaterne vor der Hauptstraße 12 ist seit gestern dunkel.",
    )
    # Problem reports by SMS: a category word and an address, geocoded by the sandbox's Nominatim.
    sandbox.send_sms(from_="+4915187654321", to=by_kind["twilio"].address, body="Laterne defekt Hauptstraße 12")
    sandbox.send_sms(from_="+4915176543210", to=by_kind["twilio"].address, body="Schlagloch am Lindenweg 7")
    sandbox.send_whatsapp(
        "+4917612345678",
        "Im Stadtpark liegt ein umgestürzter Baum quer über dem Weg.",
        to=by_kind["whatsapp"].address,
        profile_name="Lena Vogel",
        # In the demo town's Nord (hub/problems/demo.py): a report, asked for its category.
        location=(51.0255, 10.0105),
        label="Stadtpark, Eingang Nord",
    )
    sandbox.send_telegram(
        bot_username=by_kind["telegram"].address,
        chat_id=421337001,
        first_name="Erika",
        last_name="Mustermann",
        text="Wann wird im Ortsteil Nord der Sperrmüll abgeholt?",
    )
    # A photo in the chat: fetched through the bot's getFile and file download, the report's picture.
    sandbox.send_telegram(
        bot_username=by_kind["telegram"].address,
        chat_id=421337002,
        first_name="Jonas",
        text="MUELL hier wurde Sperrmüll abgeladen",
        photo=demo_photo(),
    )
    sandbox.send_messenger(
        page_id=by_kind["facebook"].address,
        psid="7654321098765432",
        text="Hallo! Kann ich meinen Personalausweis auch online verlängern?",
        # What the emulated Graph API's User Profile call answers; the pipeline names the contact by it.
        first_name="Sabine",
        last_name="Wolf",
    )
    sandbox.post_comment(
        page_id=by_kind["facebook"].address,
        from_id="1234567890123456",
        from_name="Jürgen Schäfer",
        post_id=f"{by_kind['facebook'].address}_900000000000001",
        message="Wird die Baustelle am Marktplatz bis zum Stadtfest fertig?",
    )
    sandbox.send_email(
        from_="m.oezdemir@example.org",
        from_name="Meryem Özdemir",
        to=by_kind["email"].address,
        subject="Antrag auf Sondernutzung – Straßenfest Lindenstraße",
        text="Sehr geehrte Damen und Herren,\n\nanbei unser Antrag für das Straßenfest am 12. Juni.\n\n"
        "Mit freundlichen Grüßen\nMeryem Özdemir",
        charset="iso-8859-1",
        transfer_encoding="quoted-printable",
        attachments=[("Antrag-Straßenfest.pdf", "application/pdf", DEMO_PDF)],
    )
