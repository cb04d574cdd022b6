"""Renders what citizens receive from templates/messages/<lang>/, German unless English is asked for."""

from __future__ import annotations

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


def render_message(name: str, language: str, overrides: Mapping[str, Any] | None = None, **context: Any) -> str:
    """Renders templates/messages/<lang>/<name>, or the municipality's own text for it.

    `overrides` is a municipality's {"de": {name: template source}, "en": {...}}.
    """
    lang = language if language in LANGUAGES else "de"
    own = (overrides or {}).get(lang, {}).get(name)
    template = _environment().from_string(own) if own else _environment().get_template(f"messages/{lang}/{name}")
    return template.render(**context).strip()
