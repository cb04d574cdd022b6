"""Page texts in German, the source language, and English from Babel catalogues in hub/locale/en/.

Each area of the app keeps its own catalogue file (`hub/locale/en/LC_MESSAGES/<area>.po`), so
areas can change their texts independently; at start they are merged into one translation.
"""

from __future__ import annotations

import gettext
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from fastapi import Request

LANGUAGES = ("de", "en")
DEFAULT_LANGUAGE = "de"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGE_COOKIE = "rathaus_lang"


@lru_cache
def translations(language: str) -> gettext.NullTranslations:
    """German needs no catalogue: its texts are the message ids."""
    if language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    merged: Translations | None = None
    for po_file in sorted((LOCALE_DIR / language / "LC_MESSAGES").glob("*.po")):
        with po_file.open("rb") as source:
            catalog = read_po(source, locale=language)
        compiled = BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        part = Translations(compiled)
        merged = part if merged is None else merged.merge(part)
    return merged or gettext.NullTranslations()


def gettext_for(language: str) -> gettext.NullTranslations:
    return translations(language if language in LANGUAGES else DEFAULT_LANGUAGE)


def choose_language(request: Request, preferred: str | None = None) -> str:
    """`?lang=` first, then the cookie it sets, then the signed-in user's choice, then Accept-Language."""
    for candidate in (request.query_params.get("lang"), request.cookies.get(LANGUAGE_COOKIE), preferred):
        if candidate in LANGUAGES:
            return candidate
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE


def language_of(request: Request) -> str:
    """The language the middleware chose for this request with `choose_language`, pages and API alike."""
    return str(getattr(request.state, "language", DEFAULT_LANGUAGE))


def translate(request: Request, message: str) -> str:
    """`message` (German) in the request's language; extracted into the catalogues as `translate:2`."""
    return gettext_for(language_of(request)).gettext(message)


def N_(message: str) -> str:  # noqa: N802 (gettext's conventional name for "mark for translation only")
    """Marks a German text for the catalogues where it is defined; it is translated where it is shown."""
    return message
