"""JSON routes of official warnings for admins: the town's relay settings and what became of each warning."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlmodel import Session

from hub.db import get_session
from hub.official_warnings import relay
from hub.official_warnings.models import OfficialWarning, WarningRelay
from hub.tenancy.auth import require_permission
from hub.tenancy.models import StaffUser

router = APIRouter(prefix="/api/v1/official-warnings", tags=["official warnings"])


class RelayIn(BaseModel):
    ars: str = Field(description="The town's 12-digit regional key, e.g. 091620000000.")
    actions: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description='Per source (MOWAS, KATWARN, BIWAPP, DWD, LHP, POLICE) and CAP severity: "ignore", "draft" '
        'or "send", e.g. {"MOWAS": {"Extreme": "send"}}.',
    )
    default_action: str = Field("draft", description="For what `actions` does not name.")


class RelayOut(BaseModel):
    ars: str
    actions: dict[str, Any]
    default_action: str
    polled_at: datetime | None
    last_error: str | None


class OfficialWarningOut(BaseModel):
    id: int
    official_id: str
    version: int
    provider: str
    msg_type: str
    severity: str
    headline: str
    outcome: str
    broadcast_id: int | None
    sent: datetime


def _relay_out(row: WarningRelay) -> RelayOut:
    return RelayOut(ars=row.ars, actions=row.actions, default_action=row.default_action, polled_at=row.polled_at,
                    last_error=row.last_error)  # fmt: skip


def _warning_out(row: OfficialWarning) -> OfficialWarningOut:
    return OfficialWarningOut.model_validate(row, from_attributes=True)


@router.put("/settings", response_model=RelayOut)
def put_settings(data: RelayIn, user: StaffUser = Depends(require_permission("admin")),
                 session: Session = Depends(get_session)) -> RelayOut:  # fmt: skip
    row = relay.configure(session, actor=user, ars=data.ars, actions=data.actions, default_action=data.default_action)
    session.commit()
    return _relay_out(row)


@router.get("", response_model=list[OfficialWarningOut])
def list_official_warnings(user: StaffUser = Depends(require_permission("broadcasts.read")),
                           session: Session = Depends(get_session)) -> list[OfficialWarningOut]:  # fmt: skip
    return [_warning_out(row) for row in relay.recent(session, municipality_id=user.municipality_id)]
