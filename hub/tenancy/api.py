"""JSON routes for the tenant's channel accounts, staff and teams (read-only here), its API tokens, and four eyes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlmodel import Session, select

from hub.db import get_session
from hub.settings import get_settings
from hub.tenancy.administration import four_eyes, revoke_token, set_four_eyes
from hub.tenancy.auth import require_permission
from hub.tenancy.models import StaffUser, Team
from hub.tenancy.preferences import preference
from hub.tenancy.service import TokenListing, describe_channel_account, list_api_tokens, list_channel_accounts

router = APIRouter(prefix="/api/v1", tags=["tenancy"])


@router.get("/channels")
def list_channels(
    user: StaffUser = Depends(require_permission("inbox.read")), session: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    settings = get_settings()
    return [
        describe_channel_account(settings, account, show_secrets=False)
        for account in list_channel_accounts(session, municipality_id=user.municipality_id)
    ]


@router.get("/users")
def list_users(
    user: StaffUser = Depends(require_permission("inbox.read")), session: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    users = session.exec(select(StaffUser).where(StaffUser.municipality_id == user.municipality_id))
    return [{"id": u.id, "name": u.name, "email": u.email, "role": u.role} for u in users]


@router.get("/teams")
def list_teams(
    user: StaffUser = Depends(require_permission("inbox.read")), session: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    teams = session.exec(select(Team).where(Team.municipality_id == user.municipality_id))
    return [{"id": team.id, "name": team.name} for team in teams]


class ApiTokenOut(BaseModel):
    """A token as the administration sees it; the token itself is shown only once, when it is made."""

    id: int
    name: str
    user_id: int
    user_email: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, item: TokenListing) -> ApiTokenOut:
        token = item.token
        assert token.id is not None
        return cls(
            id=token.id, name=token.name, user_id=token.user_id, user_email=item.user.email,
            created_at=token.created_at, last_used_at=token.last_used_at, revoked_at=token.revoked_at,
        )  # fmt: skip


@router.get("/tokens", response_model=list[ApiTokenOut])
def list_tokens(
    user: StaffUser = Depends(require_permission("admin")), session: Session = Depends(get_session)
) -> list[Any]:
    """Every API token of the town (admins only), live ones first; `last_used_at` is exact to a minute."""
    return [ApiTokenOut.of(item) for item in list_api_tokens(session, municipality_id=user.municipality_id)]


@router.delete("/tokens/{token_id}", response_model=ApiTokenOut)
def revoke(
    token_id: int, user: StaffUser = Depends(require_permission("admin")), session: Session = Depends(get_session)
) -> Any:
    """Revokes a token at once (admins only); revoking one that is revoked already changes nothing."""
    revoked = revoke_token(session, municipality_id=user.municipality_id, actor_id=user.id, token_id=token_id)
    session.commit()
    return ApiTokenOut.of(revoked)


class FourEyesIn(BaseModel):
    required: bool = Field(
        description="Every broadcast needs a second person's approval; a warning's author may send it alone "
        "only as an emergency, with a reason."
    )


class FourEyesOut(BaseModel):
    required: bool


@router.get("/settings/four-eyes", response_model=FourEyesOut)
def get_four_eyes(
    user: StaffUser = Depends(require_permission("admin")), session: Session = Depends(get_session)
) -> FourEyesOut:
    return FourEyesOut(required=four_eyes(session, municipality_id=user.municipality_id))


@router.put("/settings/four-eyes", response_model=FourEyesOut)
def put_four_eyes(
    data: FourEyesIn, user: StaffUser = Depends(require_permission("admin")), session: Session = Depends(get_session)
) -> FourEyesOut:
    assert user.id is not None
    town = set_four_eyes(session, municipality_id=user.municipality_id, actor_id=user.id, required=data.required)
    session.commit()
    return FourEyesOut(required=bool(preference(town, "broadcast_four_eyes")))
