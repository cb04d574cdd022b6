"""Bearer-token authentication for /api/v1 and the permission check each API route declares."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from hub.db import get_session
from hub.errors import Forbidden, NotSignedIn
from hub.i18n import N_
from hub.logs import bind_town
from hub.tenancy.models import Municipality, StaffUser
from hub.tenancy.roles import PERMISSIONS, allows
from hub.tenancy.service import user_for_token

_bearer = HTTPBearer(auto_error=False, description="Token from `rathaus token create`.")


def current_user(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    session: Session = Depends(get_session),
) -> StaffUser:
    if credentials is None:
        raise NotSignedIn(N_("Anmeldung erforderlich: Header 'Authorization: Bearer <Token>' fehlt."))
    user = user_for_token(session, credentials.credentials)
    if user is None:
        raise NotSignedIn(N_("Token ungültig oder widerrufen."))
    town = session.get(Municipality, user.municipality_id)
    if town is not None:
        bind_town(town.slug)
    return user


def require_permission(permission: str) -> Callable[..., StaffUser]:
    """A dependency that lets only tokens of roles with `permission` through (403 otherwise).

    Like the pages' require() in hub.web.auth, the permission is kept on the dependency, so the
    role test matrix can read what each API route asks for.
    """
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def check(user: StaffUser = Depends(current_user)) -> StaffUser:
        if not allows(user.role, permission):
            raise Forbidden(
                N_("Die Rolle {role!r} darf das nicht (nötig: {permission})."), role=user.role, permission=permission
            )
        return user

    check.permission = permission  # type: ignore[attr-defined]
    return check
