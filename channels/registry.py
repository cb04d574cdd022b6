"""Maps a channel kind to its adapter class; a kind registered twice fails at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channels.base import ChannelAdapter

_ADAPTERS: dict[str, type[ChannelAdapter]] = {}


class DuplicateChannelKind(RuntimeError):
    """Two adapters claim one kind: a configuration mistake that must stop the process."""


class UnknownChannelKind(LookupError):
    """No adapter is registered for the kind asked for."""


def register(adapter: type[ChannelAdapter]) -> type[ChannelAdapter]:
    """Class decorator: make `adapter` the one implementation of its `kind`."""
    existing = _ADAPTERS.get(adapter.kind)
    if existing is not None and existing is not adapter:
        raise DuplicateChannelKind(
            f"channel kind {adapter.kind!r} is claimed by {existing.__qualname__} and {adapter.__qualname__}"
        )
    _ADAPTERS[adapter.kind] = adapter
    return adapter


def _load_builtin_adapters() -> None:
    # Importing the modules runs their @register decorators.
    from channels import email, facebook, telegram, twilio_sms, whatsapp  # noqa: F401


def adapter_class(kind: str) -> type[ChannelAdapter]:
    _load_builtin_adapters()
    try:
        return _ADAPTERS[kind]
    except KeyError:
        raise UnknownChannelKind(f"unknown channel kind {kind!r}; known: {', '.join(sorted(_ADAPTERS))}") from None


def known_kinds() -> list[str]:
    _load_builtin_adapters()
    return sorted(_ADAPTERS)


def adapter_classes() -> list[type[ChannelAdapter]]:
    """Every registered adapter, ordered by kind: what callers ask when they have no kind in hand."""
    _load_builtin_adapters()
    return [_ADAPTERS[kind] for kind in sorted(_ADAPTERS)]


def channel_labels() -> dict[str, str]:
    """Each kind with the channel's name for staff (ChannelAdapter.label), in the order of those names."""
    return {adapter.kind: adapter.label for adapter in sorted(adapter_classes(), key=lambda adapter: adapter.label)}


def identity_labels() -> dict[str, str]:
    """Each kind of address a channel reaches ("phone", …) with its name for staff, in the order of those names."""
    identities = sorted((adapter.identity for adapter in adapter_classes()), key=lambda identity: identity.label)
    return {identity.kind: identity.label for identity in identities}


def sms_kinds() -> list[str]:
    """The kinds that send SMS, paid per segment (the demo's and a town's text-message channel)."""
    return [adapter.kind for adapter in adapter_classes() if adapter.max_segments is not None]


def kinds_reaching(identity_kind: str) -> list[str]:
    """The kinds whose adapter reaches addresses of `identity_kind` ("phone", "email", …)."""
    return [adapter.kind for adapter in adapter_classes() if adapter.identity.kind == identity_kind]


def build_adapter(kind: str, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> ChannelAdapter:
    return adapter_class(kind)(config, secrets)
