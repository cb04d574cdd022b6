"""The reporter's own view of their photos: the display copy behind their status link, released or not."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlmodel import Session

from hub.db import get_session
from hub.errors import NotFound
from hub.i18n import N_
from hub.inbox.public_status import citizen_view
from hub.problems.models import ProblemPhoto
from hub.problems.service import report_of

router = APIRouter(tags=["public"], include_in_schema=False)


@router.get("/anfrage/{reference}/{token}/foto/{photo_id}")
def own_photo(reference: str, token: str, photo_id: int, session: Session = Depends(get_session)) -> Response:
    view = citizen_view(session, reference=reference, token=token)
    assert view.conversation.id is not None
    report = report_of(session, conversation_id=view.conversation.id)
    photo = session.get(ProblemPhoto, photo_id)
    if report is None or photo is None or photo.report_id != report.id:
        raise NotFound(N_("Dieses Foto gibt es nicht oder es ist nicht freigegeben."))
    # The status link is private: no copy in shared caches.
    return Response(photo.display, media_type=photo.display_type, headers={"Cache-Control": "private, no-store"})
