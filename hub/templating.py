"""Renders what citizens receive from templates/messages/<lang>/, German unless English is asked for."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from hub.settings import get_settings

LANGUAGES = ("de", "en")


@lru_cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(get_settings().templates_dir)),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,  # noqa: S701 (plain-text messages; HTML gets its own, escaping environment)
    )


@lru_cache
def _page_environment() -> Environment:
    # HTML mail shows staff's text: everything is escaped (pages use hub.web.rendering).
    return Environment(
        loader=FileSystemLoader(str(get_settings().templates_dir)), undefined=StrictUndefined, autoescape=True
    )


def render_page(name: str, **context: Any) -> str:
    """Renders an HTML mail template (templates/messages/<lang>/*.html.j2), escaped."""
    return _page_environment().get_template(name).render(**context)


def render_message(name: str, language: str, /, overrides: Mapping[str, Any] | None = None, **context: Any) -> str:
    """Renders templates/messages/<lang>/<name>, or the municipality's own text for it.

    `overrides` is a municipality's {"de": {name: template source}, "en": {...}}. The template's
    own variables may include `name` and `language` (positional-only here for that reason).
    """
    lang = language if language in LANGUAGES else "de"
    own = (overrides or {}).get(lang, {}).get(name)
    template = _environment().from_string(own) if own else _environment().get_template(f"messages/{lang}/{name}")
    return close_name_gaps(template.render(**context))


# Stands where a text puts a name the hub does not know; no real text contains it (Unicode private use).
_GAP = "\ue000"


class _UnknownName(str):
    """A name the hub does not know: false in `{% if name %}`, and where a text shows it, its place closes up."""

    def __bool__(self) -> bool:
        return False


UNKNOWN_NAME = _UnknownName(_GAP)


def greeting(language: str, name: str | None) -> dict[str, str]:
    """The variables of a text to one person whose name may be unknown: `name` and `salutation`.

    `salutation` is "Guten Tag Erika Mustermann", or "Guten Tag" without a name (the wording is
    templates/messages/<lang>/salutation.txt.j2), so "{{ salutation }}," reads well either way.
    """
    known = " ".join((name or "").split())
    return {"name": known or UNKNOWN_NAME, "salutation": render_message("salutation.txt.j2", language, person=known)}


# Where an unknown name stood, it goes with the space or comma that only made sense beside it, in this order.
_CLOSING = (
    # "…gesperrt. Erika, bitte …" -> "…gesperrt. Bitte …"
    (re.compile(r"(^|[.!?][ \t]+)\ue000[ \t]*,?[ \t]*(\w?)", re.MULTILINE), lambda m: m[1] + m[2].upper()),
    # "Danke, Erika." -> "Danke."; "Guten Tag Erika!" -> "Guten Tag!"
    (re.compile(r",?[ \t]*\ue000[ \t]*(?=[.!?;:])"), ""),
    # "Hallo Erika, die …" -> "Hallo, die …"; "Hallo Erika und …" -> "Hallo und …"
    (re.compile(r"[ \t]*\ue000"), ""),
)


def close_name_gaps(text: str) -> str:
    """The rendered text with the places of unknown names closed up (see `greeting`)."""
    if _GAP in text:
        for pattern, replacement in _CLOSING:
            text = pattern.sub(replacement, text)
    return text.strip()
