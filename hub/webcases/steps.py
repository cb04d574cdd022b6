"""The steps after a web form, the same on every form: the reference page, the code by SMS, the mailed link.

Between the form and its last step (the code, the mail) the case's reference, status link and
the way chosen travel in a short-lived signed cookie, as on the sign-up pages. Each form names
its own cookie, proof, pages and texts (`Steps`); its routes call these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from hub.errors import DomainError
from hub.i18n import N_, language_of, translate
from hub.inbox.models import Conversation
from hub.settings import get_settings
from hub.subscribers import signed_links, verification
from hub.tenancy.models import Municipality
from hub.web.rendering import render
from hub.web.security import client_address
from hub.webcases import intake

CODE_AGAIN = N_("Wir haben Ihnen einen neuen Code geschickt. Der alte gilt nicht mehr.")


@dataclass(frozen=True)
class Steps:
    """One form's steps: its cookie and proof, its path under /{slug}, its pages and their texts (German msgids)."""

    form_state: signed_links.FormState
    proof: intake.Proof
    path: str
    filed_template: str
    filed_title: str
    confirm_template: str
    confirmed_text: str

    def after_filing(
        self, request: Request, session: Session, municipality: Municipality, conversation: Conversation,
        follow: intake.Follow, **extra: Any,
    ) -> Response:  # fmt: skip
        """Commits the case, then sends the proof the citizen chose; on to the reference and what comes next."""
        session.commit()
        language = language_of(request)
        state: dict[str, Any] = {"c": conversation.id, "r": conversation.reference, "t": conversation.public_token,
                                 "w": follow.way, "l": language, **extra}  # fmt: skip
        try:
            state |= intake.send_proof(
                session, proof=self.proof, settings=get_settings(), municipality=municipality,
                conversation=conversation, follow=follow, language=language, client_ip=client_address(request),
            )  # fmt: skip
        except DomainError as error:
            # The case stands; only the way back could not be set up now.
            session.rollback()
            state["x"], state["w"] = error.text(language), "none"
        response = RedirectResponse(f"/{municipality.slug}{self.path}/danke", status_code=303)
        self.form_state.remember(request, response, municipality_id=municipality.id, **state)
        return response

    def _recall(self, request: Request, municipality: Municipality) -> dict[str, Any] | None:
        """The filed case's state from the cookie, without the town it is signed for."""
        state = self.form_state.recall(request, municipality_id=municipality.id)
        return {key: value for key, value in state.items() if key != "m"} if state is not None else None

    def _restart(self, municipality: Municipality) -> RedirectResponse:
        return RedirectResponse(f"/{municipality.slug}{self.path}", status_code=303)

    def _filed(
        self, request: Request, municipality: Municipality, state: dict[str, Any], *,
        error: DomainError | None = None, notice: str | None = None,
    ) -> HTMLResponse:  # fmt: skip
        return render(
            request, self.filed_template, status_code=error.status_code if error else 200,
            title=translate(request, self.filed_title), municipality=municipality.name, slug=municipality.slug,
            state=state, status_link=f"/anfrage/{state['r']}/{state['t']}",
            minutes=int(verification.VALID_FOR.total_seconds() // 60),
            error=error.text(language_of(request)) if error else state.get("x"), notice=notice,
        )  # fmt: skip

    def filed(self, request: Request, municipality: Municipality) -> Response:
        """The reference, the status link and the next step, or the form again if the cookie is gone."""
        state = self._recall(request, municipality)
        return self._filed(request, municipality, state) if state is not None else self._restart(municipality)

    def check_code(self, request: Request, session: Session, municipality: Municipality, code: str) -> Response:
        state = self._recall(request, municipality)
        if state is None or "p" not in state:
            return self._restart(municipality)
        try:
            intake.check_code(
                session, proof=self.proof, municipality=municipality, phone=state["p"], code=code,
                language=state["l"], client_ip=client_address(request), user_agent=request.headers.get("user-agent"),
            )  # fmt: skip
        except DomainError as error:
            session.rollback()
            return self._filed(request, municipality, state, error=error)
        state = {**state, "w": "followed"}
        response = self._filed(request, municipality, state)
        self.form_state.remember(request, response, municipality_id=municipality.id, **state)
        return response

    def send_code_again(self, request: Request, session: Session, municipality: Municipality) -> Response:
        state = self._recall(request, municipality)
        if state is None or "p" not in state:
            return self._restart(municipality)
        try:
            intake.ask_for_code(
                session, proof=self.proof, municipality=municipality, conversation_id=int(state["c"]),
                phone=state["p"], language=state["l"], client_ip=client_address(request),
            )  # fmt: skip
        except DomainError as error:
            session.rollback()
            return self._filed(request, municipality, state, error=error)
        return self._filed(request, municipality, state, notice=translate(request, CODE_AGAIN))

    def confirm_page(self, request: Request, municipality: Municipality, token: str) -> HTMLResponse:
        """Opening the link shows a button; only the button proves the address (mail scanners open links too)."""
        payload = intake.read_mail_link(proof=self.proof, municipality=municipality, token=token)
        return render(
            request, self.confirm_template, title=translate(request, "E-Mail-Adresse bestätigen"),
            municipality=municipality.name, reference=payload["r"], email=payload["e"],
        )  # fmt: skip

    def confirm(self, request: Request, session: Session, municipality: Municipality, token: str) -> HTMLResponse:
        reference = intake.confirm_mail_link(session, proof=self.proof, municipality=municipality, token=token)
        return render(
            request, "citizen/notice.html", title=translate(request, "E-Mail-Adresse bestätigt"),
            municipality=municipality.name,
            text=translate(request, self.confirmed_text) % {"reference": reference},
        )  # fmt: skip
