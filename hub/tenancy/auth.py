"""Bearer-token authentication for /api/v1 and the role checks routes declare."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from hub.db import get_session
from hub.tenancy.models import StaffUser
from hub.tenancy.service import user_for_token

_bearer = HTTPBearer(auto_error=False, description="Token from `rathaus token create`.")

# Who may change the inbox (reply, note, assign, set status, merge); viewers only read.
WRITE_ROLES = frozenset({"admin", "mayor", "staff"})


def current_user(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    session: Session = Depends(get_session),
) -> StaffUser:
    if credentials is None:
        raise HTTPException(401, "Anmeldung erforderlich: Header 'Authorization: Bearer <Token>' fehlt.")
    user = user_for_token(session, credentials.credentials)
    if user is None:
        raise HTTPException(401, "Token ungültig oder widerrufen.")
    return user


def require_role(roles: frozenset[str]) -> Callable[[StaffUser], StaffUser]:
    def check(user: StaffUser = Depends(current_user)) -> StaffUser:
        if user.role not in roles:
            raise HTTPException(403, f"Die Rolle {user.role!r} darf das nicht.")
        return user

    return check


can_write = require_role(WRITE_ROLES)
require_admin = require_role(frozenset({"admin"}))
