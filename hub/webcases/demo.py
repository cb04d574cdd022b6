"""A letter in the demo town as the web form files it, so that the inbox shows a web case before anyone writes in."""

from __future__ import annotations

from sqlmodel import Session

from hub.tenancy.models import Municipality
from hub.webcases import letters

DEMO_LETTER_NAME = "Helga Brandt"
DEMO_LETTER = "Guten Tag, ich habe kein Handy. Wann kann ich meinen neuen Personalausweis im Bürgerbüro abholen?"


def seed_letter_demo(session: Session, municipality: Municipality) -> None:
    """Files the demo's letter with no way back, as from someone who uses no messenger."""
    letters.file_letter(
        session, municipality=municipality, name=DEMO_LETTER_NAME, concern=DEMO_LETTER, photos=(), language="de"
    )
