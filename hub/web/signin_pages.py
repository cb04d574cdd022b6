"""Staff sign-in pages: sign in and out, the second factor, password reset, and one's own account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from hub.db import get_session
from hub.delivery import staff_mail
from hub.errors import InvalidInput, TooManyRequests
from hub.i18n import language_of, translate
from hub.ratelimit import shared_limiter
from hub.settings import get_settings
from hub.tenancy import signin
from hub.tenancy.models import StaffUser
from hub.web.auth import SESSION_COOKIE, Staff, require
from hub.web.rendering import render
from hub.web.security import (
    client_address,
    new_csrf_token,
    safe_next,
    session_csrf_token,
    set_cookie,
    verify_csrf,
)

router = APIRouter(prefix="/app", tags=["pages"], include_in_schema=False, dependencies=[Depends(verify_csrf)])


def _signed_in_response(request: Request, target: str, token: str) -> Response:
    """Redirects into the app with the new session cookie and a new CSRF token."""
    response = RedirectResponse(target, status_code=303)
    set_cookie(request, response, SESSION_COOKIE, token)
    request.state.csrf_token = session_csrf_token(token)
    return response


def _locked(
    request: Request, locked: signin.AccountLocked | signin.SignInThrottled, *, email: str, target: str
) -> HTMLResponse:
    """The sign-in form again, saying how long to wait (after too many wrong passwords or codes)."""
    if isinstance(locked, signin.SignInThrottled):
        error = translate(
            request, "Zu viele Fehlversuche. Bitte warten Sie {minutes} Minuten und versuchen Sie es dann erneut."
        )
    else:
        error = translate(request, "Zu viele Fehlversuche. Die Anmeldung ist für {minutes} Minuten gesperrt.")
    return render(
        request,
        "staff/login.html",
        status_code=429,
        title=translate(request, "Anmelden"),
        next=target,
        email=email,
        error=error.format(minutes=locked.minutes),
    )


@router.get("/", include_in_schema=False)
def home(_staff: Staff = Depends(require("account"))) -> RedirectResponse:
    return RedirectResponse("/app/inbox", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/app/") -> HTMLResponse:
    return render(request, "staff/login.html", title=translate(request, "Anmelden"), next=safe_next(next), email="")


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/app/",
    session: Session = Depends(get_session),
) -> Response:
    target = safe_next(next)
    settings = get_settings()
    try:
        user = signin.authenticate(
            session, settings=settings, limiter=shared_limiter(settings), client=client_address(request) or "unknown",
            email=email, password=password,
        )  # fmt: skip
    except (signin.AccountLocked, signin.SignInThrottled) as locked:
        return _locked(request, locked, email=email, target=target)
    except signin.SignInFailed:
        error = translate(request, "E-Mail-Adresse oder Passwort stimmen nicht.")
        return render(
            request,
            "staff/login.html",
            status_code=401,
            title=translate(request, "Anmelden"),
            next=target,
            email=email,
            error=error,
        )
    token = signin.start_session(session, user=user)
    if user.totp_secret:
        return _signed_in_response(request, f"/app/login/code?next={target}", token)
    return _signed_in_response(request, target, token)


def _pending(request: Request, session: Session) -> signin.SignedIn | None:
    found = signin.load_session(session, settings=get_settings(), token=request.cookies.get(SESSION_COOKIE))
    return found if found is not None and found.session.second_factor_pending else None


@router.get("/login/code", response_class=HTMLResponse)
def second_factor_form(request: Request, next: str = "/app/", session: Session = Depends(get_session)) -> Response:
    if _pending(request, session) is None:
        return RedirectResponse("/app/login", status_code=303)
    return render(
        request, "staff/second_factor.html", title=translate(request, "Bestätigungscode"), next=safe_next(next)
    )


@router.post("/login/code", response_class=HTMLResponse)
def second_factor(
    request: Request,
    code: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/app/",
    session: Session = Depends(get_session),
) -> Response:
    pending = _pending(request, session)
    if pending is None:
        return RedirectResponse("/app/login", status_code=303)
    target = safe_next(next)
    try:
        passed = signin.check_second_factor(session, settings=get_settings(), signed_in=pending, code=code)
    except signin.AccountLocked as locked:
        signin.end_session(session, token=request.cookies.get(SESSION_COOKIE))
        return _locked(request, locked, email=pending.user.email, target=target)
    if not passed:
        return render(
            request,
            "staff/second_factor.html",
            status_code=401,
            title=translate(request, "Bestätigungscode"),
            next=target,
            error=translate(request, "Der Code stimmt nicht. Bitte versuchen Sie es erneut."),
        )
    # A new session id once the second factor is through, as after any change of privilege.
    signin.end_session(session, token=request.cookies.get(SESSION_COOKIE))
    token = signin.start_session(session, user=pending.user, second_factor_passed=True)
    return _signed_in_response(request, target, token)


@router.post("/logout")
def logout(request: Request, session: Session = Depends(get_session)) -> RedirectResponse:
    signin.end_session(session, token=request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/app/login?signed_out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    request.state.csrf_token = new_csrf_token()
    return response


@router.get("/password/forgot", response_class=HTMLResponse)
def forgot_form(request: Request) -> HTMLResponse:
    return render(request, "staff/password_forgot.html", title=translate(request, "Passwort vergessen"))


@router.post("/password/forgot", response_class=HTMLResponse)
def forgot(request: Request, email: Annotated[str, Form()] = "", session: Session = Depends(get_session)) -> Response:
    """Always the same answer, so the form does not tell which addresses have an account."""
    title = translate(request, "Passwort vergessen")
    try:
        staff_mail.mail_password_reset(session, settings=get_settings(), client=client_address(request), email=email)
    except TooManyRequests as error:
        return render(
            request, "staff/password_forgot.html", status_code=429, title=title, error=error.text(language_of(request))
        )
    return render(request, "staff/password_forgot.html", title=title, sent=True)


@router.get("/password/reset/{token}", response_class=HTMLResponse)
def reset_form(request: Request, token: str, session: Session = Depends(get_session)) -> HTMLResponse:
    valid = signin.user_for_reset(session, token=token) is not None
    return render(
        request,
        "staff/password_reset.html",
        status_code=200 if valid else 410,
        title=translate(request, "Neues Passwort"),
        token=token,
        valid=valid,
    )


@router.post("/password/reset/{token}", response_class=HTMLResponse)
def reset(
    request: Request,
    token: str,
    password: Annotated[str, Form()] = "",
    repeated: Annotated[str, Form()] = "",
    session: Session = Depends(get_session),
) -> Response:
    title = translate(request, "Neues Passwort")
    if password != repeated:
        return render(
            request,
            "staff/password_reset.html",
            status_code=422,
            title=title,
            token=token,
            valid=True,
            error=translate(request, "Die beiden Passwörter sind nicht gleich."),
        )
    try:
        signin.reset_password(session, token=token, password=password)
    except InvalidInput as error:
        return render(
            request,
            "staff/password_reset.html",
            status_code=422,
            title=title,
            token=token,
            valid=signin.user_for_reset(session, token=token) is not None,
            error=error.text(language_of(request)),
        )
    session.commit()
    return RedirectResponse("/app/login?reset=1", status_code=303)


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, staff: Staff = Depends(require("account"))) -> HTMLResponse:
    return render(request, "staff/account.html", title=translate(request, "Mein Konto"))


@router.post("/account/password", response_class=HTMLResponse)
def change_password(
    request: Request,
    current: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    repeated: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("account")),
    session: Session = Depends(get_session),
) -> Response:
    title = translate(request, "Mein Konto")
    user = session.get(StaffUser, staff.user_id)
    assert user is not None
    if not user.password_hash or not signin.password_matches(user, current):
        return render(
            request,
            "staff/account.html",
            status_code=422,
            title=title,
            error=translate(request, "Das bisherige Passwort stimmt nicht."),
        )
    if password != repeated:
        return render(
            request,
            "staff/account.html",
            status_code=422,
            title=title,
            error=translate(request, "Die beiden Passwörter sind nicht gleich."),
        )
    try:
        signin.set_password(session, user=user, password=password)
    except InvalidInput as error:
        return render(
            request, "staff/account.html", status_code=422, title=title, error=error.text(language_of(request))
        )
    session.commit()
    return render(
        request, "staff/account.html", title=title, success=translate(request, "Das Passwort wurde geändert.")
    )


@router.post("/account/second-factor", response_class=HTMLResponse)
def start_second_factor(request: Request, staff: Staff = Depends(require("account"))) -> HTMLResponse:
    secret = signin.new_totp_secret()
    uri = signin.totp_uri(secret=secret, user=staff.user, municipality=staff.municipality)
    return render(
        request, "staff/account.html", title=translate(request, "Mein Konto"), new_secret=secret, totp_uri=uri
    )


@router.post("/account/second-factor/confirm", response_class=HTMLResponse)
def confirm_second_factor(
    request: Request,
    secret: Annotated[str, Form()] = "",
    code: Annotated[str, Form()] = "",
    staff: Staff = Depends(require("account")),
    session: Session = Depends(get_session),
) -> Response:
    user = session.get(StaffUser, staff.user_id)
    assert user is not None
    try:
        signin.enable_second_factor(session, user=user, secret=secret, code=code)
    except InvalidInput as error:
        # A wrong code keeps the key the person already entered in the app; a broken key starts over.
        if not signin.is_usable_totp_secret(secret):
            secret = signin.new_totp_secret()
        uri = signin.totp_uri(secret=secret, user=user, municipality=staff.municipality)
        return render(
            request,
            "staff/account.html",
            status_code=422,
            title=translate(request, "Mein Konto"),
            new_secret=secret,
            totp_uri=uri,
            error=error.text(language_of(request)),
        )
    session.commit()
    return render(
        request,
        "staff/account.html",
        title=translate(request, "Mein Konto"),
        success=translate(request, "Die Anmeldung in zwei Schritten ist eingeschaltet."),
    )


@router.post("/account/second-factor/off", response_class=HTMLResponse)
def turn_off_second_factor(
    request: Request, staff: Staff = Depends(require("account")), session: Session = Depends(get_session)
) -> HTMLResponse:
    user = session.get(StaffUser, staff.user_id)
    assert user is not None
    signin.disable_second_factor(session, user=user)
    session.commit()
    return render(
        request,
        "staff/account.html",
        title=translate(request, "Mein Konto"),
        success=translate(request, "Die Anmeldung in zwei Schritten ist ausgeschaltet."),
    )
