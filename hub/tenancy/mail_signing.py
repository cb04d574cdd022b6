"""A town's DKIM key: made once, given to each of its mailboxes, and the DNS records the admin publishes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel import Session, col, select

from channels.dkim import generate_key, record_name, record_text
from channels.registry import adapter_classes
from hub.errors import InvalidInput
from hub.i18n import N_
from hub.tenancy.models import ChannelAccount

# A selector is one or more DNS labels (RFC 6376 §3.1).
_SELECTOR = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")


def signing_kinds() -> list[str]:
    """The channel kinds whose settings take a DKIM key (mail)."""
    return [adapter.kind for adapter in adapter_classes() if "dkim_private_key" in adapter.configuration.model_fields]


def mail_domain(address: str) -> str:
    """The domain of a mailbox's address as DNS names it (IDNA), where its DKIM record is published."""
    return address.rpartition("@")[2].lower().encode("idna").decode("ascii")


@dataclass(frozen=True)
class DnsRecord:
    """A TXT record to publish in the town's DNS zone."""

    name: str
    text: str


def generate_dkim_key(session: Session, *, municipality_id: int, selector: str) -> list[DnsRecord]:
    """A new key for every email channel of the town (a previous key is replaced); one record per mail domain."""
    if not _SELECTOR.match(selector):
        raise InvalidInput(
            N_("Ungültiger DKIM-Selektor {selector!r}: erlaubt sind Kleinbuchstaben, Ziffern, '-' und '.'."),
            selector=selector,
        )
    mailboxes = session.exec(
        select(ChannelAccount).where(
            ChannelAccount.municipality_id == municipality_id,
            col(ChannelAccount.kind).in_(signing_kinds()),
            col(ChannelAccount.active),
        )
    ).all()
    if not mailboxes:
        raise InvalidInput(N_("Die Gemeinde hat kein E-Mail-Postfach; DKIM signiert nur ausgehende E-Mails."))
    key = generate_key()
    domains: list[str] = []
    for mailbox in mailboxes:
        # New dicts, so that the JSON columns are seen as changed.
        mailbox.config = {**mailbox.config, "dkim_selector": selector}
        mailbox.secrets = {**mailbox.secrets, "dkim_private_key": key.private_pem}
        session.add(mailbox)
        domain = mail_domain(mailbox.address)
        if domain not in domains:
            domains.append(domain)
    session.flush()
    return [DnsRecord(name=record_name(selector, domain), text=record_text(key.public_base64)) for domain in domains]
