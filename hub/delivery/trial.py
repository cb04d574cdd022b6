"""An administrator's test message through a channel account, so that its settings are tried as they are."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from channels.base import OutboundMessage
from hub.delivery.classes import CHANNEL_TEST
from hub.delivery.engine import Sender
from hub.errors import InvalidInput
from hub.i18n import N_
from hub.settings import Settings
from hub.tenancy.administration import audit, get_channel_account


@dataclass(frozen=True)
class TestResult:
    """What the provider answered to a test message: its message id, or its error in words."""

    ok: bool
    provider_id: str | None = None
    error: str | None = None
    code: str | None = None
    permanent: bool = False


def send_test_message(
    session: Session, *, settings: Settings, municipality_id: int, actor_id: int, account_id: int, to: str, text: str
) -> TestResult:
    """Sends one message through the account's real adapter, so the settings are tried as they are."""
    account = get_channel_account(session, municipality_id=municipality_id, account_id=account_id)
    if not to.strip():
        raise InvalidInput(N_("Bitte geben Sie an, wohin die Testnachricht gehen soll."))
    outbound = OutboundMessage(
        to=to.strip(), text=text.strip() or "Testnachricht von Rathaus Hub", subject="Testnachricht von Rathaus Hub"
    )
    try:
        outcome = Sender(settings, account, CHANNEL_TEST).send_now(outbound)
    except (KeyError, ValueError, TypeError) as error:
        # A setting the adapter needs is missing or malformed: the account cannot even be built.
        result = TestResult(ok=False, error=f"Die Einstellungen des Kanals sind unvollständig: {error}", permanent=True)
    else:
        result = (
            TestResult(ok=True, provider_id=outcome.receipt.provider_id)
            if outcome.receipt is not None
            else TestResult(ok=False, error=outcome.error_text, code=outcome.error_code,
                            permanent=outcome.state in ("rejected", "opted_out"))
        )  # fmt: skip
    audit(session, actor_id=actor_id, municipality_id=municipality_id, action="channel.test_sent",
          object_type="channel_account", object_id=account.id, to=outbound.to, ok=result.ok,
          error=result.error)  # fmt: skip
    return result
