"""DKIM (RFC 6376) for outbound mail: a town's signing key, the DNS TXT record that publishes it, and the signature."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dkim.dnsplug import get_txt
from dkim.util import InvalidTagValueList, parse_tag_value

# RFC 8301 asks for at least 1024 bits and recommends 2048; longer keys no longer fit a
# 255-character TXT string and some DNS consoles cannot split them.
KEY_BITS = 2048

# Header fields covered by the signature when present. RFC 8058 §4: the one-click
# unsubscribe fields must be signed, or receivers ignore them; dkimpy's default list lacks
# List-Unsubscribe-Post.
SIGNED_HEADERS = (
    "from", "to", "subject", "date", "message-id", "in-reply-to", "references", "mime-version",
    "content-type", "content-transfer-encoding", "auto-submitted", "list-id", "list-unsubscribe",
    "list-unsubscribe-post",
)  # fmt: skip


@dataclass(frozen=True)
class DkimKey:
    """A new signing key: the private half (PEM, PKCS#1) for the hub, the public half for DNS."""

    private_pem: str
    public_base64: str


# Looks up a name's TXT record: its text, or None when there is none (dkimpy's `dnsfunc`).
TxtLookup = Callable[[bytes], bytes | None]


def generate_key() -> DkimKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode("ascii")
    return DkimKey(private_pem=pem, public_base64=public_key_of(pem))


def public_key_of(private_pem: str) -> str:
    """The public half of a signing key as the record's p= gives it (base64 of the DER SubjectPublicKeyInfo)."""
    private = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(public).decode("ascii")


def published_key(selector: str, domain: str, lookup: TxtLookup = get_txt) -> str | None:
    """The public key the DNS publishes for `selector` at `domain` (its p=, "" if revoked or unreadable), None
    without a record.

    Raises DnsTimeoutError when the resolver does not answer.
    """
    record = lookup(f"{record_name(selector, domain)}.".encode("ascii"))
    if not record:
        return None
    try:
        tags = parse_tag_value(re.sub(rb"\s+", b"", record))
    except InvalidTagValueList:
        return ""  # a record no receiver can read verifies nothing
    return tags.get(b"p", b"").decode("ascii", errors="replace")


def record_name(selector: str, domain: str) -> str:
    """Where the public key is published: `<selector>._domainkey.<domain>` (RFC 6376 §3.6.2.1)."""
    return f"{selector}._domainkey.{domain}"


def record_text(public_base64: str) -> str:
    """The TXT record's value (RFC 6376 §3.6.1)."""
    return f"v=DKIM1; k=rsa; p={public_base64}"


def signature_field(raw: bytes, *, selector: str, domain: str, private_pem: str) -> bytes:
    """The DKIM-Signature field (with its CRLF) to put atop `raw`, the mail exactly as it goes on the wire."""
    present = {line.split(b":", 1)[0].strip().lower() for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")}
    signed = [name.encode("ascii") for name in SIGNED_HEADERS if name.encode("ascii") in present]
    # Signing From once more than it occurs keeps anyone from adding a second one (RFC 6376 §8.15).
    return bytes(
        dkim.sign(
            raw,
            selector.encode("ascii"),
            domain.encode("ascii"),
            private_pem.encode("ascii"),
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=[*signed, b"from"],
        )
    )
