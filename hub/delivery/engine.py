"""Sends one message through a channel account: a slot under its rate limit, the adapter's send, the outcome classified.

Every send goes through a `Sender`: replies and acknowledgements (hub.inbox.outbound),
broadcasts (hub.broadcasts.sending), codes and staff mails (`send_while_waiting`). Claiming a
row before and recording it after belong to the caller, whose rows they are; the rules of the
send itself are here, read from the message's delivery class (hub.delivery.classes).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlmodel import Session

from channels.base import (
    ChannelAdapter,
    ChannelError,
    OptedOutError,
    OutboundMessage,
    PermanentError,
    Receipt,
    TransientError,
)
from channels.registry import build_adapter
from hub.delivery.classes import CONFIRMATION, DeliveryClass
from hub.errors import ChannelUnavailable, InvalidInput
from hub.i18n import N_
from hub.metrics import MESSAGES_FAILED, MESSAGES_RETRIED, MESSAGES_SENT, RATE_LIMIT_WAITS
from hub.ratelimit import hold_send_slot, shared_limiter
from hub.settings import Settings
from hub.tenancy.models import ChannelAccount

log = logging.getLogger(__name__)

# What a citizen on a form reads when the message to them could not be sent.
_UNAVAILABLE = N_("Die Nachricht konnte gerade nicht gesendet werden, bitte gleich noch einmal versuchen.")
_REJECTED = N_("An diese Adresse kann keine Nachricht gesendet werden. Bitte prüfen Sie die Eingabe.")
_OPTED_OUT = N_(
    "Diese Adresse hat unsere Nachrichten beim Anbieter abbestellt (etwa mit STOP); "
    "solange nimmt sie keine Nachricht von uns an."
)


@dataclass(frozen=True)
class Outcome:
    """How a send ended.

    `sent` (with the provider's receipt); `opted_out`, the citizen stopped this town's messages
    at the provider (the caller stops them everywhere); `rejected`, the provider refused for
    good; `retry`, a passing failure to try again in `retry_in` seconds; `gave_up`, a passing
    failure after the last attempt, or of a class that is not retried.
    """

    state: Literal["sent", "opted_out", "rejected", "retry", "gave_up"]
    receipt: Receipt | None = None
    error: ChannelError | None = None
    retry_in: float | None = None

    @property
    def error_code(self) -> str | None:
        return ((self.error.code if self.error else None) or "")[:32] or None

    @property
    def error_text(self) -> str:
        return str(self.error)[:500]


@dataclass(frozen=True)
class OptedOutRecipient:
    """The provider's answer that a citizen stopped this town's messages, with what the consent record keeps of it."""

    municipality_id: int
    contact_id: int
    evidence: dict[str, Any]


# What a sender calls, in the transaction that records the refusal, to stop the citizen everywhere.
OnOptedOut = Callable[[Session, OptedOutRecipient], None]


def retry_delay(settings: Settings, attempts: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, never shorter than what the provider asked for."""
    backoff = settings.retry_base_seconds * (2 ** max(attempts - 1, 0))
    return max(retry_after or 0.0, random.uniform(backoff / 2, backoff))  # noqa: S311 (jitter, not crypto)


def _nothing() -> None:
    pass


@dataclass(frozen=True)
class Slot:
    """A send slot held under the account's rate limit; it counts from the end of the send it was taken for."""

    name: str


class Sender:
    """One channel account's adapter under its rate limit, sending messages of one delivery class."""

    def __init__(
        self,
        settings: Settings,
        account: ChannelAccount,
        delivery_class: DeliveryClass,
        *,
        adapter: ChannelAdapter | None = None,
    ) -> None:
        self.settings = settings
        self.account = account
        self.delivery_class = delivery_class
        self.adapter = adapter or build_adapter(account.kind, account.config, account.secrets)
        self._limiter = shared_limiter(settings)
        self._key = f"channel:{account.id}"
        rate = account.config.get("rate_per_second") or self.adapter.rate_per_second
        self._per_second = max(1, int(float(rate)))

    def reserve(self, *, before_waiting: Callable[[], None] = _nothing) -> Slot | None:
        """Waits for the account's next free slot in this class's lane; `before_waiting` runs if there is a wait.

        None when the class waits at most less than that (a citizen at a form is not kept).
        """

        def waiting() -> None:
            RATE_LIMIT_WAITS.labels(self.account.kind).inc()
            before_waiting()

        slot = hold_send_slot(
            self._limiter, self._key, self._per_second, priority=self.delivery_class.priority,
            before_waiting=waiting, give_up_after=self.delivery_class.waits_at_most,
        )  # fmt: skip
        return None if slot is None else Slot(slot)

    def release(self, slot: Slot) -> None:
        """Ends a slot whose message was not sent after all (cancelled since it was claimed)."""
        self._ended(slot)

    def send(self, slot: Slot, message: OutboundMessage, *, attempt: int) -> Outcome:
        """Sends `message` in `slot` and classifies the answer; `attempt` counts this one (1 for the first)."""
        try:
            receipt = self.adapter.send(message)
        except OptedOutError as error:
            return self._counted(Outcome("opted_out", error=error))
        except PermanentError as error:
            return self._counted(Outcome("rejected", error=error))
        except TransientError as error:
            return self._passing_failure(error, attempt)
        finally:
            self._ended(slot)
        return self._counted(Outcome("sent", receipt=receipt))

    def send_now(self, message: OutboundMessage, *, attempt: int = 1) -> Outcome:
        """Reserves a slot and sends in it; the account being busy longer than the class waits is a passing failure."""
        slot = self.reserve()
        if slot is None:
            return self._passing_failure(TransientError("Der Kanal ist gerade ausgelastet.", code="busy"), attempt)
        return self.send(slot, message, attempt=attempt)

    def _passing_failure(self, error: TransientError, attempt: int) -> Outcome:
        if not self.delivery_class.retried or attempt >= self.settings.max_send_attempts:
            return self._counted(Outcome("gave_up", error=error))
        return self._counted(
            Outcome("retry", error=error, retry_in=retry_delay(self.settings, attempt, error.retry_after))
        )

    def _counted(self, outcome: Outcome) -> Outcome:
        labels = (self.account.kind, self.delivery_class.name)
        if outcome.state == "sent":
            MESSAGES_SENT.labels(*labels).inc()
        elif outcome.state == "retry":
            MESSAGES_RETRIED.labels(*labels).inc()
        else:
            MESSAGES_FAILED.labels(*labels, outcome.state).inc()
        return outcome

    def _ended(self, slot: Slot) -> None:
        # Best effort: the send's outcome must be recorded even if the limiter's store is gone;
        # an unstamped slot only stays held (counted) until hub.ratelimit.SEND_HOLD_SECONDS.
        try:
            self._limiter.sent(self._key, slot.name)
        except Exception:
            log.warning("could not stamp the end of a send on %s; its slot stays held for a while", self._key)


class RecipientOptedOut(InvalidInput):
    """The address stopped this town's messages at the provider; nothing can be sent to it."""


def send_while_waiting(
    settings: Settings,
    account: ChannelAccount,
    message: OutboundMessage,
    *,
    language: str,
    delivery_class: DeliveryClass = CONFIRMATION,
) -> Receipt:
    """Sends while someone waits (a citizen on a form, a clerk asking for a reset link).

    A passing failure is a 503 (ChannelUnavailable), a refused address a 422 (InvalidInput), an
    address that opted out at the provider a 422 RecipientOptedOut, each in `language`.
    """
    outcome = Sender(settings, account, delivery_class).send_now(message)
    if outcome.state == "opted_out":
        raise RecipientOptedOut(_OPTED_OUT).in_language(language) from outcome.error
    if outcome.state == "rejected":
        raise InvalidInput(_REJECTED).in_language(language) from outcome.error
    if outcome.receipt is None:
        raise ChannelUnavailable(_UNAVAILABLE).in_language(language) from outcome.error
    return outcome.receipt
