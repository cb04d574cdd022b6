"""Who is signed in on a page request, and the permission check each staff page route declares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlmodel import Session

from hub.db import get_session
from hub.errors import Forbidden
from hub.i18n import N_
from hub.logs import bind_town
from hub.settings import get_settings
from hub.tenancy.models import Municipality, StaffUser
from hub.tenancy.roles import PERMISSIONS, allows
from hub.tenancy.signin import load_session
from hub.web.security import SESSION_COOKIE


class SignInRequired(Exception):
    """Answered with a redirect to the sign-in page that comes back to `next_path`."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass(frozen=True)
class Staff:
    """The signed-in staff member of a page request; every query scopes by `municipality_id`."""

    user: StaffUser
    municipality: Municipality

    @property
    def municipality_id(self) -> int:
        assert self.municipality.id is not None
        return self.municipality.id

    @property
    def user_id(self) -> int:
        assert self.user.id is not None
        return self.user.id

    def can(self, permission: str) -> bool:
        return allows(self.user.role, permission)


def current_staff(request: Request, session: Session = Depends(get_session)) -> Staff:
    signed_in = load_session(session, settings=get_settings(), token=request.cookies.get(SESSION_COOKIE))
    if signed_in is None or signed_in.session.second_factor_pending:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target if request.method == "GET" else "/app/")
    staff = Staff(user=signed_in.user, municipality=signed_in.municipality)
    bind_town(signed_in.municipality.slug)
    request.state.staff = staff
    return staff


def require(permission: str) -> Callable[..., Staff]:
    """A dependency that lets only roles with `permission` through (403 otherwise).

    The permission is kept on the dependency, so the role test matrix can read what each
    route asks for.
    """
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def check(staff: Staff = Depends(current_staff)) -> Staff:
        if not staff.can(permission):
            raise Forbidden(N_("Ihre Rolle erlaubt diese Seite nicht. Fragen Sie die Verwaltung Ihrer Gemeinde."))
        return staff

    check.permission = permission  # type: ignore[attr-defined]
    return check
