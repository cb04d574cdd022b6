"""CSV import of existing subscriber lists: every line checked first, then all imported or nothing.

Columns (header line required, any order, `;` or `,` as separator), by their German names or
the English ones older lists use: Telefon (phone) and/or E-Mail (email), at least one; Themen
(topics: keys or names, separated by spaces or commas; empty: every topic); Ortsteil (district:
key or name; empty: the whole municipality); Sprache (language: de or en; empty: de);
Einwilligung (consent_evidence: how the person agreed, required: without proof of consent
nobody is imported); Einwilligungsdatum (consent_date: optional, YYYY-MM-DD or DD.MM.YYYY).

A person who has said STOP is reported, not re-subscribed: an old list must not undo an
objection. Each imported person gets one ConsentEvent "imported" with the file, line, the
evidence text and the date.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

import phonenumbers
from sqlmodel import Session, select

from hub.contacts.models import ContactIdentity
from hub.contacts.service import resolve_contact
from hub.subscribers import catalogue, consent
from hub.subscribers.models import District, Topic
from hub.tenancy.models import Municipality

REQUIRED_COLUMNS = ("consent_evidence",)
ADDRESS_COLUMNS = ("phone", "email")
# Each column's key with the German name a file is given (and the sample file has) in this order.
COLUMN_NAMES = {
    "phone": "Telefon", "email": "E-Mail", "topics": "Themen", "district": "Ortsteil", "language": "Sprache",
    "consent_evidence": "Einwilligung", "consent_date": "Einwilligungsdatum",
}  # fmt: skip
KNOWN_COLUMNS = tuple(COLUMN_NAMES)
# What a header cell may say for each key, compared case-insensitively: the German name, a few
# spellings people type, and the English key.
_HEADER_KEYS = {
    **{key: key for key in COLUMN_NAMES}, **{name.casefold(): key for key, name in COLUMN_NAMES.items()},
    "telefonnummer": "phone", "handy": "phone", "email": "email", "e-mail-adresse": "email", "thema": "topics",
    "nachweis der einwilligung": "consent_evidence", "einwilligung am": "consent_date",
}  # fmt: skip
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Row:
    line: int
    phone: str | None
    email: str | None
    topics: list[Topic]
    district: District | None
    language: str
    evidence: str
    consent_date: date | None


@dataclass
class Checked:
    """The outcome of validation: the rows, or the problems by line number (line 1 is the header)."""

    rows: list[Row] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate(
    session: Session, *, municipality: Municipality, text: str, progress: Callable[[int], None] | None = None
) -> Checked:
    """Reads and checks every line; writes nothing. `progress` hears of each line checked."""
    assert municipality.id is not None
    checked = Checked()
    lines = text.splitlines()
    if not lines:
        checked.problems.append((1, "Die Datei ist leer."))
        return checked
    dialect = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=dialect)
    written = [name.strip() for name in reader.fieldnames or []]
    columns = [_HEADER_KEYS.get(name.casefold(), name) for name in written]
    reader.fieldnames = columns
    missing = [COLUMN_NAMES[name] for name in REQUIRED_COLUMNS if name not in columns]
    if not any(name in columns for name in ADDRESS_COLUMNS):
        missing.append("Telefon oder E-Mail")
    unknown = [name for name in columns if name not in KNOWN_COLUMNS]
    twice = sorted({COLUMN_NAMES[name] for name in columns if name in KNOWN_COLUMNS and columns.count(name) > 1})
    if missing or unknown or twice:
        if missing:
            checked.problems.append((1, f"Spalte(n) fehlen: {', '.join(missing)}."))
        if unknown:
            allowed = ", ".join(f"{name} ({key})" for key, name in COLUMN_NAMES.items())
            checked.problems.append((1, f"Unbekannte Spalte(n): {', '.join(unknown)}; erlaubt: {allowed}."))
        if twice:
            checked.problems.append((1, f"Spalte(n) doppelt (deutsch und englisch benannt?): {', '.join(twice)}."))
        return checked
    topics = catalogue.list_topics(session, municipality_id=municipality.id)
    districts = catalogue.list_districts(session, municipality_id=municipality.id)
    seen: dict[str, int] = {}
    for record in reader:
        if progress is not None:
            progress(1)
        line = reader.line_num
        values = {key: (value or "").strip() for key, value in record.items() if key}
        if not any(values.values()):
            continue
        problems: list[str] = []
        phone = _phone(values.get("phone", ""), municipality, problems)
        email = _email(values.get("email", ""), problems)
        if not values.get("phone") and not values.get("email"):
            problems.append("Telefonnummer oder E-Mail-Adresse fehlt.")
        for address in filter(None, (phone, email)):
            if address in seen:
                problems.append(f"{address} steht schon in Zeile {seen[address]}.")
            else:
                seen[address] = line
        chosen_topics: list[Topic] = []
        for word in filter(None, re.split(r"[\s,]+", values.get("topics", ""))):
            topic = next(
                (t for t in topics if word.casefold() in (t.key, t.name_de.casefold(), t.name_en.casefold())), None
            )
            if topic is None:
                problems.append(f"Unbekanntes Thema {word!r}; es gibt: {', '.join(t.key for t in topics)}.")
            elif topic not in chosen_topics:
                chosen_topics.append(topic)
        district = None
        if values.get("district"):
            wanted = values["district"].casefold()
            district = next((d for d in districts if wanted in (d.key, d.name.casefold())), None)
            if district is None:
                problems.append(
                    f"Unbekannter Ortsteil {values['district']!r}; es gibt: {', '.join(d.key for d in districts)}."
                )
        language = values.get("language", "").lower() or "de"
        if language not in consent.LANGUAGES:
            problems.append(f"Unbekannte Sprache {language!r}; erlaubt: de, en.")
        evidence = values.get("consent_evidence", "")
        if not evidence:
            problems.append("Nachweis der Einwilligung (Spalte Einwilligung) fehlt.")
        consent_date = _date(values.get("consent_date", ""), problems)
        for kind, known in (("phone", phone), ("email", email)):
            if known and _has_stopped(session, municipality.id, kind, known):
                problems.append(f"{known} hat sich abgemeldet (STOP) und wird nicht wieder angemeldet.")
        if phone and email:
            owners = {
                _owner(session, municipality.id, "phone", phone),
                _owner(session, municipality.id, "email", email),
            }
            if None not in owners and len(owners) > 1:
                problems.append(f"{phone} und {email} gehören zu verschiedenen Kontakten; bitte erst zusammenführen.")
        if problems:
            checked.problems.extend((line, problem) for problem in problems)
            continue
        checked.rows.append(
            Row(
                line=line,
                phone=phone,
                email=email,
                topics=chosen_topics,
                district=district,
                language=language,
                evidence=evidence,
                consent_date=consent_date,
            )
        )
    if not checked.rows and not checked.problems:
        checked.problems.append((1, "Die Datei enthält keine Zeilen mit Abonnenten."))
    return checked


def _phone(raw: str, municipality: Municipality, problems: list[str]) -> str | None:
    if not raw:
        return None
    try:
        number = phonenumbers.parse(raw, municipality.default_region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        problems.append(f"Ungültige Telefonnummer {raw!r}.")
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _email(raw: str, problems: list[str]) -> str | None:
    if not raw:
        return None
    if not _EMAIL.fullmatch(raw) or len(raw) > 254:
        problems.append(f"Ungültige E-Mail-Adresse {raw!r}.")
        return None
    return raw.lower()


def _date(raw: str, problems: list[str]) -> date | None:
    if not raw:
        return None
    for pattern in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(raw, pattern).date()
        except ValueError:
            continue
    problems.append(f"Ungültiges Datum {raw!r}; erwartet JJJJ-MM-TT oder TT.MM.JJJJ.")
    return None


def _owner(session: Session, municipality_id: int, kind: str, address: str) -> int | None:
    return session.exec(
        select(ContactIdentity.contact_id).where(
            ContactIdentity.municipality_id == municipality_id,
            ContactIdentity.kind == kind,
            ContactIdentity.address == address,
        )
    ).first()


def _has_stopped(session: Session, municipality_id: int, kind: str, address: str) -> bool:
    owner = _owner(session, municipality_id, kind, address)
    return owner is not None and consent.is_stopped(session, owner)


@dataclass(frozen=True)
class Imported:
    """One subscribed line: the contact, the address it was found by, and whether the import created it."""

    contact_id: int
    address: str
    created: bool


def import_rows(
    session: Session,
    *,
    municipality: Municipality,
    rows: list[Row],
    file_name: str,
    progress: Callable[[int], None] | None = None,
) -> list[Imported]:
    """Subscribes every checked row; the caller commits once, so a failure imports nothing."""
    assert municipality.id is not None
    imported = []
    for row in rows:
        addresses = [(kind, address) for kind, address in (("phone", row.phone), ("email", row.email)) if address]
        # Start from an address the hub already knows, so the person stays one contact.
        addresses.sort(key=lambda pair: _owner(session, municipality.id or 0, *pair) is None)
        (kind, address), *others = addresses
        created = _owner(session, municipality.id, kind, address) is None
        contact = resolve_contact(
            session, municipality_id=municipality.id, kind=kind, address=address, language=row.language
        )
        for other_kind, other_address in others:
            if _owner(session, municipality.id, other_kind, other_address) is None:
                assert contact.id is not None
                session.add(
                    ContactIdentity(
                        municipality_id=municipality.id, contact_id=contact.id, kind=other_kind, address=other_address
                    )
                )
        assert contact.id is not None
        consent.subscribe(
            session,
            municipality_id=municipality.id,
            contact_id=contact.id,
            channel_kind=None,
            source="import",
            action="imported",
            evidence={
                "file": file_name,
                "line": row.line,
                "consent_evidence": row.evidence,
                "consent_date": row.consent_date.isoformat() if row.consent_date else None,
            },
            topic_ids=[topic.id for topic in row.topics if topic.id is not None],
            district_ids=[row.district.id] if row.district and row.district.id else [],
            language=row.language,
        )
        imported.append(Imported(contact_id=contact.id, address=address, created=created))
        if progress is not None:
            progress(1)
    session.flush()
    return imported


def sample_csv(session: Session, *, municipality_id: int) -> str:
    """A file to fill in: the German header and two example lines with the town's own topics and districts.

    It starts with a byte order mark, so that spreadsheets open it as UTF-8 (the import skips it).
    """
    topics = catalogue.list_topics(session, municipality_id=municipality_id)
    districts = catalogue.list_districts(session, municipality_id=municipality_id)
    topic_keys = " ".join(topic.key for topic in topics[:2])
    district = districts[0].key if districts else ""
    lines = [
        ";".join(COLUMN_NAMES.values()),
        f"0151 12345678;;{topic_keys};{district};de;Unterschrift auf der Liste beim Bürgerfest;2025-06-14",
        ";erika.mustermann@example.org;;;en;Anmeldeformular im Bürgerbüro;14.06.2025",
    ]
    return "\ufeff" + "\r\n".join(lines) + "\r\n"
