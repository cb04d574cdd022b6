"""The demo town's relay of official warnings: its regional key and actions, and warnings the emulated API publishes.

Musterstadt's regional key is made up (Kreis 16999, "Musterkreis" in Thuringia); the sandbox's
API serves the warnings below for it and for Nachbarstadt in the same Kreis.
"""

from __future__ import annotations

from sqlmodel import Session

from channels.sandbox.client import SandboxClient
from hub.official_warnings.models import WarningRelay
from hub.official_warnings.relay import configure
from hub.problems.demo import DEMO_SHAPES
from hub.tenancy.models import StaffUser

DEMO_ARS = "169990001001"
NEIGHBOUR_ARS = "169990002002"
# Severe and extreme warnings go out at once; the weather service's minor ones are left out; the rest waits.
DEMO_ACTIONS = {
    source: {"Extreme": "send", "Severe": "send"} for source in ("MOWAS", "KATWARN", "BIWAPP", "LHP", "POLICE")
} | {"DWD": {"Extreme": "send", "Severe": "send", "Minor": "ignore"}}


def seed_warning_demo(session: Session, admin: StaffUser) -> None:
    """Sets up the relay once; a town that has one keeps it."""
    if session.get(WarningRelay, admin.municipality_id) is None:
        configure(session, actor=admin, ars=DEMO_ARS, actions=DEMO_ACTIONS, default_action="draft")


def publish_demo_warnings(sandbox: SandboxClient) -> None:
    """Official warnings as the federal API would carry them: one sent at once to Mitte, one waiting for approval,
    one left out by the town's choice, one for the neighbouring town."""
    sandbox.publish_warning(
        provider="MOWAS", severity="Severe", headline="Großbrand in einem Gewerbebetrieb in Musterstadt-Mitte",
        description="In einem Gewerbebetrieb an der Hauptstraße brennt es. Es entsteht starker Rauch.",
        instruction="Halten Sie Fenster und Türen geschlossen. Schalten Sie Lüftungs- und Klimaanlagen ab. "
        "Meiden Sie das Gebiet um die Hauptstraße.",
        region_keys=[DEMO_ARS], area="Stadt Musterstadt, Ortsteil Mitte", geometry=DEMO_SHAPES["mitte"],
    )  # fmt: skip
    sandbox.publish_warning(
        provider="LHP", severity="Moderate", headline="Hochwasserinformation für die Ilm",
        description="Der Pegel der Ilm steigt. Meldestufe 1 wird im Lauf des Tages erreicht.",
        instruction="Räumen Sie Keller und tief gelegene Räume in Ufernähe.", region_keys=["169990000000"],
        area="Landkreis Musterkreis",
    )  # fmt: skip
    sandbox.publish_warning(
        provider="DWD", severity="Minor", headline="Amtliche WARNUNG vor GLÄTTE",
        description="Es tritt leichter Frost auf. Örtlich wird es glatt.", region_keys=["160000000000"],
        area="Thüringen",
    )  # fmt: skip
    sandbox.publish_warning(
        provider="POLICE", severity="Severe", headline="Bombenentschärfung in Nachbarstadt",
        description="Ein Blindgänger wird entschärft.", instruction="Verlassen Sie den Sperrbereich.",
        region_keys=[NEIGHBOUR_ARS], area="Nachbarstadt",
    )  # fmt: skip
