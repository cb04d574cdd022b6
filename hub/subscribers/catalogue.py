"""The town's topics and districts: created, renamed, listed, and found by the words citizens use."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from hub.errors import Conflict, InvalidInput, NotFound, Term
from hub.i18n import N_
from hub.subscribers.models import District, Topic


def _listed(keys: list[str]) -> str:
    """The keys there are, for a refusal that names them, or the word for none."""
    return ", ".join(keys) or Term(N_("keine"))


def _clean_key(key: str) -> str:
    cleaned = key.strip().lower()
    if not cleaned or len(cleaned) > 40 or not all(c.isascii() and (c.isalnum() or c in "-_") for c in cleaned):
        raise InvalidInput(
            N_("Ungültiger Schlüssel {key!r}: 1 bis 40 Zeichen, nur Buchstaben a-z, Ziffern, - und _ (keine Umlaute)."),
            key=key,
        )
    return cleaned


def create_topic(
    session: Session,
    *,
    municipality_id: int,
    key: str,
    name_de: str,
    name_en: str | None = None,
    is_warning: bool = False,
) -> Topic:
    key = _clean_key(key)
    if not name_de.strip():
        raise InvalidInput(N_("Der Name des Themas fehlt."))
    if find_topic(session, municipality_id=municipality_id, word=key) is not None:
        raise Conflict(N_("Das Thema {key!r} gibt es schon."), key=key)
    topic = Topic(
        municipality_id=municipality_id,
        key=key,
        name_de=name_de.strip(),
        name_en=(name_en or name_de).strip(),
        is_warning=is_warning,
    )
    session.add(topic)
    session.flush()
    return topic


def rename_topic(session: Session, *, municipality_id: int, topic_id: int, name_de: str, name_en: str) -> Topic:
    """Changes what subscribers read; the key stays, since SMS keywords and the API use it."""
    topic = session.get(Topic, topic_id)
    if topic is None or topic.municipality_id != municipality_id:
        raise NotFound(N_("Thema {topic_id} nicht gefunden."), topic_id=topic_id)
    if not name_de.strip():
        raise InvalidInput(N_("Der Name des Themas fehlt."))
    topic.name_de, topic.name_en = name_de.strip(), (name_en or name_de).strip()
    return topic


def list_topics(session: Session, *, municipality_id: int) -> list[Topic]:
    return list(
        session.exec(select(Topic).where(Topic.municipality_id == municipality_id).order_by(col(Topic.id))).all()
    )


def find_topic(session: Session, *, municipality_id: int, word: str) -> Topic | None:
    """The topic whose key or (German or English) name is `word`, ignoring case."""
    wanted = word.strip().casefold()
    return next(
        (
            topic
            for topic in list_topics(session, municipality_id=municipality_id)
            if wanted in (topic.key.casefold(), topic.name_de.casefold(), topic.name_en.casefold())
        ),
        None,
    )


def create_district(session: Session, *, municipality_id: int, key: str, name: str) -> District:
    key = _clean_key(key)
    if not name.strip():
        raise InvalidInput(N_("Der Name des Ortsteils fehlt."))
    if find_district(session, municipality_id=municipality_id, word=key) is not None:
        raise Conflict(N_("Den Ortsteil {key!r} gibt es schon."), key=key)
    district = District(municipality_id=municipality_id, key=key, name=name.strip())
    session.add(district)
    session.flush()
    return district


def rename_district(session: Session, *, municipality_id: int, district_id: int, name: str) -> District:
    district = session.get(District, district_id)
    if district is None or district.municipality_id != municipality_id:
        raise NotFound(N_("Ortsteil {district_id} nicht gefunden."), district_id=district_id)
    if not name.strip():
        raise InvalidInput(N_("Der Name des Ortsteils fehlt."))
    district.name = name.strip()
    return district


def list_districts(session: Session, *, municipality_id: int) -> list[District]:
    return list(
        session.exec(
            select(District).where(District.municipality_id == municipality_id).order_by(col(District.id))
        ).all()
    )


def find_district(session: Session, *, municipality_id: int, word: str) -> District | None:
    """The district whose key or name is `word`, ignoring case."""
    wanted = word.strip().casefold()
    return next(
        (
            district
            for district in list_districts(session, municipality_id=municipality_id)
            if wanted in (district.key.casefold(), district.name.casefold())
        ),
        None,
    )


def topics_by_keys(session: Session, *, municipality_id: int, words: Iterable[str]) -> list[Topic]:
    """The topics named by keys or names; an unknown word is an error that lists the topics there are."""
    found: list[Topic] = []
    unknown: list[str] = []
    for word in words:
        topic = find_topic(session, municipality_id=municipality_id, word=word)
        if topic is None:
            unknown.append(word)
        elif topic not in found:
            found.append(topic)
    if unknown:
        known = [topic.key for topic in list_topics(session, municipality_id=municipality_id)]
        raise InvalidInput(
            N_("Unbekannte Themen: {unknown}. Es gibt: {known}."), unknown=", ".join(unknown), known=_listed(known)
        )
    return found


def district_by_key(session: Session, *, municipality_id: int, word: str) -> District:
    district = find_district(session, municipality_id=municipality_id, word=word)
    if district is None:
        known = [d.key for d in list_districts(session, municipality_id=municipality_id)]
        raise InvalidInput(N_("Unbekannter Ortsteil {word!r}. Es gibt: {known}."), word=word, known=_listed(known))
    return district
