"""One staff page for a town's list of small things (labels, canned replies): shown, created, changed, deleted."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from hub.db import get_session
from hub.errors import Conflict, DomainError, InvalidInput
from hub.i18n import N_, language_of, translate
from hub.web.auth import Staff, require
from hub.web.rendering import render

# What the page says after a change (?done=<key>), as German msgids.
NOTICES = {"saved": N_("Gespeichert."), "deleted": N_("Gelöscht.")}


@dataclass(frozen=True)
class TownList:
    """A domain's list page as data; `add_to` serves it on the domain's page router.

    The routes, under the router's prefix: GET `path` (the page), POST `path` (create), POST
    `path/{<id_name>}` (change) and POST `path/{<id_name>}/delete`. The domain's keyword-only
    service functions are called as `list_items(session, municipality_id=…)`, `create(session,
    municipality_id=…, **fields)`, `update(session, municipality_id=…, <id_name>=…, **fields)` and
    `delete(session, municipality_id=…, <id_name>=…)`; a refused create or change shows the page
    again with the reason, in the reader's language.
    """

    path: str
    # The path parameter, and the keyword under which the service functions take the item's id.
    id_name: str
    template: str
    title: str  # a German msgid
    # What the template calls the list.
    items_name: str
    # The form's fields, all text, passed to create and update by name.
    fields: tuple[str, ...]
    permission: str
    list_items: Callable[..., Sequence[object]]
    create: Callable[..., object]
    update: Callable[..., object]
    delete: Callable[..., object]
    # More for the template, the same on every rendering.
    context: Mapping[str, Any] = field(default_factory=dict)

    def add_to(self, router: APIRouter) -> None:
        target = router.prefix + self.path
        item = f"{self.path}/{{{self.id_name}:int}}"
        staff_only = Depends(require(self.permission))

        def show_list(
            request: Request, done: str = "", staff: Staff = staff_only, session: Session = Depends(get_session)
        ) -> HTMLResponse:
            return self._page(request, staff, session, done=done)

        def save_item(
            request: Request,
            values: dict[str, str] = Depends(self._values),
            staff: Staff = staff_only,
            session: Session = Depends(get_session),
        ) -> Response:
            return self._save(request, staff, session, target, values=values)

        def delete_item(
            request: Request, staff: Staff = staff_only, session: Session = Depends(get_session)
        ) -> Response:
            self.delete(session, municipality_id=staff.municipality_id, **{self.id_name: self._item_id(request)})
            session.commit()
            return RedirectResponse(f"{target}?done=deleted", status_code=303)

        router.add_api_route(self.path, show_list, methods=["GET"], response_class=HTMLResponse)
        router.add_api_route(self.path, save_item, methods=["POST"])
        router.add_api_route(item, save_item, methods=["POST"])
        router.add_api_route(f"{item}/delete", delete_item, methods=["POST"])

    def _item_id(self, request: Request) -> int | None:
        """The id in the path; None on the path that creates."""
        found = request.path_params.get(self.id_name)
        return None if found is None else int(found)

    async def _values(self, request: Request) -> dict[str, str]:
        form = await request.form()
        return {name: value if isinstance(value := form.get(name), str) else "" for name in self.fields}

    def _page(
        self,
        request: Request,
        staff: Staff,
        session: Session,
        *,
        done: str = "",
        error: DomainError | None = None,
        draft: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        return render(
            request,
            self.template,
            status_code=error.status_code if error else 200,
            title=translate(request, self.title),
            notice=translate(request, NOTICES[done]) if done in NOTICES else None,
            error=error.text(language_of(request)) if error else None,
            # What was typed into the form for a new one, kept when it was refused.
            draft=draft or dict.fromkeys(self.fields, ""),
            **{self.items_name: self.list_items(session, municipality_id=staff.municipality_id)},
            **self.context,
        )

    def _save(
        self,
        request: Request,
        staff: Staff,
        session: Session,
        target: str,
        *,
        values: dict[str, str],
    ) -> Response:
        item_id = self._item_id(request)
        try:
            if item_id is None:
                self.create(session, municipality_id=staff.municipality_id, **values)
            else:
                self.update(session, municipality_id=staff.municipality_id, **{self.id_name: item_id}, **values)
        except (InvalidInput, Conflict) as error:
            session.rollback()
            return self._page(request, staff, session, error=error, draft=values if item_id is None else None)
        session.commit()
        return RedirectResponse(f"{target}?done=saved", status_code=303)
