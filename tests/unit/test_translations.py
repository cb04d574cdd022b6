"""Every German text on a page has its English translation in the catalogues under hub/locale/en/."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

from hub.web.i18n import translations

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "translate": (2,), "N_": None}
METHODS = [("hub/**.py", "python"), ("channels/**.py", "python"), ("templates/ui/**.html", "jinja2")]


def page_texts() -> dict[str, str]:
    """msgid -> where it was found."""
    found: dict[str, str] = {}
    for filename, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map=METHODS, keywords=KEYWORDS, options_map={"templates/ui/**.html": {}}
    ):
        for text in message if isinstance(message, tuple) else (message,):
            if text:
                found.setdefault(text, filename)
    return found


def test_the_pages_have_texts_to_translate() -> None:
    texts = page_texts()
    assert "Anmelden" in texts
    assert "Keine Berechtigung" in texts  # marked with N_ in Python


def test_every_page_text_has_an_english_translation() -> None:
    # A text spelled the same in both languages ("Administration") is in the catalogue all the same.
    english = translations("en")
    known: dict[str, str] = getattr(english, "_catalog", {})
    missing = {text: where for text, where in page_texts().items() if text not in known}
    stubs = "\n".join(f'#: {where}\nmsgid "{text}"\nmsgstr ""\n' for text, where in sorted(missing.items()))
    assert not missing, f"add these to a catalogue in hub/locale/en/LC_MESSAGES/:\n{stubs}"
