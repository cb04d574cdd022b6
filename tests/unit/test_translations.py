"""Every German text on a page has its English translation in the catalogues under hub/locale/en/."""

from __future__ import annotations

import ast
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


# What may stand where a hub.errors class takes its message: a msgid marked where it is written,
# or parts that are (hub.errors.Joined and what builds one). A plain name is looked up below.
MARKED = {"N_", "Joined", "setting_problems"}


def error_classes(trees: dict[str, ast.Module]) -> tuple[set[str], set[str]]:
    """The names of DomainError and its subclasses anywhere in hub/, and those with an __init__ of their own."""
    classes = {node for tree in trees.values() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    names = {"DomainError"}
    while grown := {
        node.name
        for node in classes
        if node.name not in names and any(ast.unparse(base).rpartition(".")[2] in names for base in node.bases)
    }:
        names |= grown
    own_init = {
        node.name
        for node in classes
        if node.name in names
        and any(isinstance(item, ast.FunctionDef) and item.name == "__init__" for item in node.body)
    }
    return names, own_init


def is_marked(message: ast.expr, assigned: dict[str, list[ast.expr]]) -> bool:
    """Whether a message is a marked msgid; `assigned` holds what the module sets each plain name to."""
    if isinstance(message, ast.IfExp):
        return is_marked(message.body, assigned) and is_marked(message.orelse, assigned)
    if isinstance(message, ast.Call):
        return isinstance(message.func, ast.Name) and message.func.id in MARKED
    if isinstance(message, ast.Name):
        # A constant of the module must be marked where it is set; a parameter was marked by the caller.
        return all(is_marked(value, assigned) for value in assigned.get(message.id, []))
    return isinstance(message, ast.Attribute)


def unmarked_messages() -> list[str]:
    """Where hub/ builds a domain error from a plain string, an f-string or strings joined in code."""
    trees = {str(path.relative_to(ROOT)): ast.parse(path.read_text()) for path in sorted(ROOT.glob("hub/**/*.py"))}
    names, own_init = error_classes(trees)
    found = []
    for where, tree in trees.items():
        assigned: dict[str, list[ast.expr]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(node.value)
        messages = []
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name in own_init:
                # Such a class makes its message itself: what it hands to DomainError is checked.
                messages += [
                    call.args[0]
                    for call in ast.walk(node)
                    if isinstance(call, ast.Call) and ast.unparse(call.func) == "super().__init__" and call.args
                ]
            elif isinstance(node, ast.Call) and ast.unparse(node.func).rpartition(".")[2] in names - own_init:
                messages += node.args[:1]
        for message in messages:
            text = ast.unparse(message)
            if not is_marked(message, assigned):
                found.append(f"{where}:{message.lineno}: {text}")
    return found


def test_every_domain_error_in_hub_is_built_from_a_marked_msgid() -> None:
    # A plain or f-string message is German in every language: the catalogue never sees it.
    unmarked = unmarked_messages()
    assert not unmarked, "\n".join(unmarked)


def test_the_check_tells_a_marked_message_from_a_plain_one() -> None:
    def marked(source: str, **assigned: str) -> bool:
        values = {name: [ast.parse(value, mode="eval").body] for name, value in assigned.items()}
        return is_marked(ast.parse(source, mode="eval").body, values)

    assert marked('N_("Thema {key} fehlt.")') and marked('N_("a") if new else N_("b")')
    assert marked("refusal") and marked("_LIMIT", _LIMIT='N_("Zu viele.")')
    assert not marked('f"Thema {key} fehlt."') and not marked('"; ".join(parts)') and not marked('"a" + "b"')
    assert not marked("_LIMIT", _LIMIT='"Zu viele."') and not marked('N_("a") if new else "b"')
