"""A subscriber changes topics and district, or leaves, from the signed "Themen ändern" link in their messages.

The link names the town and the contact (signed, like the unsubscribe link of a mail), since a
citizen following it from a message has no login. How to leave is said in one text,
`HOW_TO_LEAVE`, on every page and in every message that says it, naming every channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from hub.errors import InvalidInput, NotFound
from hub.i18n import N_
from hub.settings import Settings
from hub.subscribers import catalogue, consent, listing
from hub.subscribers.models import District, Subscription, Topic
from hub.subscribers.signed_links import read_token, sign_token

TOPICS_PURPOSE = "subscriber-topics"
# As long as someone may keep a message: the link changes only what its reader receives.
VALID_SECONDS = 3 * 365 * 24 * 3600
HOW_TO_LEAVE = N_(
    "Abmelden können Sie sich jederzeit: Antworten Sie STOP per SMS, WhatsApp, E-Mail oder im Facebook Messenger, "
    "schreiben Sie /stop in Telegram, oder öffnen Sie den Link „Themen ändern“ unter unseren E-Mails und "
    "Chat-Nachrichten."
)
_NO_SUBSCRIPTION = N_("Zu diesem Link gibt es kein Abonnement (mehr). Melden Sie sich einfach neu an.")


@dataclass(frozen=True)
class Reader:
    """Whom a "Themen ändern" link was made for."""

    municipality_id: int
    contact_id: int


def topics_url(settings: Settings, *, municipality_id: int, contact_id: int) -> str:
    token = sign_token({"m": municipality_id, "c": contact_id}, purpose=TOPICS_PURPOSE)
    return f"{settings.public_url.rstrip('/')}/themen/{token}"


def read_link(token: str) -> Reader:
    payload = read_token(token, purpose=TOPICS_PURPOSE, max_age_seconds=VALID_SECONDS)
    try:
        return Reader(municipality_id=int(payload["m"]), contact_id=int(payload["c"]))
    except (KeyError, TypeError, ValueError):
        raise InvalidInput(N_("Der Link ist ungültig.")) from None


@dataclass(frozen=True)
class Choice:
    """What the page shows: the subscription, what it has chosen, and what there is to choose from."""

    subscription: Subscription
    topic_keys: list[str]
    district_keys: list[str]
    topics: list[Topic]
    districts: list[District]


def current_choice(session: Session, *, reader: Reader) -> Choice:
    subscription = consent.get_subscription(session, municipality_id=reader.municipality_id,
                                            contact_id=reader.contact_id)  # fmt: skip
    if subscription is None:
        raise NotFound(_NO_SUBSCRIPTION)
    found = listing.get_subscriber(session, municipality_id=reader.municipality_id, contact_id=reader.contact_id)
    return Choice(
        subscription=subscription, topic_keys=[topic.key for topic in found.topics],
        district_keys=[district.key for district in found.districts],
        topics=catalogue.list_topics(session, municipality_id=reader.municipality_id),
        districts=catalogue.list_districts(session, municipality_id=reader.municipality_id),
    )  # fmt: skip


def change_topics(
    session: Session, *, reader: Reader, topic_keys: list[str], district_keys: list[str], evidence: dict[str, Any]
) -> consent.Change:
    """Keeps the subscription's state (a stopped one stays stopped) and records the new topics and district."""
    subscription = current_choice(session, reader=reader).subscription
    topics = catalogue.topics_by_keys(session, municipality_id=reader.municipality_id, words=topic_keys)
    districts = [catalogue.district_by_key(session, municipality_id=reader.municipality_id, word=key)
                 for key in district_keys]  # fmt: skip
    return consent.subscribe(
        session, municipality_id=reader.municipality_id, contact_id=reader.contact_id, channel_kind=None,
        source="topics_link", evidence=evidence, topic_ids=[topic.id for topic in topics if topic.id is not None],
        district_ids=[district.id for district in districts if district.id is not None],
        state=subscription.state,
    )  # fmt: skip


def leave(session: Session, *, reader: Reader, evidence: dict[str, Any]) -> consent.Change:
    """Stops every message of the town to this citizen, on every channel."""
    current_choice(session, reader=reader)
    return consent.stop(session, municipality_id=reader.municipality_id, contact_id=reader.contact_id,
                        channel_kind=None, source="topics_link", evidence=evidence)  # fmt: skip
