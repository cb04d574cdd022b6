"""Field types the JSON API's inputs share, so that each refuses a bad value with the same German message."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from hub.i18n import N_


def _with_offset(value: datetime) -> datetime:
    # Without an offset a moment could be UTC or the town's time, an hour or two apart: guessing
    # would send at the wrong time, and the database keeps only moments that know their zone.
    if value.utcoffset() is None:
        raise PydanticCustomError(
            "datetime_without_offset",
            # A msgid: the API's validation answer translates it like its own texts.
            N_(
                "Zeitpunkt ohne Zeitzone; erwartet ISO 8601 mit Zeitzone, z. B. 2030-06-01T09:30:00+02:00 "
                "oder 2030-06-01T07:30:00Z."
            ),
        )
    return value


# An ISO 8601 moment that names its offset from UTC (or Z); one without is answered with 422.
ZonedDatetime = Annotated[datetime, AfterValidator(_with_offset)]
