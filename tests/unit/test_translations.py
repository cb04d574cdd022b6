"""Every German text on a page has its English translation in the catalogues under hub/locale/en/."""

from __future__ import annotations

from pathlib import Path
from string import Formatter

from babel.messages.extract import extract_from_dir

from hub.errors import InvalidInput, Term
from hub.i18n import N_, translations

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


def placeholders(text: str) -> set[str] | None:
    """The `{name}` fields of a text filled with str.format (conversion and format spec included), or None."""
    try:
        return {f"{name}!{conversion}:{spec}" for _, name, spec, conversion in Formatter().parse(text) if name}
    except ValueError:
        return None  # not a format string (a lone brace, as in a template's example)


def test_every_translation_keeps_the_placeholders_of_its_german_text() -> None:
    # Domain errors and citizen texts are filled in after translating: a lost or renamed field would fail there.
    english = translations("en")
    known: dict[str, str] = getattr(english, "_catalog", {})
    wrong = {
        text: known[text]
        for text in page_texts()
        if text in known and placeholders(text) and placeholders(known[text]) != placeholders(text)
    }
    assert not wrong, wrong


def test_a_domain_error_answers_in_german_and_english_from_the_catalogue() -> None:
    error = InvalidInput(N_("Ein Termin dauert mindestens {min_slot_minutes} Minuten."), min_slot_minutes=15)
    assert str(error) == "Ein Termin dauert mindestens 15 Minuten."
    assert error.text("en") == "An appointment lasts at least 15 minutes."
    assert error.text("fr") == str(error)  # a language without a catalogue gets German
    weekday = InvalidInput(N_("Öffnungszeiten {day}: bitte Beginn und Ende als HH:MM angeben, das Ende nach dem "
                              "Beginn und den zweiten Zeitraum nach dem ersten."), day=Term("Montag"))  # fmt: skip
    assert weekday.text("en").startswith("Opening hours Monday: ")
    assert str(weekday).startswith("Öffnungszeiten Montag: ")
    # A message the domain gives a citizen in their language stays in it, whatever the request says.
    pinned = InvalidInput(N_("Der Code besteht aus 6 Ziffern.")).in_language("en")
    assert str(pinned) == pinned.text("de") == "The code is 6 digits."
    # A plain string with braces of its own is left as it is.
    assert InvalidInput("Vorlage {{ name }} kaputt").text("en") == "Vorlage {{ name }} kaputt"
