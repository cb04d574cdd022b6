"""Domain errors that routes map to HTTP answers; their messages are shown to the caller."""

from channels.registry import known_kinds


class DomainError(Exception):
    """Base: a request the domain refuses, with a message a person can act on."""

    status_code = 400


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
        raise InvalidInput(f"Unbekannter Kanaltyp {kind!r}; bekannt: {', '.join(known_kinds())}.")
