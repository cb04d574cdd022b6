"""The demo town's topics and districts."""

from __future__ import annotations

from sqlmodel import Session

from hub.subscribers.catalogue import create_district, create_topic, find_district, find_topic

DEMO_TOPICS = (
    ("baustellen", "Baustellen", "Roadworks", False),
    ("abfall", "Abfall", "Waste collection", False),
    ("veranstaltungen", "Veranstaltungen", "Events", False),
    ("warnungen", "Warnungen", "Warnings", True),
)
DEMO_DISTRICTS = (("mitte", "Mitte"), ("nord", "Nord"), ("sued", "Süd"), ("ost", "Ost"))


def seed_subscriber_demo(session: Session, municipality_id: int) -> None:
    """The demo town's topics and districts; running it again adds only what is missing."""
    for key, name_de, name_en, is_warning in DEMO_TOPICS:
        if find_topic(session, municipality_id=municipality_id, word=key) is None:
            create_topic(
                session,
                municipality_id=municipality_id,
                key=key,
                name_de=name_de,
                name_en=name_en,
                is_warning=is_warning,
            )
    for key, name in DEMO_DISTRICTS:
        if find_district(session, municipality_id=municipality_id, word=key) is None:
            create_district(session, municipality_id=municipality_id, key=key, name=name)
