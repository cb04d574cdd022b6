"""Domain errors that routes map to HTTP answers; their messages are shown to the caller, in the caller's language."""

import re
from collections.abc import Iterable, Mapping
from gettext import NullTranslations
from typing import Self

from jinja2 import TemplateError, UndefinedError
from jinja2.sandbox import SecurityError

from channels.base import SettingProblem
from channels.registry import known_kinds
from hub.i18n import DEFAULT_LANGUAGE, N_, gettext_for


class Term(str):
    """A German word put into a message (a weekday, a field's name), a msgid itself: translated along with it."""

    __slots__ = ()


class Phrase:
    """A part of a message with values of its own (one of several problems), filled in the message's language."""

    __slots__ = ("message", "values")

    def __init__(self, message: str, /, **values: object) -> None:
        self.message = message
        self.values = values


class Joined:
    """Parts of a message (Terms, Phrases), each in the reader's language, joined with `separator`, then `end`."""

    __slots__ = ("end", "parts", "separator")

    def __init__(self, parts: Iterable[object], separator: str = ", ", end: str = "") -> None:
        self.parts = tuple(parts)
        self.separator = separator
        self.end = end


def in_language(texts: NullTranslations, value: object) -> object:
    """A value put into a message, as `texts` say it: Terms, Phrases and Joined parts translated, the rest as it is."""
    if isinstance(value, Term):
        return texts.gettext(value)
    if isinstance(value, Phrase):
        return fill(texts, value.message, value.values)
    if isinstance(value, Joined):
        return value.separator.join(str(in_language(texts, part)) for part in value.parts) + value.end
    return value


def fill(texts: NullTranslations, message: str, values: Mapping[str, object]) -> str:
    """The msgid `message` translated by `texts`, its `{name}` placeholders filled with `values` in that language."""
    translated = texts.gettext(message)
    if not values:
        return translated  # only a message with values is a format string: a plain one may hold braces
    return translated.format(**{name: in_language(texts, value) for name, value in values.items()})


def setting_problems(problems: Iterable[SettingProblem], separator: str = ", ", end: str = "") -> Joined:
    """What is wrong with a channel's settings, each problem naming its setting in the reader's language."""
    return Joined((Phrase(problem.message, title=Term(problem.title)) for problem in problems), separator, end)


class DomainError(Exception):
    """Base: a request the domain refuses, with a message a person can act on.

    The message is a German msgid (marked with N_, English in the catalogues) whose `{name}`
    placeholders are filled from the keyword values, so each answer can be given in its reader's
    language; str() is the German text, for logs and callers that show it as it is. A value that
    is a `Term`, a `Phrase` or `Joined` parts is translated too, and a message put together from
    parts is `Joined` itself. A plain German string works as well: it is looked up in the
    catalogues like any msgid.
    """

    status_code = 400

    def __init__(self, message: str | Joined, /, **values: object) -> None:
        super().__init__(message)
        self.message = message
        self.values = values
        self.language: str | None = None

    def in_language(self, language: str) -> Self:
        """Fixes the language of a reader the domain knows (a citizen chose it on a form): str() and answers use it."""
        self.language = language
        return self

    def text(self, language: str | None = None) -> str:
        """The message in the fixed language, else in `language`, else in German."""
        texts = gettext_for(self.language or language or DEFAULT_LANGUAGE)
        if isinstance(self.message, Joined):
            return str(in_language(texts, self.message))
        return fill(texts, self.message, self.values)

    def __str__(self) -> str:
        return self.text()


class NotSignedIn(DomainError):
    """The API request names no one: no token, or one that is not (or no longer) valid."""

    status_code = 401


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class InvalidInput(DomainError):
    status_code = 422


class TooLarge(DomainError):
    """A request's body is larger than the hub reads."""

    status_code = 413


class TooManyRequests(DomainError):
    """A limit against abuse was reached (codes per number, tries, resends); the message says when to retry."""

    status_code = 429


class ChannelUnavailable(DomainError):
    """The provider failed for a moment (or no channel is set up); trying again later may work."""

    status_code = 503


class Forbidden(DomainError):
    """The caller's role may not do this."""

    status_code = 403


def require_channel_kind(kind: str) -> None:
    """Refuses a kind no adapter handles, naming the ones that exist."""
    if kind not in known_kinds():
        raise InvalidInput(
            N_("Unbekannter Kanaltyp {kind!r}; bekannt: {known}."), kind=kind, known=", ".join(known_kinds())
        )


def _template_line(error: Exception) -> int:
    """The line of a text where Jinja stopped: its own for a syntax error, else the template's frame."""
    line = getattr(error, "lineno", None)
    trace = error.__traceback__
    while line is None and trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line or 1


def template_error(error: TemplateError, *, what: object, known: Iterable[str]) -> InvalidInput:
    """What is wrong with a text staff wrote (a canned reply, a broadcast, a settings text), for a person:
    which text, which line and which name, instead of the template engine's English sentence.

    `what` names the text (a Term or Phrase); `known` are the placeholders it may use.
    """
    detail = error.message or ""
    line = _template_line(error)
    name = re.search(r"'([^']+)'", detail)
    found = name.group(1) if name else ""
    if isinstance(error, UndefinedError):
        message = N_("{what}, Zeile {line}: den Platzhalter „{name}“ gibt es nicht. Möglich sind: {known}.")
        if "has no attribute" in detail:  # "'str object' has no attribute 'foo'": the attribute is the last name
            found = re.findall(r"'([^']+)'", detail)[-1]
    elif isinstance(error, SecurityError):
        message = N_("{what}, Zeile {line}: das ist in diesem Text nicht erlaubt. Möglich sind: {known}.")
    elif "unknown tag" in detail:
        message = N_("{what}, Zeile {line}: den Befehl „{name}“ gibt es nicht.")
    elif "No filter named" in detail:
        message = N_("{what}, Zeile {line}: den Filter „{name}“ gibt es nicht.")
    elif "looking for the following tags" in detail:  # a block opened and never closed
        message = N_("{what}, Zeile {line}: ein {{% if %}} oder {{% for %}} wird nicht mit {{% endif %}} oder "
                     "{{% endfor %}} geschlossen.")  # fmt: skip
    else:
        message = N_("{what}, Zeile {line}: eine Klammer ist nicht richtig geschlossen. Platzhalter stehen in "
                     "{{{{ … }}}}, Befehle in {{% … %}}.")  # fmt: skip
    return InvalidInput(message, what=what, line=line, name=found, known=", ".join(sorted(known)))
