"""JSON routes for the tenant's channel accounts, staff and teams (read-only here)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlmodel import Session, select

from hub.db import get_session
from hub.settings import get_settings
from hub.tenancy.auth import current_user
from hub.tenancy.models import StaffUser, Team
from hub.tenancy.service import describe_channel_account, list_channel_accounts

router = APIRouter(prefix="/api/v1", tags=["tenancy"])


@router.get("/channels")
def list_channels(
    user: StaffUser = Depends(current_user), session: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    settings = get_settings()
    return [
        describe_channel_account(settings, account, show_secrets=False)
        for account in list_channel_accounts(session, municipality_id=user.municipality_id)
    ]


@router.get("/users")
def list_users(
    user: StaffUser = Depends(current_user), session: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    users = session.exec(select(StaffUser).where(StaffUser.municipality_id == user.municipality_id))
    return [{"id": u.id, "name": u.name, "email": u.email, "role": u.role} for u in users]


@router.get("/teams")
def list_teams(
    user: StaffUser = Depends(current_user), session: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    teams = session.exec(select(Team).where(Team.municipality_id == user.municipality_id))
    return [{"id": team.id, "name": team.name} for team in teams]
