"""Renders the pages in templates/ui/ in the visitor's language, escaped, with the helpers every page uses."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime as babel_format_datetime
from babel.numbers import format_decimal
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from hub.i18n import DEFAULT_LANGUAGE, N_, gettext_for
from hub.settings import get_settings
from hub.tenancy.office_hours import target_in_units
from hub.tenancy.roles import ROLE_LABELS
from hub.web.security import CSRF_FIELD

# The staff navigation: (path, label, permission). Labels are German msgids, translated in the template.
NAVIGATION = (
    ("/app/inbox", N_("Posteingang"), "inbox.read"),
    ("/app/broadcasts", N_("Rundsendungen"), "broadcasts.read"),
    ("/app/subscribers", N_("Abonnenten"), "subscribers.read"),
    ("/app/consultations", N_("Sprechstunden"), "consultations.read"),
    ("/app/waiting-rooms", N_("Warteräume"), "consultations.read"),
    ("/app/problems", N_("Mängelmelder"), "problems.read"),
    ("/app/reports", N_("Berichte"), "reports.read"),
    ("/app/admin", N_("Verwaltung"), "admin"),
)


@lru_cache
def environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(get_settings().templates_dir)),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(gettext_for(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["datetime"] = lambda value, tz="Europe/Berlin": format_local(value, language, tz)
    env.filters["duration"] = lambda seconds: format_duration(seconds, language)
    env.filters["target"] = lambda minutes: format_target(minutes, language)
    env.filters["number"] = lambda value: format_decimal(value, locale=language)
    return env


def format_local(value: datetime | None, language: str, timezone: str = "Europe/Berlin") -> str:
    if value is None:
        return "–"
    return babel_format_datetime(value.astimezone(ZoneInfo(timezone)), "short", locale=language)


def format_duration(seconds: float | timedelta | None, language: str = DEFAULT_LANGUAGE) -> str:
    """'3 Std. 5 Min.' or '3 h 5 min': how long a citizen has waited, to the minute."""
    if seconds is None:
        return "–"
    total = int(seconds.total_seconds() if isinstance(seconds, timedelta) else seconds)
    minutes = max(total, 0) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    units = ("T.", "Std.", "Min.") if language == "de" else ("d", "h", "min")
    parts = [f"{count} {unit}" for count, unit in zip((days, hours, minutes), units, strict=True) if count]
    return " ".join(parts[:2]) or f"0 {units[2]}"


def format_target(minutes: int | None, language: str = DEFAULT_LANGUAGE) -> str:
    """A response target (office minutes) as staff set it: '5 Arbeitstage', '4 Std.', '1 Std. 30 Min.'; none is '–'.

    Office time has no calendar days, so a target that is not whole working days is told in hours.
    """
    if not minutes:
        return "–"
    amount, unit = target_in_units(minutes)
    if unit == "working_days":
        message = N_("{n} Arbeitstag") if amount == "1" else N_("{n} Arbeitstage")
        return gettext_for(language).gettext(message).format(n=amount)
    hours, rest = divmod(minutes, 60)
    units = ("Std.", "Min.") if language == "de" else ("h", "min")
    return " ".join(f"{count} {name}" for count, name in zip((hours, rest), units, strict=True) if count)


def render(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Renders templates/ui/<template> with the request, the CSRF field, the user and the navigation."""
    language = getattr(request.state, "language", DEFAULT_LANGUAGE)
    staff = getattr(request.state, "staff", None)
    navigation = [
        (path, label) for path, label, permission in NAVIGATION if staff is not None and staff.can(permission)
    ]
    html = (
        environment(language)
        .get_template(f"ui/{template}")
        .render(
            request=request,
            lang=language,
            csrf_field=CSRF_FIELD,
            csrf_token=getattr(request.state, "csrf_token", ""),
            staff=staff,
            navigation=navigation,
            role_labels=ROLE_LABELS,
            current_path=request.url.path,
            **context,
        )
    )
    return HTMLResponse(html, status_code=status_code)
