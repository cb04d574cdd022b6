"""The demo town's Open311 client app, with a key docs/it/schnittstellen.md prints, and one request it filed."""

from __future__ import annotations

from sqlmodel import Session

from hub.open311.service import file_report, issue_key
from hub.settings import Settings
from hub.tenancy.models import Municipality

DEMO_OPEN311_KEY = "o311_musterstadt-demo"  # the demo town only; documented in docs/it/schnittstellen.md
# Hauptstraße 12 in the demo's Mitte (see hub/problems/demo.py and the sandbox geocoder).
DEMO_REQUEST = {
    "service_code": "laterne", "lat": "51.015", "long": "10.015", "address_string": "Hauptstraße 12, Musterstadt",
    "description": "Die Laterne vor dem Haus ist seit Tagen dunkel.", "email": "open311-demo@example.org",
}  # fmt: skip


def seed_open311_demo(session: Session, settings: Settings, municipality: Municipality) -> None:
    """The app "Stadt-App (Demo)" and the request it filed, as a POST /requests.json would file it."""
    assert municipality.id is not None
    client, _ = issue_key(session, municipality_id=municipality.id, name="Stadt-App (Demo)", key=DEMO_OPEN311_KEY)
    file_report(session, settings=settings, municipality=municipality, client=client, form=DEMO_REQUEST)
