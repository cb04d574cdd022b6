"""Domain errors that routes map to HTTP answers; their messages are shown to the caller, in the caller's language."""

from typing import Self

from channels.registry import known_kinds
from hub.i18n import DEFAULT_LANGUAGE, N_, gettext_for


class Term(str):
    """A German word put into a message (a weekday, a field's name), a msgid itself: translated along with it."""

    __slots__ = ()


class DomainError(Exception):
    """Base: a request the domain refuses, with a message a person can act on.

    The message is a German msgid (marked with N_, English in the catalogues) whose `{name}`
    placeholders are filled from the keyword values, so each answer can be given in its reader's
    language; str() is the German text, for logs and callers that show it as it is. A value that
    is a `Term` is translated too. A plain German string works as well: it is looked up in the
    catalogues like any msgid.
    """

    status_code = 400

    def __init__(self, message: str, /, **values: object) -> None:
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
        translated = texts.gettext(self.message)
        if not self.values:
            return translated  # only a message with values is a format string: a plain one may hold braces
        values = {
            name: texts.gettext(value) if isinstance(value, Term) else value for name, value in self.values.items()
        }
        return translated.format(**values)

    def __str__(self) -> str:
        return self.text()


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class InvalidInput(DomainError):
    status_code = 422


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
