"""Reports in the demo town as the web form files them, so that its maps show pins before anyone writes in.

Their places are the sandbox geocoder's demo addresses (channels/sandbox/nominatim.py), given
with the address so that seeding asks no geocoder. One report has an "ich auch", and two are
the same hedge, for staff to merge.
"""

from __future__ import annotations

from sqlmodel import Session, select

from hub.problems import web_form
from hub.problems.models import ProblemReport
from hub.settings import Settings
from hub.tenancy.models import Municipality

# (category key, description, lat, lon, address)
DEMO_WEB_REPORTS = (
    ("muell", "Am Gartenweg liegen seit dem Wochenende alte Matratzen und Säcke.", 51.02000, 10.03500, "Gartenweg 2"),
    ("gruen", "Die Hecke am Markt ragt weit in den Gehweg.", 51.01620, 10.01800, "Am Markt 1"),
    # The same hedge again, a few metres on: the case shows it as a duplicate to merge.
    ("gruen", "Am Markt wächst eine Hecke über den Gehweg, man muss auf die Straße.", 51.01640, 10.01815, "Am Markt"),
    ("schlagloch", "Tiefes Schlagloch vor dem Bahnhof, gefährlich für Radfahrer.", 51.02500, 10.01000,
     "Bahnhofstraße 3"),
)  # fmt: skip


def seed_web_reports(session: Session, settings: Settings, municipality: Municipality) -> None:
    """Files the demo's web reports and one "ich auch" on the first (the demo town is seeded once)."""
    first = None
    for key, text, lat, lon, address in DEMO_WEB_REPORTS:
        place = web_form.Place(lat=lat, lon=lon, address=address)
        conversation = web_form.file_report(
            session, settings=settings, municipality=municipality, category_key=key, description=text, place=place,
            photos=(), language="de",
        )  # fmt: skip
        first = first or conversation
    assert first is not None and first.id is not None
    report = session.exec(select(ProblemReport).where(ProblemReport.conversation_id == first.id)).one()
    assert report.id is not None
    web_form.support(session, settings=settings, municipality=municipality, report_id=report.id, language="de")
    session.flush()
