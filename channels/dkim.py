"""DKIM (RFC 6376) for outbound mail: a town's signing key, the DNS TXT record that publishes it, and the signature."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

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


def generate_key() -> DkimKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimKey(private_pem=pem.decode("ascii"), public_base64=base64.b64encode(public).decode("ascii"))


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
