"""JSON shapes of the inbox API."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any, Literal

from pydantic import BaseModel, Field


class ChannelRef(BaseModel):
    id: int
    kind: str
    name: str


class ContactRef(BaseModel):
    id: int
    display_name: str | None
    language: str


class ConversationOut(BaseModel):
    id: int
    reference: str
    status: str
    subject: str | None
    channel: ChannelRef
    contact: ContactRef
    thread_key: str | None
    assignee_id: int | None
    team_id: int | None
    created_at: datetime
    last_activity_at: datetime
    last_inbound_at: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    snoozed_until: datetime | None = Field(
        None, description="Set aside until then (Wiedervorlage): out of the open lists, open again from then on."
    )
    waiting_seconds: float | None = Field(
        description="How long the citizen has waited for a first answer, while there is none."
    )


class ConversationPageOut(BaseModel):
    items: list[ConversationOut]
    total: int
    page: int
    per_page: int
    pages: int


class AttachmentOut(BaseModel):
    id: int
    filename: str | None
    content_type: str
    size: int | None
    url: str | None
    download: str | None


class MessageOut(BaseModel):
    id: int
    conversation_id: int
    direction: str
    kind: str
    body: str
    subject: str | None
    author_id: int | None
    automated: bool
    status: str | None
    error_code: str | None
    error_message: str | None
    segments: int | None
    encoding: str | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    template: str | None = Field(None, description="The approved template the reply was sent as, if one.")
    attachments: list[AttachmentOut] = []


class TextIn(BaseModel):
    text: str = Field(min_length=1, max_length=100_000)


class ReplyIn(TextIn):
    template: Literal["de", "en"] | None = Field(
        None,
        description="Send as the channel's approved template in this language (see .../templates); "
        "the text is its variable. Needed once the channel's reply window is closed.",
    )
    seen_message_id: int | None = Field(
        None,
        description="The newest message of the conversation the writer has seen; a colleague's reply after it "
        "refuses this one (409, their reply in the message), so that the citizen is not answered twice.",
    )


class ReplyTemplateOut(BaseModel):
    language: str
    template: str = Field(description="The provider's id of the approved template (a content SID).")


class ConversationPatch(BaseModel):
    status: Literal["open", "pending", "resolved"] | None = None
    assignee_id: int | None = None
    team_id: int | None = None


class SnoozeIn(BaseModel):
    """A Wiedervorlage: the conversation leaves the open lists until `day` at `at`, the town's time."""

    day: date = Field(description="The day it comes back, e.g. 2026-12-10.")
    at: time | None = Field(None, description="The time it comes back (town time, no offset); 08:00 if left out.")


class InboundEventOut(BaseModel):
    id: int
    channel_account_id: int
    provider_id: str
    event_type: str
    state: str
    outcome: str | None
    content_type: str
    size: int
    received_at: datetime


class ConversationFilter(BaseModel):
    """The list's filters, as `GET /conversations` takes them, naming every conversation they match."""

    status: Literal["open", "pending", "resolved"] | None = None
    channel: str | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    team_id: int | None = None
    label_id: int | None = None
    q: str | None = Field(None, max_length=200)

    def query(self) -> dict[str, Any]:
        """As keywords of hub.inbox.service.conversation_query."""
        return {
            "status": self.status, "channel_kind": self.channel, "assignee_id": self.assignee_id,
            "unassigned": self.unassigned, "team_id": self.team_id, "label_id": self.label_id, "search": self.q,
        }  # fmt: skip


class BulkIn(BaseModel):
    action: Literal["assign", "team", "label", "status", "snooze", "merge"]
    value: int | str | None = Field(
        None,
        description="assign: a staff user's id; team: a team's id; label: a label's id; status: open, pending or "
        "resolved; snooze: the day it comes back (2026-12-10, or 2026-12-10T09:30; town time, 08:00 without one). "
        "null clears the assignee or the team; merge takes none.",
    )
    ids: list[int] | None = Field(None, max_length=5000, description="The conversations, or else `matching`.")
    matching: ConversationFilter | None = Field(None, description="Every conversation these filters match.")
    confirm: bool = Field(
        False,
        description="merge only: must be true. The oldest conversation stays and takes the others' messages; "
        "a merge cannot be undone.",
    )


class BulkOut(BaseModel):
    change_id: int = Field(description="Undo with POST /conversations/bulk/{change_id}/undo for a minute.")
    action: str
    changed: int = Field(description="How many conversations had another value before (merge: how many joined).")
    undoable: bool = Field(description="False for a merge, which cannot be undone.")
    merged_into: str | None = Field(description="merge: the reference of the conversation that stays.")
    message: str
