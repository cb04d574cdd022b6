"""Per-municipality preferences with the hub's defaults: keywords, quiet hours, phone countries, prices."""

from __future__ import annotations

from typing import Any

from hub.tenancy.models import Municipality

DEFAULTS: dict[str, Any] = {
    # Whole-message keywords, matched case-insensitively on every channel.
    "stop_keywords": ["STOP", "STOPP", "ABMELDEN", "ENDE", "UNSUBSCRIBE", "CANCEL"],
    "start_keywords": ["START", "ANMELDEN"],
    "help_keywords": ["HILFE", "HELP"],
    # In a messenger chat, "TELEFON +49…" adds a phone number, confirmed by a code sent to it.
    "phone_keywords": ["TELEFON", "HANDY", "PHONE"],
    # Whole-message keywords for consultation hours: the first books, the second cancels. CANCEL
    # alone is a STOP keyword above (and Twilio's own), so the English one is two words.
    "consultation_keywords": ["TERMIN", "APPOINTMENT"],
    "consultation_cancel_keywords": ["ABSAGEN", "CANCEL APPOINTMENT"],
    # The address of one of the town's channel accounts (a mailbox such as termin@…) where every
    # message asks for a consultation slot and is answered with the next free ones; None: none.
    "consultation_address": None,
    # After a resolved conversation, ask the citizen for feedback as after a consultation (off: only those).
    "feedback_after_conversations": False,
    # Four eyes: every broadcast is approved by someone other than who wrote it; a warning may go out
    # without a second person only as an emergency, with a reason (see hub/broadcasts/service.py).
    "broadcast_four_eyes": False,
    # Non-warning broadcasts wait for the end of quiet hours (municipality's time zone).
    "quiet_hours": {"start": "21:00", "end": "07:00"},
    # One-time codes go only to numbers from these countries (SMS pumping fraud).
    "allowed_phone_countries": ["DE"],
    # Ceilings on the one-time codes the whole town sends (SMS pumping through many numbers and
    # clients): reaching one stops codes until the window has passed and mails the administrators.
    "verification_codes_per_hour": 60,
    "verification_codes_per_day": 300,
    # For the cost estimate shown before a broadcast is sent.
    "sms_segment_price_eur": 0.08,
    # Texts citizens receive: overrides per language of templates/messages/<lang>/<name>,
    # e.g. {"de": {"stop_confirmation.txt.j2": "Sie sind abgemeldet."}}.
    "texts": {},
    # When the town hall answers: response targets count only these hours (municipality's time
    # zone). A team's own office hours replace them; {} means around the clock.
    "office_hours": {day: [["08:00", "16:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    # Targets for conversations without a team (a team's own targets replace them); minutes of office time.
    "response_targets": {"first_response_minutes": 480, "resolution_minutes": 2400},
    # Mängelmelder: a text starting with one of these words is a problem report ("MELDUNG Laterne
    # defekt Hauptstraße 12"), as is one starting with a category's own key ("LATERNE Hauptstraße 12").
    "problem_keywords": ["MELDUNG", "MANGEL", "MÄNGEL", "REPORT"],
    # The town's area when it has no district shapes: [min lon, min lat, max lon, max lat]; None: anywhere.
    "problem_area_bbox": None,
    # Who takes reports from outside the town's area, named in the answer ("Landkreis …, Tel. …"); None: no one named.
    "problem_outside_contact": None,
    # Resolved conversations older than this many days may be deleted.
    "retention_days": 730,
    # Where citizens report a barrier (accessibility statement): {"email": …, "phone": …}; without an
    # email the town's first mailbox is named.
    "accessibility_contact": {"email": None, "phone": None},
    # The enforcement body of the town's Land (BITV 2.0 and the Länder's laws require naming it and linking it).
    "accessibility_enforcement": {
        "name": "Schlichtungsstelle nach dem Behindertengleichstellungsgesetz",
        "url": "https://www.schlichtungsstelle-bgg.de",
    },
}


def preference(municipality: Municipality, key: str) -> Any:
    """The municipality's own value for `key`, or the hub's default."""
    if key not in DEFAULTS:
        raise KeyError(f"unknown preference {key!r}")
    return (municipality.preferences or {}).get(key, DEFAULTS[key])
