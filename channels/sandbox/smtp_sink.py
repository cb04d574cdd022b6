"""The SMTP sink that takes the hub's outbound mail and records it in the outbox as kind "email"."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
from email.message import EmailMessage
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from channels.sandbox.state import SandboxState

log = logging.getLogger(__name__)


def accept_any_login(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    """Any user name and password will do: the sink stands in for a relay the hub logs in to."""
    return AuthResult(success=True)


class AnyPortController(Controller):
    """An aiosmtpd Controller that also works with port 0 (the OS picks a free port).

    The stock Controller probes (hostname, port) to see that the server is up, which cannot
    work for port 0; read the bound port back first. `.port` is the real port after start().
    """

    def _trigger_server(self) -> None:
        server = self.server
        if self.port == 0 and isinstance(server, asyncio.Server):
            self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()


def _text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    content = body.get_content()
    # Decoded SMTP text keeps the wire's CRLF; the outbox shows what a person reads.
    return content.replace("\r\n", "\n") if isinstance(content, str) else ""


def _attachments_of(message: EmailMessage) -> tuple[dict[str, Any], ...]:
    return tuple(
        {
            "filename": part.get_filename(),
            "content_type": part.get_content_type(),
            "size": len(part.get_payload(decode=True) or b""),
        }
        for part in message.iter_attachments()
    )


class OutboxHandler:
    """aiosmtpd handler: applies the "email" faults, then records one outbox item per recipient."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    # aiosmtpd finds its hooks by these exact names.
    async def handle_RCPT(  # noqa: N802
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.state.decide("email", address).outcome == "permanent":
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
    ) -> str:
        decision = self.state.decide("email", envelope.rcpt_tos[0] if envelope.rcpt_tos else "")
        if decision.latency_s:
            await asyncio.sleep(decision.latency_s)
        if decision.outcome == "rate_limit":
            return "451 4.7.1 Too many messages, slow down and try again later"
        if decision.outcome == "server_error":
            return "421 4.3.2 Service not available, closing transmission channel"
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        # With the default policy the parser builds EmailMessage objects.
        message = cast(EmailMessage, email.message_from_bytes(raw, policy=email.policy.default))
        headers: dict[str, str] = {}
        for name, value in message.items():
            # A repeated header (Received, …) keeps its first value.
            headers.setdefault(name, str(value))
        text = _text_of(message)
        attachments = _attachments_of(message)
        for recipient in envelope.rcpt_tos:
            self.state.record(
                "email",
                recipient,
                envelope.mail_from or "",
                text,
                subject=str(message["subject"]) if message["subject"] is not None else None,
                reply_to_ref=str(message["in-reply-to"]) if message["in-reply-to"] else None,
                provider_id=str(message["message-id"]) if message["message-id"] else None,
                headers=headers,
                attachments=attachments,
            )
        log.debug("recorded mail from %s to %s", envelope.mail_from, envelope.rcpt_tos)
        return "250 Message accepted for delivery"


def make_controller(state: SandboxState, host: str, port: int) -> AnyPortController:
    return AnyPortController(
        OutboxHandler(state),
        hostname=host,
        port=port,
        # A fixed name avoids socket.getfqdn(), which can stall for seconds without DNS.
        server_hostname="sandbox.localhost",
        authenticator=accept_any_login,
        auth_require_tls=False,
    )
