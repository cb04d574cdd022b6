"""The administration pages: channel accounts, staff, API tokens, teams with targets and office hours, settings,
and the accessibility statement's contact."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from channels.registry import adapter_class
from hub.db import get_session
from hub.delivery import staff_mail, trial
from hub.errors import Conflict, InvalidInput
from hub.i18n import N_, language_of, translate
from hub.settings import get_settings
from hub.tenancy import administration as admin
from hub.tenancy import processing_record as records
from hub.tenancy.models import Municipality
from hub.tenancy.office_hours import target_in_units
from hub.tenancy.preferences import DEFAULTS, preference
from hub.tenancy.roles import ROLES
from hub.tenancy.service import describe_channel_account, list_api_tokens, list_channel_accounts
from hub.tenancy.signin import lock_minutes_left
from hub.web.auth import Staff, require
from hub.web.downloads import download
from hub.web.processing_record import record_document
from hub.web.rendering import render
from hub.web.security import verify_csrf

router = APIRouter(prefix="/app/admin", include_in_schema=False, dependencies=[Depends(verify_csrf)])

# What a redirect after a change tells the person (?done=<key>), as German msgids.
DONE = {
    "channel_created": N_("Der Kanal wurde angelegt. Tragen Sie jetzt die Webhook-Adresse beim Anbieter ein."),
    "channel_saved": N_("Die Einstellungen des Kanals wurden gespeichert."),
    "channel_on": N_("Der Kanal ist aktiv."),
    "channel_off": N_("Der Kanal ist deaktiviert: Es wird nichts mehr darüber gesendet."),
    "staff_saved": N_("Rolle und Team wurden gespeichert."),
    "staff_on": N_("Das Konto ist wieder aktiv."),
    "staff_off": N_("Das Konto ist deaktiviert; die Person wurde überall abgemeldet."),
    "staff_unlocked": N_("Die Sperre wurde aufgehoben."),
    "token_revoked": N_("Das API-Token ist widerrufen und funktioniert ab sofort nicht mehr."),
    "team_saved": N_("Das Team wurde gespeichert."),
    "settings_saved": N_("Die Einstellungen wurden gespeichert."),
    "accessibility_saved": N_("Kontakt und Durchsetzungsstelle der Erklärung zur Barrierefreiheit wurden gespeichert."),
}


def _notices(request: Request, done: str | None) -> list[tuple[str, str]]:
    return [("success", translate(request, DONE[done]))] if done in DONE else []


def _back(path: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?done={done}", status_code=303)


async def _form_values(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _team_id(value: str) -> int | None:
    return int(value) if value.strip().isdigit() else None


@router.get("", response_class=HTMLResponse)
def overview(request: Request, staff: Staff = Depends(require("admin"))) -> HTMLResponse:
    return render(request, "staff/admin/index.html", title=translate(request, "Verwaltung"))


@router.get("/verarbeitungsverzeichnis", response_class=HTMLResponse)
def processing_record(
    request: Request, staff: Staff = Depends(require("admin")), session: Session = Depends(get_session)
) -> Response:
    record = records.processing_record(session, municipality=staff.municipality)
    document = record_document(record, language=language_of(request))
    return download(
        document, filename=f"verarbeitungsverzeichnis-{staff.municipality.slug}.html", media_type="text/html"
    )


# Channel accounts


@router.get("/channels", response_class=HTMLResponse)
def channels(
    request: Request,
    done: str | None = None,
    staff: Staff = Depends(require("admin")),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    settings = get_settings()
    accounts = [
        describe_channel_account(settings, account, show_secrets=False)
        for account in list_channel_accounts(session, municipality_id=staff.municipality_id)
    ]
    return render(
        request,
        "staff/admin/channels.html",
        title=translate(request, "Kanäle"),
        accounts=accounts,
        kind_labels=admin.channel_kinds(),
        messages=_notices(request, done),
    )


def _channel_form(
    request: Request, *, kind: str, name: str = "", values: dict[str, str] | None = None, error: str | None = None
) -> HTMLResponse:
    return render(
        request,
        "staff/admin/channel_new.html",
        status_code=422 if error else 200,
        title=translate(request, "Neuer Kanal"),
        kind=kind,
        kind_labels=admin.channel_kinds(),
        fields=admin.channel_fields(kind) if kind else (),
        name=name,
        values=values or {},
        messages=[("error", error)] if error else [],
    )


@router.get("/channels/new", response_class=HTMLResponse)
def new_channel_form(request: Request, kind: str = "", staff: Staff = Depends(require("admin"))) -> HTMLResponse:
    return _channel_form(request, kind=kind if kind in admin.channel_kinds() else "")


@router.post("/channels/new", response_class=HTMLResponse)
async def create_channel(
    request: Request, staff: Staff = Depends(require("admin")), session: Session = Depends(get_session)
) -> Response:
    values = await _form_values(request)
    kind, name = values.get("kind", ""), values.get("name", "")
    try:
        account = admin.create_channel_account(
            session, municipality_id=staff.municipality_id, actor_id=staff.user_id, kind=kind, name=name, values=values
        )
    except (InvalidInput, Conflict) as error:
        if kind not in admin.channel_kinds():
            raise
        # Secrets typed in are not sent back into the page.
        secret_keys = {field.key for field in admin.channel_fields(kind) if field.secret}
        kept = {key: value for key, value in values.items() if key not in secret_keys}
        return _channel_form(request, kind=kind, name=name, values=kept, error=error.text(language_of(request)))
    session.commit()
    return _back(f"/app/admin/channels/{account.id}", "channel_created")


def _channel_page(
    request: Request,
    staff: Staff,
    session: Session,
    account_id: int,
    *,
    messages: list[tuple[str, str]],
    test: trial.TestResult | None = None,
    test_to: str = "",
    test_text: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    account = admin.get_channel_account(session, municipality_id=staff.municipality_id, account_id=account_id)
    described = describe_channel_account(get_settings(), account, show_secrets=False)
    return render(
        request,
        "staff/admin/channel.html",
        status_code=status_code,
        title=account.name,
        account=account,
        described=described,
        kind_labels=admin.channel_kinds(),
        identity=adapter_class(account.kind).identity,
        fields=admin.channel_fields(account.kind),
        masked=admin.masked_secrets(account),
        console_secrets=admin.console_secrets(account),
        messages=messages,
        test=test,
        test_to=test_to,
        test_text=test_text,
    )


@router.get("/channels/{account_id}", response_class=HTMLResponse)
def channel(
    request: Request,
    account_id: int,
    done: str | None = None,
    staff: Staff = Depends(require("admin")),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    return _channel_page(request, staff, session, account_id, messages=_notices(request, done))


@router.post("/channels/{account_id}", response_class=HTMLResponse)
async def save_channel(
    request: Request,
    account_id: int,
    staff: Staff = Depends(require("admin")),
    session: Session = Depends(get_session),
) -> Response:
    values = await _form_values(request)
    try:
        admin.update_channel_account(
            session, municipality_id=staff.municipality_id, actor_id=staff.user_id, account_id=account_id,
            name=values.get("name", ""), values=values,
        )  # fmt: skip
    except (InvalidInput, Conflict) as error:
        session.rollback()
        return _channel_page(
            request, staff, session, account_id, messages=[("error", error.text(language_of(request)))], status_code=422
        )
    session.commit()
    return _back(f"/app/admin/channels/{account_id}", "channel_saved")


@router.post("/channels/{account_id}/active")
def channel_active(
    account_id: int,
    active: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("admin")),
    session: Session = Depends(get_session),
) -> RedirectResponse:
    on = active == "1"
    admin.set_channel_active(
        session, municipality_id=staff.municipality_id, actor_id=staff.user_id, account_id=account_id, active=on
    )
    session.commit()
    return _back(f"/app/admin/channels/{account_id}", "channel_on" if on else "channel_off")


@router.post("/channels/{account_id}/test", response_class=HTMLResponse)
def channel_test(
    request: Request,
    account_id: int,
    to: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("admin")),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    try:
        result = trial.send_test_message(
            session, settings=get_settings(), municipality_id=staff.municipality_id, actor_id=staff.user_id,
            account_id=account_id, to=to, text=text,
        )  # fmt: skip
    except (InvalidInput, Conflict) as error:
        return _channel_page(
            request, staff, session, account_id, messages=[], test_to=to, test_text=text, status_code=422,
            test=trial.TestResult(ok=False, error=error.text(language_of(request)), permanent=True),
        )  # fmt: skip
    session.commit()
    return _channel_page(request, staff, session, account_id, messages=[], test=result, test_to=to, test_text=text)


# Staff


def _staff_page(
    request: Request, staff: Staff, session: Session, *, messages: list[tuple[str, str]], status_code: int = 200,
    invite: dict[str, str] | None = None, one_time_link: str | None = None,
) -> HTMLResponse:  # fmt: skip
    people = admin.list_staff(session, municipality_id=staff.municipality_id)
    teams = admin.list_teams(session, municipality_id=staff.municipality_id)
    return render(
        request,
        "staff/admin/staff.html",
        status_code=status_code,
        title=translate(request, "Mitarbeitende"),
        people=people,
        locked={person.id: lock_minutes_left(person) for person in people},
        teams={team.id: team.name for team in teams},
        roles=ROLES,
        invite=invite or {},
        one_time_link=one_time_link,
        messages=messages,
    )


@router.get("/staff", response_class=HTMLResponse)
def staff_list(
    request: Request,
    done: str | None = None,
    staff: Staff = Depends(require("admin")),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    return _staff_page(request, staff, session, messages=_notices(request, done))


@router.post("/staff", response_class=HTMLResponse)
def invite(
    request: Request,
    name: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "staff",
    team_id: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("admin")),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    try:
        user, token = admin.invite_staff(
            session, municipality_id=staff.municipality_id, actor_id=staff.user_id, name=name, email=email,
            role=role, team_id=_team_id(team_id),
        )  # fmt: skip
    except (InvalidInput, Conflict) as error:
        session.rollback()
        form = {"name": name, "email": email, "role": role, "team_id": team_id}
        problem = [("error", error.text(language_of(request)))]
        return _staff_page(request, staff, session, messages=problem, status_code=422, invite=form)
    session.commit()
    settings = get_settings()
    if staff_mail.mail_invitation(session, settings=settings, user=user, inviter=staff.user, token=token):
        notice = translate(request, "{name} wurde angelegt und hat eine E-Mail mit dem Link zum Passwort bekommen.")
        return _staff_page(request, staff, session, messages=[("success", notice.format(name=user.name))])
    notice = translate(
        request,
        "{name} wurde angelegt. Es konnte keine E-Mail gesendet werden: Geben Sie der Person diesen Link, "
        "er wird nur jetzt angezeigt.",
    )
    return _staff_page(
        request, staff, session, messages=[("success", notice.format(name=user.name))],
        one_time_link=admin.invitation_link(settings, token),
    )  # fmt: skip


@router.get("/staff/{user_id}", response_class=HTMLResponse)
def person(
    request: Request,
    user_id: int,
    done: str | None = None,
    staff: Staff = Depends(require("admin")),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    found = admin.get_staff(session, municipality_id=staff.municipality_id, user_id=user_id)
    return render(
        request,
        "staff/admin/person.html",
        title=found.name,
        person=found,
        locked_minutes=lock_minutes_left(found),
        teams=admin.list_teams(session, municipality_id=staff.municipality_id),
        roles=ROLES,
        messages=_notices(request, done),
    )


@router.post("/staff/{user_id}")
def save_person(
    user_id: int,
    role: Annotated[str, Form()] = "",
    team_id: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("admin")),
    session: Session = Depends(get_session),
) -> RedirectResponse:
    admin.update_staff(
        session, municipality_id=staff.municipality_id, actor_id=staff.user_id, user_id=user_id, role=role,
        team_id=_team_id(team_id),
    )  # fmt: skip
    session.commit()
    return _back(f"/app/admin/staff/{user_id}", "staff_saved")


@router.post("/staff/{user_id}/active")
def person_active(
    user_id: int,
    active: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("admin")),
    session: Session = Depends(get_session),
) -> RedirectResponse:
    on = active == "1"
    admin.set_staff_active(
        session, municipality_id=staff.municipality_id, actor_id=staff.user_id, user_id=user_id, active=on
    )
    session.commit()
    return _back(f"/app/admin/staff/{user_id}", "staff_on" if on else "staff_off")


@router.post("/staff/{user_id}/unlock")
def person_unlock(
    user_id: int, staff: Staff = Depends(require("admin")), session: Session = Depends(get_session)
) -> RedirectResponse:
    admin.unlock_staff(session, municipality_id=staff.municipality_id, actor_id=staff.user_id, user_id=user_id)
    session.commit()
    return _back(f"/app/admin/staff/{user_id}", "staff_unlocked")


# API tokens


@router.get("/tokens", response_class=HTMLResponse)
def tokens(
    request: Request,
    user_id: int | None = None,
    done: str | None = None,
    staff: Staff = Depends(require("admin")),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    person = admin.get_staff(session, municipality_id=staff.municipality_id, user_id=user_id) if user_id else None
    return render(
        request,
        "staff/admin/tokens.html",
        title=translate(request, "API-Tokens"),
        person=person,
        tokens=list_api_tokens(session, municipality_id=staff.municipality_id, user_id=user_id),
        messages=_notices(request, done),
    )


@router.post("/tokens/{token_id}/revoke")
def revoke_token(
    token_id: int, staff: Staff = Depends(require("admin")), session: Session = Depends(get_session)
) -> RedirectResponse:
    admin.revoke_token(session, municipality_id=staff.municipality_id, actor_id=staff.user_id, token_id=token_id)
    session.commit()
    return _back("/app/admin/tokens", "token_revoked")


# Teams


@router.get("/teams", response_class=HTMLResponse)
def teams(
    request: Request,
    done: str | None = None,
    staff: Staff = Depends(require("admin")),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    return render(
        request,
        "staff/admin/teams.html",
        title=translate(request, "Teams"),
        teams=admin.list_teams(session, municipality_id=staff.municipality_id),
        weekdays=admin.WEEKDAYS,
        weekday_labels=admin.WEEKDAY_LABELS,
        messages=_notices(request, done),
    )


def _team_form(
    request: Request, *, team_id: int | None, values: dict[str, str], error: str | None = None
) -> HTMLResponse:
    return render(
        request,
        "staff/admin/team.html",
        status_code=422 if error else 200,
        title=translate(request, "Neues Team") if team_id is None else values.get("name", ""),
        team_id=team_id,
        values=values,
        weekdays=admin.WEEKDAYS,
        weekday_labels=admin.WEEKDAY_LABELS,
        messages=[("error", error)] if error else [],
    )


def _hours_values(hours: dict[str, list[list[str]]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for day, spans in hours.items():
        for suffix, (start, end) in zip(("", "2"), spans, strict=False):
            values[f"{day}_from{suffix}"], values[f"{day}_to{suffix}"] = start, end
    return values


def _target_values(name: str, minutes: int | None) -> dict[str, str]:
    """A stored target (office minutes) as the form's amount and unit fields."""
    amount, unit = target_in_units(minutes)
    return {name: amount, f"{name}_unit": unit}


def _target(values: dict[str, str], name: str, what: str) -> int | None:
    return admin.parse_target(values.get(name, ""), values.get(f"{name}_unit", "hours"), what)


@router.get("/teams/new", response_class=HTMLResponse)
def new_team(request: Request, staff: Staff = Depends(require("admin"))) -> HTMLResponse:
    return _team_form(request, team_id=None, values={})


@router.get("/teams/{team_id}", response_class=HTMLResponse)
def team(
    request: Request, team_id: int, staff: Staff = Depends(require("admin")), session: Session = Depends(get_session)
) -> HTMLResponse:
    found = admin.get_team(session, municipality_id=staff.municipality_id, team_id=team_id)
    values = {
        "name": found.name,
        **_target_values("first_response", found.first_response_minutes),
        **_target_values("resolution", found.resolution_minutes),
        **_hours_values(found.office_hours),
    }
    return _team_form(request, team_id=team_id, values=values)


async def _save_team(request: Request, staff: Staff, session: Session, team_id: int | None) -> Response:
    values = await _form_values(request)
    try:
        saved = admin.save_team(
            session, municipality_id=staff.municipality_id, actor_id=staff.user_id, team_id=team_id,
            name=values.get("name", ""),
            first_response_minutes=_target(values, "first_response", N_("Erste Antwort")),
            resolution_minutes=_target(values, "resolution", N_("Erledigung")),
            office_hours=admin.parse_office_hours(values),
        )  # fmt: skip
    except (InvalidInput, Conflict) as error:
        session.rollback()
        return _team_form(request, team_id=team_id, values=values, error=error.text(language_of(request)))
    session.commit()
    return _back(f"/app/admin/teams/{saved.id}", "team_saved") if team_id else _back("/app/admin/teams", "team_saved")


@router.post("/teams/new", response_class=HTMLResponse)
async def create_team(
    request: Request, staff: Staff = Depends(require("admin")), session: Session = Depends(get_session)
) -> Response:
    return await _save_team(request, staff, session, None)


@router.post("/teams/{team_id}", response_class=HTMLResponse)
async def save_team(
    request: Request, team_id: int, staff: Staff = Depends(require("admin")), session: Session = Depends(get_session)
) -> Response:
    admin.get_team(session, municipality_id=staff.municipality_id, team_id=team_id)
    return await _save_team(request, staff, session, team_id)


# The municipality's settings


def _settings_values(municipality: Municipality) -> dict[str, str]:
    """The form as the town's settings stand, the hub's defaults where it has set nothing."""
    targets = preference(municipality, "response_targets")
    values = {
        **_target_values("first_response", targets.get("first_response_minutes")),
        **_target_values("resolution", targets.get("resolution_minutes")),
        "retention_days": str(preference(municipality, "retention_days") or ""),
        "allowed_phone_countries": ", ".join(preference(municipality, "allowed_phone_countries")),
        "verification_codes_per_hour": str(preference(municipality, "verification_codes_per_hour")),
        "verification_codes_per_day": str(preference(municipality, "verification_codes_per_day")),
        "feedback_after_conversations": "1" if preference(municipality, "feedback_after_conversations") else "",
        "broadcast_four_eyes": "1" if preference(municipality, "broadcast_four_eyes") else "",
        **_hours_values(preference(municipality, "office_hours")),
    }
    for lang, texts in preference(municipality, "texts").items():
        for name, source in texts.items():
            values[f"text_{lang}_{name}"] = source
    return values


def _settings_page(
    request: Request, values: dict[str, str], *, municipality_name: str, messages: list[tuple[str, str]],
    status_code: int = 200,
) -> HTMLResponse:  # fmt: skip
    return render(
        request,
        "staff/admin/settings.html",
        status_code=status_code,
        title=translate(request, "Einstellungen der Gemeinde"),
        values=values,
        weekdays=admin.WEEKDAYS,
        weekday_labels=admin.WEEKDAY_LABELS,
        editable_texts=admin.EDITABLE_TEXTS,
        builtin=admin.builtin_examples(municipality_name),
        text_languages=admin.TEXT_LANGUAGES,
        messages=messages,
    )


@router.get("/settings", response_class=HTMLResponse)
def municipality_settings(
    request: Request, done: str | None = None, staff: Staff = Depends(require("admin"))
) -> HTMLResponse:
    return _settings_page(
        request, _settings_values(staff.municipality), municipality_name=staff.municipality.name,
        messages=_notices(request, done),
    )  # fmt: skip


@router.post("/settings", response_class=HTMLResponse)
async def save_municipality_settings(
    request: Request, staff: Staff = Depends(require("admin")), session: Session = Depends(get_session)
) -> Response:
    values = await _form_values(request)
    texts = {
        lang: {name: values.get(f"text_{lang}_{name}", "") for name in admin.EDITABLE_TEXTS}
        for lang in admin.TEXT_LANGUAGES
    }
    try:
        retention = values.get("retention_days", "").strip()
        admin.save_municipality_settings(
            session, municipality_id=staff.municipality_id, actor_id=staff.user_id, texts=texts,
            office_hours=admin.parse_office_hours(values),
            first_response_minutes=_target(values, "first_response", N_("Erste Antwort")),
            resolution_minutes=_target(values, "resolution", N_("Erledigung")),
            retention_days=admin.parse_number(retention, N_("Aufbewahrungsfrist")),
            code_limits=admin.parse_code_limits(values),
            feedback_after_conversations=values.get("feedback_after_conversations") == "1",
            broadcast_four_eyes=values.get("broadcast_four_eyes") == "1",
        )  # fmt: skip
    except (InvalidInput, Conflict) as error:
        session.rollback()
        return _settings_page(
            request, values, municipality_name=staff.municipality.name,
            messages=[("error", error.text(language_of(request)))], status_code=422,
        )  # fmt: skip
    session.commit()
    return _back("/app/admin/settings", "settings_saved")


# The accessibility statement's contact and enforcement body

ACCESSIBILITY_FIELDS = ("email", "phone", "enforcement_name", "enforcement_url")


def _accessibility_page(
    request: Request, values: dict[str, str], *, messages: list[tuple[str, str]], status_code: int = 200
) -> HTMLResponse:
    return render(request, "staff/admin/accessibility.html", status_code=status_code,
                  title=translate(request, "Erklärung zur Barrierefreiheit"), values=values,
                  default_enforcement=DEFAULTS["accessibility_enforcement"],
                  messages=messages)  # fmt: skip


@router.get("/accessibility", response_class=HTMLResponse)
def accessibility_settings(
    request: Request, done: str | None = None, staff: Staff = Depends(require("admin"))
) -> HTMLResponse:
    values = {key: value or "" for key, value in asdict(admin.accessibility_contact(staff.municipality)).items()}
    return _accessibility_page(request, values, messages=_notices(request, done))


@router.post("/accessibility", response_class=HTMLResponse)
async def save_accessibility_settings(
    request: Request, staff: Staff = Depends(require("admin")), session: Session = Depends(get_session)
) -> Response:
    values = {key: value for key, value in (await _form_values(request)).items() if key in ACCESSIBILITY_FIELDS}
    try:
        admin.save_accessibility_contact(session, municipality_id=staff.municipality_id, actor_id=staff.user_id,
                                         **{key: values.get(key, "") for key in ACCESSIBILITY_FIELDS})  # fmt: skip
    except InvalidInput as error:
        session.rollback()
        return _accessibility_page(request, values, messages=[("error", error.text(language_of(request)))],
                                   status_code=422)  # fmt: skip
    session.commit()
    return _back("/app/admin/accessibility", "accessibility_saved")
