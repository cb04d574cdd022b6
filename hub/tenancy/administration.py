"""What the administration pages change: channel accounts, staff, teams, office hours and the town's settings.

Every change is written to the audit trail with the person who made it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from jinja2 import TemplateError
from sqlmodel import Session, col, select

from channels.base import InvalidSetting, SettingField
from channels.registry import adapter_class, adapter_classes, known_kinds
from hub.audit.models import AuditEvent
from hub.errors import Conflict, InvalidInput, Joined, NotFound, Phrase, Term, setting_problems, template_error
from hub.i18n import N_
from hub.settings import Settings
from hub.templating import greeting, render_message
from hub.tenancy import service as tenancy
from hub.tenancy.models import ChannelAccount, Municipality, StaffUser, Team
from hub.tenancy.office_hours import TARGET_UNITS, WEEKDAYS, WORKING_DAY_MINUTES
from hub.tenancy.preferences import DEFAULTS, preference
from hub.tenancy.roles import ROLES
from hub.tenancy.signin import create_password_reset, end_all_sessions

log = logging.getLogger(__name__)

# An invitation link has to survive a weekend in someone's mailbox, unlike a reset link.
INVITATION_VALID = timedelta(days=7)
WEEKDAY_LABELS = {
    "mon": N_("Montag"),
    "tue": N_("Dienstag"),
    "wed": N_("Mittwoch"),
    "thu": N_("Donnerstag"),
    "fri": N_("Freitag"),
    "sat": N_("Samstag"),
    "sun": N_("Sonntag"),
}
# The citizen texts an administrator may reword, per language (templates/messages/<lang>/<name>).
EDITABLE_TEXTS = {
    "acknowledgement.txt.j2": N_("Eingangsbestätigung"),
    "acknowledgement_sms.txt.j2": N_("Eingangsbestätigung per SMS (kurz)"),
    "acknowledgement_subject.txt.j2": N_("Betreff der Eingangsbestätigung (E-Mail)"),
}
TEXT_LANGUAGES = ("de", "en")
_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
ENFORCEMENT_NAME_LIMIT = 200


MASK = "********"


def audit(
    session: Session, *, actor_id: int | None, municipality_id: int, action: str, object_type: str,
    object_id: int | None, **details: Any,
) -> AuditEvent:  # fmt: skip
    event = AuditEvent(
        municipality_id=municipality_id, actor_id=actor_id, action=action,
        object_type=object_type, object_id=object_id, details=details,
    )  # fmt: skip
    session.add(event)
    return event


# Channel accounts


def channel_kinds() -> dict[str, str]:
    """Each kind with the provider's name, in the order of those names."""
    return {adapter.kind: adapter.title for adapter in sorted(adapter_classes(), key=lambda a: a.title)}


def channel_fields(kind: str) -> tuple[SettingField, ...]:
    """What the form asks for: the adapter's settings, less those only the command line sets.

    Secrets the hub invents itself (a webhook secret, a verify token) are not asked for: they
    are generated and shown for the provider's console (`console_secrets`).
    """
    if kind not in known_kinds():
        raise InvalidInput(N_("Unbekannter Kanaltyp {kind!r}."), kind=kind)
    return tuple(field for field in adapter_class(kind).configuration.fields() if field.on_form)


def console_secrets(account: ChannelAccount) -> list[tuple[SettingField, str]]:
    """The hub-made secrets the provider's console must be given alongside the webhook URL."""
    fields = adapter_class(account.kind).configuration.fields()
    return [(field, str(account.secrets.get(field.key, ""))) for field in fields if field.generated]


def get_channel_account(session: Session, *, municipality_id: int, account_id: int) -> ChannelAccount:
    account = session.get(ChannelAccount, account_id)
    if account is None or account.municipality_id != municipality_id:
        raise NotFound(N_("Diesen Kanal gibt es nicht."))
    return account


def masked_secrets(account: ChannelAccount) -> dict[str, str]:
    """What a page may show of the secrets: that they are set, never their value."""
    return {key: MASK for key, value in account.secrets.items() if value}


def _split_values(kind: str, values: Mapping[str, str], *, creating: bool) -> tuple[dict[str, Any], dict[str, str]]:
    config: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    missing = []
    malformed = []
    for field in channel_fields(kind):
        value = (values.get(field.key) or "").strip()
        if field.secret:
            if value:
                secrets[field.key] = value
            elif field.required and creating:
                missing.append(field.title)
            continue
        if not value and field.required and field.input != "checkbox":
            missing.append(field.title)
        try:
            config[field.key] = field.parse(value)
        except InvalidSetting as error:
            malformed.append(error.problem)
    if missing:
        raise InvalidInput(N_("Bitte ausfüllen: {fields}."), fields=Joined(map(Term, missing)))
    if malformed:
        raise InvalidInput(setting_problems(malformed, " "))
    return config, secrets


def create_channel_account(
    session: Session, *, municipality_id: int, actor_id: int, kind: str, name: str, values: Mapping[str, str]
) -> ChannelAccount:
    if not name.strip():
        raise InvalidInput(N_("Bitte geben Sie dem Kanal einen Namen."))
    config, secrets = _split_values(kind, values, creating=True)
    account = tenancy.create_channel_account(
        session,
        municipality_id=municipality_id,
        kind=kind,
        name=name.strip(),
        config={key: value for key, value in config.items() if value != ""},
        secrets_=secrets,
    )
    audit(session, actor_id=actor_id, municipality_id=municipality_id, action="channel.created",
          object_type="channel_account", object_id=account.id, kind=kind, address=account.address)  # fmt: skip
    return account


def update_channel_account(
    session: Session, *, municipality_id: int, actor_id: int, account_id: int, name: str, values: Mapping[str, str]
) -> ChannelAccount:
    """Changes the settings; a secret is only replaced when a new value was typed in."""
    account = get_channel_account(session, municipality_id=municipality_id, account_id=account_id)
    if not name.strip():
        raise InvalidInput(N_("Bitte geben Sie dem Kanal einen Namen."))
    config, secrets = _split_values(account.kind, values, creating=False)
    merged = dict(account.config)
    for key, value in config.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    configuration = adapter_class(account.kind).configuration
    problems = configuration.problems(merged, {**account.secrets, **secrets})
    if problems:
        raise InvalidInput(setting_problems(problems, end="."))
    account.name = name.strip()
    account.config = merged
    account.address = str(merged[configuration.address_key()])
    account.secrets = {**account.secrets, **secrets}
    session.add(account)
    audit(session, actor_id=actor_id, municipality_id=municipality_id, action="channel.updated",
          object_type="channel_account", object_id=account.id, secrets_replaced=sorted(secrets))  # fmt: skip
    return account


def set_channel_active(
    session: Session, *, municipality_id: int, actor_id: int, account_id: int, active: bool
) -> ChannelAccount:
    account = get_channel_account(session, municipality_id=municipality_id, account_id=account_id)
    account.active = active
    session.add(account)
    audit(session, actor_id=actor_id, municipality_id=municipality_id,
          action="channel.activated" if active else "channel.deactivated",
          object_type="channel_account", object_id=account.id)  # fmt: skip
    return account


# Staff


def list_staff(session: Session, *, municipality_id: int) -> list[StaffUser]:
    return list(
        session.exec(
            select(StaffUser)
            .where(StaffUser.municipality_id == municipality_id)
            .order_by(col(StaffUser.active).desc(), col(StaffUser.name))
        ).all()
    )


def get_staff(session: Session, *, municipality_id: int, user_id: int) -> StaffUser:
    user = session.get(StaffUser, user_id)
    if user is None or user.municipality_id != municipality_id:
        raise NotFound(N_("Diese Person gibt es nicht."))
    return user


def _check_team(session: Session, municipality_id: int, team_id: int | None) -> None:
    if team_id is not None:
        team = session.get(Team, team_id)
        if team is None or team.municipality_id != municipality_id:
            raise InvalidInput(N_("Dieses Team gibt es nicht."))


def invite_staff(
    session: Session, *, municipality_id: int, actor_id: int, name: str, email: str, role: str, team_id: int | None
) -> tuple[StaffUser, str]:
    """Creates the person without a password; returns them and the token of their first-password link."""
    address = email.strip().lower()
    if not name.strip():
        raise InvalidInput(N_("Bitte geben Sie den Namen an."))
    if not _EMAIL.fullmatch(address):
        raise InvalidInput(N_("{email!r} ist keine gültige E-Mail-Adresse."), email=email)
    existing = session.exec(
        select(StaffUser).where(StaffUser.municipality_id == municipality_id, StaffUser.email == address)
    ).first()
    if existing is not None:
        raise Conflict(N_("Es gibt schon ein Konto für {address}."), address=address)
    _check_team(session, municipality_id, team_id)
    user = tenancy.create_user(session, municipality_id=municipality_id, email=address, name=name.strip(), role=role)
    user.team_id = team_id
    session.add(user)
    token = create_password_reset(session, user=user, valid=INVITATION_VALID)
    audit(session, actor_id=actor_id, municipality_id=municipality_id, action="staff.invited",
          object_type="staff_user", object_id=user.id, email=address, role=role)  # fmt: skip
    return user, token


def invitation_link(settings: Settings, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}/app/password/reset/{token}"


def update_staff(
    session: Session, *, municipality_id: int, actor_id: int, user_id: int, role: str, team_id: int | None
) -> StaffUser:
    user = get_staff(session, municipality_id=municipality_id, user_id=user_id)
    if role not in ROLES:
        raise InvalidInput(N_("Unbekannte Rolle {role!r}."), role=role)
    if user.id == actor_id and role != user.role:
        # Otherwise the last administrator could lock everyone out of this page.
        raise InvalidInput(N_("Ihre eigene Rolle kann nur eine andere Person mit Verwaltungsrechten ändern."))
    _check_team(session, municipality_id, team_id)
    changes = {"role": [user.role, role], "team_id": [user.team_id, team_id]}
    user.role = role
    user.team_id = team_id
    session.add(user)
    audit(session, actor_id=actor_id, municipality_id=municipality_id, action="staff.updated",
          object_type="staff_user", object_id=user.id, **changes)  # fmt: skip
    return user


def set_staff_active(session: Session, *, municipality_id: int, actor_id: int, user_id: int, active: bool) -> StaffUser:
    """Deactivating signs the person out everywhere at once and revokes every API token of theirs."""
    user = get_staff(session, municipality_id=municipality_id, user_id=user_id)
    if user.id == actor_id and not active:
        raise InvalidInput(N_("Sie können Ihr eigenes Konto nicht deaktivieren."))
    user.active = active
    session.add(user)
    details: dict[str, Any] = {}
    if not active:
        assert user.id is not None
        end_all_sessions(session, user_id=user.id)
        details["tokens_revoked"] = tenancy.revoke_all_api_tokens(session, user_id=user.id)
    audit(session, actor_id=actor_id, municipality_id=municipality_id,
          action="staff.activated" if active else "staff.deactivated",
          object_type="staff_user", object_id=user.id, **details)  # fmt: skip
    return user


def revoke_token(
    session: Session, *, municipality_id: int, actor_id: int | None, token_id: int
) -> tenancy.TokenListing:
    """`actor_id` None: revoked on the command line, by whoever runs the server."""
    revoked = tenancy.revoke_api_token(session, municipality_id=municipality_id, token_id=token_id)
    api_token = revoked.token
    audit(session, actor_id=actor_id, municipality_id=municipality_id, action="api_token.revoked",
          object_type="api_token", object_id=api_token.id, name=api_token.name, user_id=api_token.user_id)  # fmt: skip
    return revoked


def unlock_staff(session: Session, *, municipality_id: int, actor_id: int, user_id: int) -> StaffUser:
    user = get_staff(session, municipality_id=municipality_id, user_id=user_id)
    user.locked_until = None
    user.failed_logins = 0
    session.add(user)
    audit(session, actor_id=actor_id, municipality_id=municipality_id, action="staff.unlocked",
          object_type="staff_user", object_id=user.id)  # fmt: skip
    return user


# Teams and office hours


def list_teams(session: Session, *, municipality_id: int) -> list[Team]:
    return list(session.exec(select(Team).where(Team.municipality_id == municipality_id).order_by(col(Team.name))))


def get_team(session: Session, *, municipality_id: int, team_id: int) -> Team:
    team = session.get(Team, team_id)
    if team is None or team.municipality_id != municipality_id:
        raise NotFound(N_("Dieses Team gibt es nicht."))
    return team


def parse_number(value: str, what: str) -> int | None:
    """A whole number of minutes or days from a form field; empty means none."""
    value = value.strip()
    if not value:
        return None
    if not value.isdigit() or int(value) <= 0:
        raise InvalidInput(N_("{what}: bitte eine ganze Zahl größer als 0 angeben."), what=Term(what))
    return int(value)


# A target further out than a working year is a typing slip (and would not fit the column).
MAX_TARGET_WORKING_DAYS = 250


def parse_target(amount: str, unit: str, what: str) -> int | None:
    """A response target from the form's amount ("4", "1,5") and unit (hours, working days), as office minutes."""
    amount = amount.strip().replace(",", ".")
    if not amount:
        return None
    if unit not in TARGET_UNITS:
        raise InvalidInput(N_("{what}: bitte Stunden oder Arbeitstage wählen."), what=Term(what))
    if not re.fullmatch(r"\d+(\.\d+)?", amount) or round(float(amount) * TARGET_UNITS[unit]) <= 0:
        raise InvalidInput(N_("{what}: bitte eine Zahl größer als 0 angeben, z. B. 4 oder 1,5."), what=Term(what))
    minutes = round(float(amount) * TARGET_UNITS[unit])
    if minutes > MAX_TARGET_WORKING_DAYS * WORKING_DAY_MINUTES:
        raise InvalidInput(N_("{what}: höchstens {days} Arbeitstage."), what=Term(what), days=MAX_TARGET_WORKING_DAYS)
    return minutes


def parse_office_hours(values: Mapping[str, str]) -> dict[str, list[list[str]]]:
    """Form fields into {"mon": [["08:00", "12:00"], ["13:00", "16:00"]], ...}; an empty day is closed.

    Each day has two from/to pairs (`{day}_from`, `{day}_to`, then `{day}_from2`, `{day}_to2`),
    so a lunch break can be left out of the hours the response targets count.
    """
    hours: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        spans: list[list[str]] = []
        for suffix in ("", "2"):
            start = (values.get(f"{day}_from{suffix}") or "").strip()
            end = (values.get(f"{day}_to{suffix}") or "").strip()
            if not start and not end:
                continue
            follows = not spans or spans[-1][1] <= start
            if not (_TIME.fullmatch(start) and _TIME.fullmatch(end)) or start >= end or not follows:
                raise InvalidInput(
                    N_(
                        "Öffnungszeiten {day}: bitte Beginn und Ende als HH:MM angeben, das Ende nach dem"
                        " Beginn und den zweiten Zeitraum nach dem ersten."
                    ),
                    day=Term(WEEKDAY_LABELS[day]),
                )
            spans.append([start, end])
        if spans:
            hours[day] = spans
    return hours


def save_team(
    session: Session, *, municipality_id: int, actor_id: int, team_id: int | None, name: str,
    first_response_minutes: int | None, resolution_minutes: int | None, office_hours: dict[str, list[list[str]]],
) -> Team:  # fmt: skip
    """Creates (team_id None) or changes a team; empty office hours mean the municipality's."""
    name = name.strip()
    if not name:
        raise InvalidInput(N_("Bitte geben Sie dem Team einen Namen."))
    same_name = session.exec(select(Team).where(Team.municipality_id == municipality_id, Team.name == name)).first()
    if same_name is not None and same_name.id != team_id:
        raise Conflict(N_("Ein Team {name!r} gibt es schon."), name=name)
    if team_id is None:
        team = tenancy.create_team(session, municipality_id=municipality_id, name=name)
    else:
        team = get_team(session, municipality_id=municipality_id, team_id=team_id)
    team.name = name
    team.first_response_minutes = first_response_minutes
    team.resolution_minutes = resolution_minutes
    team.office_hours = office_hours
    session.add(team)
    session.flush()
    audit(session, actor_id=actor_id, municipality_id=municipality_id,
          action="team.created" if team_id is None else "team.updated", object_type="team", object_id=team.id,
          name=name, first_response_minutes=first_response_minutes, resolution_minutes=resolution_minutes,
          office_hours=office_hours)  # fmt: skip
    return team


# The municipality's settings


def text_example(municipality_name: str, language: str) -> dict[str, Any]:
    """The values an acknowledgement is filled with when the settings show or check one."""
    return {
        "municipality": municipality_name, "reference": "A-2026-00042", "subject": "Straßenlaterne defekt",
        "link": "https://…/status/…", **greeting(language, "Erika Mustermann"),
    }  # fmt: skip


def builtin_examples(municipality_name: str) -> dict[str, dict[str, str]]:
    """What the hub's own wording of each editable text reads like, filled in, shown where the town has
    none of its own: the people who change the settings did not write its template syntax."""
    return {
        lang: {name: render_message(name, lang, **text_example(municipality_name, lang)) for name in EDITABLE_TEXTS}
        for lang in TEXT_LANGUAGES
    }


def _check_text(name: str, lang: str, source: str) -> None:
    """Refuses a text that would not fill when a citizen writes in, saying where it goes wrong."""
    example = text_example("Gemeinde", lang)
    try:
        render_message(name, lang, overrides={lang: {name: source}}, **example)
    except TemplateError as error:
        what = Phrase(N_("{text} ({lang})"), text=Term(EDITABLE_TEXTS[name]), lang=lang)
        raise template_error(error, what=what, known=example) from None


@dataclass(frozen=True)
class CodeLimits:
    """Who may get a one-time SMS code, and how many the town sends at most (SMS pumping)."""

    countries: list[str]
    per_hour: int
    per_day: int


def parse_code_limits(values: Mapping[str, str]) -> CodeLimits:
    """The form's country list ("DE, AT") and ceilings; an empty field is the hub's default."""
    countries = [code.strip().upper() for code in values.get("allowed_phone_countries", "").split(",") if code.strip()]
    unknown = [code for code in countries if code not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise InvalidInput(
            N_(
                "Länder für SMS-Codes: {unknown} ist kein Ländercode; bitte zweistellige Codes mit Komma "
                "angeben, z. B. „DE, AT“."
            ),
            unknown=", ".join(unknown),
        )
    per_hour = parse_number(values.get("verification_codes_per_hour", ""), N_("SMS-Codes pro Stunde"))
    per_day = parse_number(values.get("verification_codes_per_day", ""), N_("SMS-Codes pro Tag"))
    limits = CodeLimits(
        countries=countries or DEFAULTS["allowed_phone_countries"],
        per_hour=per_hour or DEFAULTS["verification_codes_per_hour"],
        per_day=per_day or DEFAULTS["verification_codes_per_day"],
    )
    if limits.per_day < limits.per_hour:
        raise InvalidInput(N_("SMS-Codes pro Tag: mindestens so viele wie pro Stunde."))
    return limits


def _set_preferences(municipality: Municipality, **changes: Any) -> None:
    # A new dict, so the JSON column sees the change.
    municipality.preferences = {**(municipality.preferences or {}), **changes}


def save_municipality_settings(
    session: Session, *, municipality_id: int, actor_id: int, texts: Mapping[str, Mapping[str, str]],
    office_hours: dict[str, list[list[str]]], first_response_minutes: int | None, resolution_minutes: int | None,
    retention_days: int | None, code_limits: CodeLimits, feedback_after_conversations: bool = False,
    broadcast_four_eyes: bool = False,
) -> Municipality:  # fmt: skip
    """Acknowledgement texts (an empty text restores the built-in one), office hours, targets, retention, SMS codes,
    whether resolved cases are followed by a feedback request, and whether broadcasts need a second person."""
    municipality = session.get(Municipality, municipality_id)
    if municipality is None:
        raise NotFound(N_("Gemeinde nicht gefunden."))
    own_texts = {lang: dict(found) for lang, found in (municipality.preferences or {}).get("texts", {}).items()}
    for lang, by_name in texts.items():
        for name, source in by_name.items():
            if name not in EDITABLE_TEXTS or lang not in TEXT_LANGUAGES:
                raise InvalidInput(N_("Unbekannter Text {name!r} ({lang})."), name=name, lang=lang)
            if source.strip():
                _check_text(name, lang, source.strip())
                own_texts.setdefault(lang, {})[name] = source.strip()
            else:
                own_texts.get(lang, {}).pop(name, None)
    if retention_days is not None and retention_days < 30:
        raise InvalidInput(N_("Die Aufbewahrungsfrist muss mindestens 30 Tage betragen."))
    _set_preferences(
        municipality,
        texts=own_texts,
        office_hours=office_hours,
        response_targets={"first_response_minutes": first_response_minutes, "resolution_minutes": resolution_minutes},
        retention_days=retention_days,
        allowed_phone_countries=code_limits.countries,
        verification_codes_per_hour=code_limits.per_hour,
        verification_codes_per_day=code_limits.per_day,
        feedback_after_conversations=feedback_after_conversations,
        broadcast_four_eyes=broadcast_four_eyes,
    )
    session.add(municipality)
    audit(session, actor_id=actor_id, municipality_id=municipality_id, action="municipality.settings_changed",
          object_type="municipality", object_id=municipality_id, retention_days=retention_days,
          code_limits=asdict(code_limits),
          first_response_minutes=first_response_minutes, resolution_minutes=resolution_minutes,
          office_hours=office_hours, texts=own_texts,
          feedback_after_conversations=feedback_after_conversations,
          broadcast_four_eyes=broadcast_four_eyes)  # fmt: skip
    return municipality


def four_eyes(session: Session, *, municipality_id: int) -> bool:
    """Whether the town requires a second person's approval for every broadcast."""
    municipality = session.get(Municipality, municipality_id)
    if municipality is None:
        raise NotFound(N_("Gemeinde nicht gefunden."))
    return bool(preference(municipality, "broadcast_four_eyes"))


def set_four_eyes(session: Session, *, municipality_id: int, actor_id: int, required: bool) -> Municipality:
    """Whether every broadcast needs a second person's approval (hub.broadcasts.service.approve reads it)."""
    municipality = session.get(Municipality, municipality_id)
    if municipality is None:
        raise NotFound(N_("Gemeinde nicht gefunden."))
    _set_preferences(municipality, broadcast_four_eyes=required)
    session.add(municipality)
    audit(session, actor_id=actor_id, municipality_id=municipality_id, action="municipality.settings_changed",
          object_type="municipality", object_id=municipality_id, broadcast_four_eyes=required)  # fmt: skip
    return municipality


# The accessibility statement's contact and enforcement body


@dataclass(frozen=True)
class AccessibilityContact:
    """What the town itself set for its accessibility statement; None where the hub's default applies."""

    email: str | None
    phone: str | None
    enforcement_name: str
    enforcement_url: str


def accessibility_contact(municipality: Municipality) -> AccessibilityContact:
    contact = (municipality.preferences or {}).get("accessibility_contact") or {}
    enforcement = (municipality.preferences or {}).get("accessibility_enforcement") or {}
    return AccessibilityContact(email=contact.get("email"), phone=contact.get("phone"),
                                enforcement_name=enforcement.get("name") or "",
                                enforcement_url=enforcement.get("url") or "")  # fmt: skip


def _accessibility_email(value: str) -> str | None:
    address = value.strip()
    if address and (not _EMAIL.fullmatch(address) or len(address) > 254):
        raise InvalidInput(N_("Kontakt für Barrieren: „{email}“ ist keine gültige E-Mail-Adresse."), email=address)
    return address.lower() or None


def _accessibility_phone(value: str, region: str) -> str | None:
    # Kept as the admin wrote it ("+49 30 1234 5678"): the statement shows it to citizens that way.
    written = " ".join(value.split())
    if not written:
        return None
    try:
        number = phonenumbers.parse(written, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise InvalidInput(N_("Telefon für Barrieren: „{phone}“ ist keine gültige Telefonnummer."), phone=written)
    return written


def _enforcement(name: str, url: str) -> dict[str, str] | None:
    name, url = name.strip(), url.strip()
    if not name and not url:
        return None
    if not name or not url:
        raise InvalidInput(
            N_(
                "Durchsetzungsstelle: bitte Name und Internetadresse angeben, oder beide Felder leer lassen "
                "für die Schlichtungsstelle nach dem Behindertengleichstellungsgesetz."
            )
        )
    if len(name) > ENFORCEMENT_NAME_LIMIT:
        raise InvalidInput(N_("Durchsetzungsstelle: der Name ist zu lang (höchstens {limit} Zeichen)."),
                           limit=ENFORCEMENT_NAME_LIMIT)  # fmt: skip
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in url)
    ):
        raise InvalidInput(
            N_("Durchsetzungsstelle: „{url}“ ist keine Internetadresse; sie beginnt mit https:// oder http://."),
            url=url,
        )
    return {"name": name, "url": url}


def save_accessibility_contact(
    session: Session, *, municipality_id: int, actor_id: int | None, email: str, phone: str, enforcement_name: str,
    enforcement_url: str,
) -> Municipality:  # fmt: skip
    """Whom the accessibility statement names for reporting a barrier, and the Land's enforcement body.

    An empty email names the town's first mailbox again, an empty enforcement body the federal one.
    Every field is checked before anything is kept.
    """
    municipality = session.get(Municipality, municipality_id)
    if municipality is None:
        raise NotFound(N_("Gemeinde nicht gefunden."))
    contact = {"email": _accessibility_email(email), "phone": _accessibility_phone(phone, municipality.default_region)}
    enforcement = _enforcement(enforcement_name, enforcement_url)
    preferences = {**(municipality.preferences or {}), "accessibility_contact": contact}
    if enforcement is None:
        preferences.pop("accessibility_enforcement", None)
    else:
        preferences["accessibility_enforcement"] = enforcement
    municipality.preferences = preferences
    session.add(municipality)
    audit(session, actor_id=actor_id, municipality_id=municipality_id, action="municipality.accessibility_changed",
          object_type="municipality", object_id=municipality_id, contact=contact, enforcement=enforcement)  # fmt: skip
    return municipality
