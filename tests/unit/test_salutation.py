"""Texts that greet a person read well whether or not the hub knows the name: no "Guten Tag ," and no ", ."."""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session, select

from channels.base import InboundMessage
from hub.inbox.models import Message
from hub.settings import Settings, get_settings
from hub.templating import LANGUAGES, greeting, render_message
from tests.unit.db import make_town, receive

# What each message template that greets needs besides `name` and `salutation`.
GREETING_TEMPLATES = {
    "salutation.txt.j2": {"person": ""},
    "email_double_opt_in.txt.j2": {
        "municipality": "Gemeinde Testdorf", "topics": ["Abfall"], "district": None, "link": "https://x/b", "days": 7,
    },
    # Staff get these; a colleague's name may be missing as well.
    "password_reset.txt.j2": {"municipality": "Gemeinde Testdorf", "link": "https://x/p", "minutes": 60},
    "staff_invitation.txt.j2": {
        "inviter": "Maria", "municipality": "Gemeinde Testdorf", "email": "s@x.de", "link": "https://x/i", "days": 7,
    },
    "verification_ceiling.txt.j2": {"municipality": "Gemeinde Testdorf", "ceiling": 60, "per_day": False},
    "consultation_confirm.txt.j2": {
        "municipality": "Gemeinde Testdorf", "title": "Bürgermeistersprechstunde", "when": "01.12.2026 17:00",
        "link": "https://x/c", "days": 7,
    },
    "consultation_booked.txt.j2": {
        "municipality": "Gemeinde Testdorf", "title": "Bürgermeistersprechstunde", "when": "01.12.2026 17:00",
        "reference": "A-2026-00001", "location": "video", "address": None, "link": "https://x/b",
        "cancel_link": "https://x/b/absagen", "move_link": "https://x/b/verschieben", "moved": False, "short": False,
        "cancel_keyword": "ABSAGEN",
    },
    "consultation_reminder.txt.j2": {
        "title": "Bürgermeistersprechstunde", "when": "01.12.2026 17:00", "reference": "S-ABC123",
        "location": "in_person", "address": "Rathaus, Zimmer 12", "short": False,
    },
    "consultation_cancelled.txt.j2": {
        "title": "Bürgermeistersprechstunde", "when": "01.12.2026 17:00", "reference": "S-ABC123",
        "offered": ["08.12.2026 17:00"], "short": False,
    },
    "consultation_moved.txt.j2": {
        "title": "Bürgermeistersprechstunde", "before": "01.12.2026 17:00", "when": "02.12.2026 17:00",
        "reference": "S-ABC123", "short": False,
    },
    "consultation_cancel_done.txt.j2": {
        "title": "Bürgermeistersprechstunde", "when": "01.12.2026 17:00", "reference": "A-2026-00007",
        "short": False, "keyword": "TERMIN",
    },
    "consultation_called.txt.j2": {
        "title": "Bürgermeistersprechstunde", "reference": "A-2026-00007", "join_link": "https://x/join",
        "page": "https://x/b/warteraum", "short": False,
    },
    "problem_confirm.txt.j2": {
        "municipality": "Gemeinde Testdorf", "reference": "M-2026-00001", "link": "https://x/m", "days": 7,
    },
    "letter_confirm.txt.j2": {
        "municipality": "Gemeinde Testdorf", "reference": "M-2026-00001", "link": "https://x/s", "days": 7,
    },
    "feedback_request.txt.j2": {
        "booking": True, "title": "Bürgermeistersprechstunde", "when": "01.12.2026", "reference": "A-2026-00007",
        "link": "https://x/r", "short": False, "digits": True,
    },
}  # fmt: skip
STRAY = re.compile(r" [,.!?]|, *[.!?]|  |^[,.]", re.MULTILINE)


def test_every_message_template_that_greets_is_checked_here() -> None:
    for language in LANGUAGES:
        folder = get_settings().templates_dir / "messages" / language
        greeting_ones = {
            path.name for path in folder.glob("*.j2") if re.search(r"salutation|Guten Tag|Hello", path.read_text())
        }
        assert greeting_ones == set(GREETING_TEMPLATES), language


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", sorted(GREETING_TEMPLATES))
@pytest.mark.parametrize("name", [None, "", "  ", "Erika Mustermann"])
def test_greeting_templates_read_well_with_and_without_a_name(language: str, template: str, name: str | None) -> None:
    context = {**GREETING_TEMPLATES[template], **greeting(language, name)}
    if template == "salutation.txt.j2":
        context["person"] = (name or "").strip()
    text = render_message(template, language, **context)
    assert not STRAY.search(text), text
    first_line = text.splitlines()[0]
    assert first_line.startswith("Guten Tag" if language == "de" else "Hello")
    assert ("Erika Mustermann" in first_line) == bool(name and name.strip())


@pytest.mark.parametrize(
    ("text", "with_name", "without_name"),
    [
        ("Hallo {{ name }}, die Straße ist gesperrt.", "Hallo Erika, die Straße ist gesperrt.",
         "Hallo, die Straße ist gesperrt."),
        ("Danke, {{ name }}.", "Danke, Erika.", "Danke."),
        ("Guten Tag {{ name }}!", "Guten Tag Erika!", "Guten Tag!"),
        ("{{ name }}, die Straße ist gesperrt.", "Erika, die Straße ist gesperrt.", "Die Straße ist gesperrt."),
        ("Gesperrt. {{ name }}, bitte umfahren.", "Gesperrt. Erika, bitte umfahren.", "Gesperrt. Bitte umfahren."),
        ("Hallo {{ name }} und willkommen", "Hallo Erika und willkommen", "Hallo und willkommen"),
        ("{{ salutation }},\n\ndie Straße", "Guten Tag Erika,\n\ndie Straße", "Guten Tag,\n\ndie Straße"),
        ("{% if name %}Liebe/r {{ name }}{% else %}Hallo{% endif %}!", "Liebe/r Erika!", "Hallo!"),
    ],
)  # fmt: skip
def test_an_unknown_name_leaves_no_gap(text: str, with_name: str, without_name: str) -> None:
    overrides = {"de": {"acknowledgement.txt.j2": text}}
    assert render_message("acknowledgement.txt.j2", "de", overrides, **greeting("de", "Erika")) == with_name
    assert render_message("acknowledgement.txt.j2", "de", overrides, **greeting("de", None)) == without_name


def test_the_towns_own_acknowledgement_greets_by_name_or_plainly(session: Session, settings: Settings) -> None:
    town = make_town(session)
    town.municipality.preferences = {
        "texts": {"de": {"acknowledgement.txt.j2": "Guten Tag {{ name }}, danke! Ihre Nummer: {{ reference }}."}}
    }
    session.add(town.municipality)
    session.commit()
    nameless = InboundMessage(provider_id="1", sender="4711", text="Die Ampel ist aus.")
    named = InboundMessage(provider_id="2", sender="4712", text="Der Baum ist umgefallen.", sender_name="Erika")
    [first, second] = receive(session, settings, town.accounts["telegram"], nameless, named)
    acks = [session.exec(select(Message).where(Message.id == r.to_send[0])).one().body for r in (first, second)]
    assert acks[0].startswith("Guten Tag, danke! Ihre Nummer: A-") and not STRAY.search(acks[0])
    assert acks[1].startswith("Guten Tag Erika, danke! Ihre Nummer: A-")
