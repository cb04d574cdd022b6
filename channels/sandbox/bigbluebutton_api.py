"""BigBlueButton's API (create, join, isMeetingRunning, end, getMeetingInfo) with its checksums and XML answers.

Each registered bigbluebutton account is one shared secret the emulated server accepts; a call
whose checksum none of them produces fails with `checksumError`, as on a server with another
secret. The checksum's algorithm is told by its length, as BigBlueButton does since 2.5.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import secrets
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from channels.sandbox.state import Account, Attendee, Meeting, SandboxState, get_state, utcnow
from channels.sandbox.wire import BadBody, Params, param, person_page, read_params

router = APIRouter(tags=["bigbluebutton"])

KIND = "bigbluebutton"
# Hex digits of a checksum, by algorithm: how the server tells which one the caller used.
ALGORITHMS = {40: "sha1", 64: "sha256", 96: "sha384", 128: "sha512"}
ROLES = ("MODERATOR", "VIEWER")
GUEST_POLICIES = ("ALWAYS_ACCEPT", "ALWAYS_DENY", "ASK_MODERATOR")
MEETING_ID_CHARS = (2, 256)
# Where the server sends a person after join: its HTML5 client, with the session token.
CLIENT_PATH = "/html5client/join"
DIAL_NUMBER = "613-555-1234"


class Failed(Exception):
    """A FAILED answer: its messageKey and message."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def xml_answer(fields: dict[str, Any], children: list[Element] | None = None) -> Response:
    """<response> with `fields` as child elements in order (booleans as true/false), then `children`."""
    root = Element("response")
    for name, value in fields.items():
        if value is not None:
            SubElement(root, name).text = str(value).lower() if isinstance(value, bool) else str(value)
    root.extend(children or [])
    return Response(tostring(root, encoding="unicode"), media_type="text/xml;charset=utf-8")


def failed(key: str, message: str) -> Response:
    return xml_answer({"returncode": "FAILED", "messageKey": key, "message": message})


def _query_without_checksum(query: str) -> tuple[str, str | None]:
    """The query string as the caller hashed it (checksum taken out), and the checksum."""
    kept, checksum = [], None
    for pair in query.split("&") if query else []:
        if pair.startswith("checksum="):
            checksum = pair.removeprefix("checksum=")
        else:
            kept.append(pair)
    return "&".join(kept), checksum


def _caller(state: SandboxState, call: str, query: str) -> Account:
    """The account whose secret produced the request's checksum."""
    hashed, checksum = _query_without_checksum(query)
    algorithm = ALGORITHMS.get(len(checksum or ""))
    if checksum is None or algorithm is None:
        raise Failed("checksumError", "Checksums do not match")
    for account in state.accounts():
        if account.kind == KIND:
            expected = hashlib.new(algorithm, (call + hashed + str(account.secrets["secret"])).encode()).hexdigest()
            if hmac.compare_digest(expected, checksum.lower()):
                return account
    raise Failed("checksumError", "Checksums do not match")


def _required(params: Params, key: str, missing_key: str, what: str) -> str:
    value = str(param(params, key) or "").strip()
    if not value:
        raise Failed(missing_key, f"You must specify {what}.")
    return value


def _meeting_id(params: Params) -> str:
    meeting_id = _required(params, "meetingID", "missingParamMeetingID", "a meeting ID for the meeting")
    low, high = MEETING_ID_CHARS
    if not low <= len(meeting_id) <= high or "," in meeting_id:
        raise Failed("validationError", f"Meeting ID must be between {low} and {high} characters, without commas.")
    return meeting_id


def _number(params: Params, key: str) -> int:
    value = str(param(params, key) or "0")
    if not value.isdigit():
        raise Failed("validationError", f"{key} must be a non-negative number.")
    return int(value)


def _known(state: SandboxState, account: Account, meeting_id: str) -> Meeting:
    meeting = state.meeting(KIND, account.id, meeting_id)
    if meeting is None:
        raise Failed("notFound", "We could not find a meeting with that meeting ID")
    return meeting


def internal_id(meeting: Meeting) -> str:
    # As the server spells it: sha1 of the meetingID, then the createTime.
    return f"{hashlib.sha1(meeting.meeting_id.encode()).hexdigest()}-{meeting.create_time}"  # noqa: S324


def _meeting_fields(meeting: Meeting) -> dict[str, Any]:
    return {
        "meetingID": meeting.meeting_id,
        "internalMeetingID": internal_id(meeting),
        "parentMeetingID": "bbb-none",
        "createTime": meeting.create_time,
        "voiceBridge": 70000 + meeting.create_time % 10000,
        "dialNumber": DIAL_NUMBER,
        "createDate": format_datetime(datetime.fromtimestamp(meeting.create_time / 1000, UTC)),
        "hasUserJoined": bool(meeting.attendees),
        "duration": meeting.duration,
        "hasBeenForciblyEnded": meeting.ended,
    }


def create(state: SandboxState, account: Account, params: Params) -> Response:
    meeting_id = _meeting_id(params)
    name = _required(params, "name", "missingParamName", "a name for the meeting")
    guest_policy = str(param(params, "guestPolicy") or "ALWAYS_ACCEPT")
    if guest_policy not in GUEST_POLICIES:
        raise Failed("validationError", f"guestPolicy must be one of {', '.join(GUEST_POLICIES)}.")
    new = Meeting(
        kind=KIND,
        account_id=account.id,
        meeting_id=meeting_id,
        name=name,
        create_time=time.time_ns() // 1_000_000,
        max_participants=_number(params, "maxParticipants"),
        duration=_number(params, "duration"),
        guest_policy=guest_policy,
    )
    meeting, existed = state.create_meeting(new)
    if not existed:
        return xml_answer({"returncode": "SUCCESS", **_meeting_fields(meeting)})
    # Without passwords, a repeat create is recognised by its name (bigbluebutton#17886).
    if meeting.name != name:
        raise Failed("idNotUnique", "A meeting already exists with that meeting ID. Please use a different meeting ID.")
    return xml_answer(
        {
            "returncode": "SUCCESS",
            **_meeting_fields(meeting),
            "messageKey": "duplicateWarning",
            "message": "This conference was already in existence and may currently be in progress.",
        }
    )


def join(state: SandboxState, account: Account, params: Params, request: Request) -> Response:
    full_name = _required(params, "fullName", "missingParamFullName", "a name for the attendee who will be joining")
    meeting = _known(state, account, _meeting_id(params))
    role = str(param(params, "role") or "").upper()
    if role not in ROLES:
        # The deprecated passwords are not emulated: without a role nobody gets in.
        raise Failed("invalidPassword", "You either did not supply a password or role, or it is not valid.")
    if meeting.ended:
        raise Failed("meetingForciblyEnded", "You can not re-join a meeting that has already been forcibly ended.")
    user_id = str(param(params, "userID") or f"w_{secrets.token_hex(6)}")
    session_token = secrets.token_hex(8)
    state.join_meeting(meeting, Attendee(user_id, full_name, role == "MODERATOR", utcnow()), session_token)
    url = f"{str(request.base_url).rstrip('/')}{CLIENT_PATH}?sessionToken={session_token}"
    if str(param(params, "redirect") or "true").lower() != "false":
        return RedirectResponse(url, status_code=302)
    return xml_answer(
        {
            "returncode": "SUCCESS",
            "messageKey": "successfullyJoined",
            "message": "You have joined successfully.",
            "meeting_id": internal_id(meeting),
            "user_id": user_id,
            "auth_token": secrets.token_hex(6),
            "session_token": session_token,
            "guestStatus": "ALLOW",
            "url": url,
        }
    )


def is_meeting_running(state: SandboxState, account: Account, params: Params) -> Response:
    meeting = state.meeting(KIND, account.id, _meeting_id(params))
    return xml_answer({"returncode": "SUCCESS", "running": bool(meeting and meeting.running)})


def end(state: SandboxState, account: Account, params: Params) -> Response:
    meeting_id = _meeting_id(params)
    _known(state, account, meeting_id)
    state.end_meeting(KIND, account.id, meeting_id)
    return xml_answer(
        {
            "returncode": "SUCCESS",
            "messageKey": "sentEndMeetingRequest",
            "message": "A request to end the meeting was sent. Please wait a few seconds, and then use the"
            " getMeetingInfo or isMeetingRunning API calls to verify that it was ended.",
        }
    )


def get_meeting_info(state: SandboxState, account: Account, params: Params) -> Response:
    meeting = _known(state, account, _meeting_id(params))
    attendees = Element("attendees")
    for person in meeting.attendees:
        attendee = SubElement(attendees, "attendee")
        for name, value in (
            ("userID", person.user_id),
            ("fullName", person.name),
            ("role", "MODERATOR" if person.moderator else "VIEWER"),
            ("isPresenter", str(person.moderator).lower()),
            ("isListeningOnly", "false"),
            ("hasJoinedVoice", "false"),
            ("hasVideo", "false"),
            ("clientType", "HTML5"),
        ):
            SubElement(attendee, name).text = value
    moderators = sum(1 for person in meeting.attendees if person.moderator)
    fields = {
        "returncode": "SUCCESS",
        "meetingName": meeting.name,
        **_meeting_fields(meeting),
        "running": meeting.running,
        "recording": False,
        "startTime": meeting.create_time,
        "endTime": 0,
        "participantCount": len(meeting.attendees),
        "listenerCount": 0,
        "voiceParticipantCount": 0,
        "videoCount": 0,
        "maxUsers": meeting.max_participants,
        "moderatorCount": moderators,
    }
    return xml_answer(fields, [attendees, Element("metadata")])


CALLS = {
    "create": create,
    "isMeetingRunning": is_meeting_running,
    "end": end,
    "getMeetingInfo": get_meeting_info,
}


@router.api_route("/bigbluebutton/api/{call}", methods=["GET", "POST"])
async def api_call(call: str, request: Request, state: SandboxState = Depends(get_state)) -> Response:
    decision = state.decide(KIND, call)
    if decision.latency_s:
        await asyncio.sleep(decision.latency_s)
    if decision.outcome in ("rate_limit", "server_error"):
        status = 429 if decision.outcome == "rate_limit" else 500
        return HTMLResponse(f"<html><body><h1>{status}</h1></body></html>", status_code=status)
    try:
        params = await read_params(request)
    except BadBody:
        params = list(request.query_params.multi_items())
    try:
        # The checksum covers the URL's query only, also for a POST (BigBlueButton's rule).
        account = _caller(state, call, request.url.query)
        if call == "join":
            if request.method != "GET":
                raise Failed("unsupportedRequest", "join accepts GET only (BigBlueButton 3.0).")
            return join(state, account, params, request)
        handler = CALLS.get(call)
        if handler is None:
            raise Failed("unsupportedRequest", f"The call {call} is not emulated by the sandbox.")
        return handler(state, account, params)
    except Failed as failure:
        return failed(failure.key, failure.message)


@router.get(CLIENT_PATH, response_class=HTMLResponse)
def client_page(sessionToken: str = "", state: SandboxState = Depends(get_state)) -> HTMLResponse:  # noqa: N803
    """Where join sends a person: a page saying which meeting they are in, and in which role."""
    found = state.video_session(sessionToken)
    if found is None:
        return HTMLResponse(person_page("BigBlueButton", "<p>This session is not (or no longer) valid.</p>"), 404)
    meeting, attendee = found
    role = "moderator" if attendee.moderator else "viewer"
    body = (
        f"<p>You are in the meeting <strong>{html.escape(meeting.name)}</strong>"
        f" as {html.escape(attendee.name)} ({role}).</p>"
    )
    return HTMLResponse(person_page("BigBlueButton", body))
