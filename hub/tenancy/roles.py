"""What each staff role may do, in one table that every page route and the role test matrix read."""

from __future__ import annotations

from hub.i18n import N_

ROLES = ("admin", "mayor", "staff", "viewer")
ROLE_LABELS = {
    "admin": N_("Administration"),
    "mayor": N_("Bürgermeisteramt"),
    "staff": N_("Sachbearbeitung"),
    "viewer": N_("Nur lesen"),
}
_EVERYONE = frozenset(ROLES)
_WRITERS = frozenset({"admin", "mayor", "staff"})
_LEADERS = frozenset({"admin", "mayor"})

PERMISSIONS: dict[str, frozenset[str]] = {
    "inbox.read": _EVERYONE,
    "inbox.write": _WRITERS,
    "broadcasts.read": _EVERYONE,
    "broadcasts.draft": _WRITERS,
    "broadcasts.approve": _LEADERS,
    "warnings.send": _LEADERS,
    # Sending one's own warning without a second person when the town requires four eyes, with a reason.
    "warnings.override": _LEADERS,
    "subscribers.read": _EVERYONE,
    "subscribers.write": _WRITERS,
    "subscribers.erase": frozenset({"admin"}),
    "reports.read": frozenset({"admin", "mayor", "viewer"}),
    "consultations.read": _EVERYONE,
    # Booking for a citizen, cancelling, notes on bookings; cancelling and moving a session (the clerks run them).
    "consultations.write": _WRITERS,
    # Defining whole series, and renewing a series' calendar link.
    "consultations.define": _LEADERS,
    # Problem reports: duplicates and categories to read; merging and the public status to write.
    "problems.read": _EVERYONE,
    "problems.write": _WRITERS,
    "admin": frozenset({"admin"}),
    # Every signed-in person: their own account (password, second factor, language).
    "account": _EVERYONE,
}


def allows(role: str, permission: str) -> bool:
    return role in PERMISSIONS[permission]
