"""Tables of the Mängelmelder: categories per town, a report beside its conversation, photos, district shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.db import UtcDateTime, utcnow


class ProblemCategory(SQLModel, table=True):
    """What can be reported (Straßenbeleuchtung, Schlagloch, wilder Müll), and which team takes it.

    `key` is also the keyword a text starts with ("LATERNE Hauptstraße 12"); `labels` are label
    names put on the report's conversation; `response_hours` is the category's own answer target.
    """

    __table_args__ = (UniqueConstraint("municipality_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    key: str = Field(max_length=40, description="Lower-case keyword used in texts, buttons and the API.")
    name_de: str = Field(max_length=120)
    name_en: str = Field(max_length=120)
    team_id: int | None = Field(default=None, foreign_key="team.id")
    labels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))
    response_hours: int | None = Field(default=None)


class ProblemReport(SQLModel, table=True):
    """The report's own fields beside its conversation (one each): the reporter, messages and status stay there.

    `merged_into_id`: a duplicate staff merged into another report; its reporters follow that one.
    lat/lon are indexed together so that the duplicate search can prefilter by a bounding box.
    """

    __table_args__ = (Index("ix_problemreport_place", "municipality_id", "lat", "lon"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    conversation_id: int = Field(foreign_key="conversation.id", unique=True)
    category_id: int | None = Field(default=None, foreign_key="problemcategory.id", index=True)
    lat: float | None = Field(default=None)
    lon: float | None = Field(default=None)
    address: str | None = Field(default=None, max_length=300)
    district_id: int | None = Field(default=None, foreign_key="district.id", index=True)
    public_status: str | None = Field(default=None, max_length=300, description="What the public list shows.")
    public: bool = Field(default=True, description="Shown on the public list at all.")
    photos_released: bool = Field(default=False, description="Staff checked the photos: the public may see them.")
    merged_into_id: int | None = Field(default=None, foreign_key="problemreport.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ProblemPhoto(SQLModel, table=True):
    """A checked photo of a report: the stored copy (EXIF removed) is the inbox attachment, plus a display copy."""

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    report_id: int = Field(foreign_key="problemreport.id", index=True)
    attachment_id: int = Field(foreign_key="attachment.id", unique=True)
    width: int
    height: int
    display: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    display_type: str = Field(default="image/jpeg", max_length=40)


class DistrictShape(SQLModel, table=True):
    """The area of a subscribers' district, a GeoJSON Polygon or MultiPolygon, that places are matched against."""

    district_id: int = Field(foreign_key="district.id", primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    geometry: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
