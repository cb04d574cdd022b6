"""The delivery classes: for each kind of message the hub sends, its lane, whether it is retried, what a crash means.

A new sender (consultation reminders, say) picks one of these, or adds one here, and sends
through `hub.delivery.engine`; the senders' claims and records read their rules from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class InFlight(StrEnum):
    """What becomes of a send that was in flight when its worker died: the provider may or may not have it."""

    UNCERTAIN = "uncertain"  # never sent twice; marked for a person to decide
    SEND_AGAIN = "send_again"  # sent again; the citizen may get it twice
    CALLER = "caller"  # sent while someone waits, who sees the failure and asks again


@dataclass(frozen=True)
class DeliveryClass:
    name: str
    # Priority sends take a channel account's next free slot ahead of bulk ones (hub.ratelimit).
    priority: bool
    # A passing failure is tried again later; otherwise the caller is told at once.
    retried: bool
    in_flight: InFlight
    # A sender someone waits on gives up on the rate limit after this many seconds.
    waits_at_most: float | None = None


# Staff answers, acknowledgements and command answers.
REPLY = DeliveryClass("reply", priority=True, retried=True, in_flight=InFlight.UNCERTAIN)
# A code or a confirmation link a citizen waits for on a form: a failure is shown on the form.
CONFIRMATION = DeliveryClass(
    "confirmation", priority=True, retried=False, in_flight=InFlight.CALLER, waits_at_most=10.0
)
# A reset link, an invitation, a notice to the admins.
STAFF_MAIL = DeliveryClass("staff_mail", priority=True, retried=False, in_flight=InFlight.CALLER, waits_at_most=10.0)
# An administrator trying a channel's settings: the answer is shown on the page.
CHANNEL_TEST = DeliveryClass(
    "channel_test", priority=True, retried=False, in_flight=InFlight.CALLER, waits_at_most=10.0
)
# Warnings and all-clears: a duplicate beats a missed warning.
WARNING = DeliveryClass("warning", priority=True, retried=True, in_flight=InFlight.SEND_AGAIN)
# Announcements, surveys, invitations.
ANNOUNCEMENT = DeliveryClass("announcement", priority=False, retried=True, in_flight=InFlight.UNCERTAIN)
