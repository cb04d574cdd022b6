"""BigBlueButton through its HTTP API: meetings created, joined, asked after and ended with checksummed calls."""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import urlencode
from xml.etree.ElementTree import Element

import requests
from defusedxml import ElementTree
from pydantic import SecretStr

from channels.base import N_, PermanentError, TransientError, setting
from channels.video import (
    ROOM_ID_BYTES,
    Participant,
    Room,
    VideoPlatform,
    VideoSettings,
    load_settings,
    new_room,
    register_video_platform,
)

TIMEOUT_S = 10.0
# BigBlueButton ends a meeting `duration` minutes after it was created; this much is added to
# the time left until the consultation's end, so one that runs over is not cut off mid-sentence.
OVERRUN = timedelta(minutes=30)
# A meeting's name must have 2 to 64 characters (BigBlueButton 2.4 and later).
MAX_NAME_CHARS = 64
# The citizen waits in the hub's waiting room and is let in by being given the link; a second
# waiting room in BigBlueButton (ASK_MODERATOR) would make them wait twice.
GUEST_POLICY = "ALWAYS_ACCEPT"

# messageKeys that say the meeting is not there (any more): the first is today's, the second
# what older servers answered to a join.
NO_SUCH_MEETING = frozenset({"notFound", "invalidMeetingIdentifier"})
# A repeat create of a running meeting answers duplicateWarning. Servers from before the fix of
# bigbluebutton#17886 (2023) answer a repeat create without the deprecated passwords with
# idNotUnique instead; as room ids are ours and unguessable, that too means "it is there".
ALREADY_CREATED = frozenset({"idNotUnique"})

ChecksumAlgorithm = Literal["sha1", "sha256", "sha384", "sha512"]


class BigBlueButtonSettings(VideoSettings):
    """A BigBlueButton server; `bbb-conf --secret` on it prints both the URL and the secret."""

    api_url: str = setting(
        N_("Adresse des Servers"),
        hint=N_("Die URL, die `bbb-conf --secret` nennt, z. B. https://bbb.musterstadt.de/bigbluebutton/"),
        address=True,
    )
    secret: SecretStr = setting(N_("Gemeinsames Geheimnis"), hint=N_("Das Secret, das `bbb-conf --secret` nennt"))
    checksum_algorithm: ChecksumAlgorithm = setting(
        N_("Prüfsummenverfahren"),
        hint=N_("sha256, sofern der Server es erlaubt (supportedChecksumAlgorithms); Server vor 2.5 kennen nur sha1."),
        default="sha256",
    )


@register_video_platform
class BigBlueButton(VideoPlatform):
    """Meetings on one BigBlueButton server.

    BigBlueButton forgets a meeting nobody joined within a few minutes
    (meetingExpireIfNoUserJoinedInMinutes) and one everybody left, so `join_url` creates the
    meeting again before signing a link: create is idempotent, and the server's own advice is
    to call it before every join.
    """

    kind: ClassVar[str] = "bigbluebutton"
    label: ClassVar[str] = "BigBlueButton"
    configuration: ClassVar[type[VideoSettings]] = BigBlueButtonSettings
    knows_presence: ClassVar[bool] = True

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        settings = load_settings(BigBlueButtonSettings, self.label, config, secrets)
        self._api_url = settings.api_url.rstrip("/") + "/api"
        self._secret = settings.secret.get_secret_value()
        self._algorithm: ChecksumAlgorithm = settings.checksum_algorithm

    def __repr__(self) -> str:
        # Spelled out so that the shared secret can never end up in a log through repr().
        return f"BigBlueButton(api_url={self._api_url!r})"

    def create_room(self, *, title: str, starts_at: datetime, ends_at: datetime, max_participants: int) -> Room:
        """Names the room (token_urlsafe: letters, digits, - and _, which meetingID allows) and creates it."""
        room = new_room(
            self.kind,
            secrets.token_urlsafe(ROOM_ID_BYTES),
            title=title,
            starts_at=starts_at,
            ends_at=ends_at,
            max_participants=max_participants,
        )
        self._create(room)
        return room

    def join_url(self, room: Room, *, name: str, moderator: bool, user_id: str) -> str:
        """The signed join call itself: the person's browser opens it and is sent on into the meeting."""
        self._create(room)
        role = "MODERATOR" if moderator else "VIEWER"
        return self._url("join", {"fullName": name, "meetingID": room.id, "role": role, "userID": user_id})

    def is_running(self, room: Room) -> bool:
        answer = self._call("isMeetingRunning", {"meetingID": room.id})
        return _text(answer, "running") == "true"

    def participants(self, room: Room) -> list[Participant]:
        answer = self._call("getMeetingInfo", {"meetingID": room.id}, tolerate=NO_SUCH_MEETING)
        return [
            Participant(
                user_id=_text(attendee, "userID"),
                name=_text(attendee, "fullName"),
                moderator=_text(attendee, "role") == "MODERATOR",
            )
            for attendee in answer.iterfind("attendees/attendee")
        ]

    def end(self, room: Room) -> None:
        self._call("end", {"meetingID": room.id}, tolerate=NO_SUCH_MEETING)

    def _create(self, room: Room) -> None:
        name = room.title[:MAX_NAME_CHARS]
        if len(name) < 2:
            raise PermanentError("BigBlueButton: der Titel eines Raums braucht mindestens zwei Zeichen")
        minutes_left = (room.ends_at + OVERRUN - datetime.now(UTC)).total_seconds() / 60
        params = {
            "name": name,
            "meetingID": room.id,
            "maxParticipants": str(room.max_participants),
            # 0 would mean "no limit"; a meeting set up after its end still gets a minute.
            "duration": str(max(1, math.ceil(minutes_left))),
            "guestPolicy": GUEST_POLICY,
        }
        self._call("create", params, tolerate=ALREADY_CREATED)

    def _url(self, call: str, params: Mapping[str, str]) -> str:
        """The call's URL with its checksum: hex(hash(call name + query string + secret))."""
        query = urlencode(params)
        checksum = hashlib.new(self._algorithm, (call + query + self._secret).encode("utf-8")).hexdigest()
        return f"{self._api_url}/{call}?{query}{'&' if query else ''}checksum={checksum}"

    def _call(self, call: str, params: Mapping[str, str], *, tolerate: frozenset[str] = frozenset()) -> Element:
        """The call's <response>; raises on a FAILED answer unless its messageKey is one to `tolerate`."""
        try:
            response = requests.get(self._url(call, params), timeout=TIMEOUT_S)
        except requests.RequestException as exc:
            raise TransientError(f"BigBlueButton nicht erreichbar: {type(exc).__name__}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"BigBlueButton antwortet {response.status_code}", code=str(response.status_code))
        if response.status_code >= 400:
            raise PermanentError(
                f"BigBlueButton antwortet {response.status_code}; stimmt die Adresse?", code=str(response.status_code)
            )
        try:
            answer: Element = ElementTree.fromstring(response.content)
        except ElementTree.ParseError as exc:
            raise PermanentError("Die Antwort ist kein XML von BigBlueButton; stimmt die Adresse?") from exc
        if _text(answer, "returncode") == "SUCCESS":
            return answer
        key = _text(answer, "messageKey")
        if key in tolerate:
            return answer
        if key == "checksumError":
            raise PermanentError(
                "BigBlueButton lehnt die Prüfsumme ab: Geheimnis oder Prüfsummenverfahren stimmt nicht", code=key
            )
        raise PermanentError(f"BigBlueButton lehnt {call} ab: {_text(answer, 'message') or key}", code=key or None)


def _text(element: Element, path: str) -> str:
    return (element.findtext(path) or "").strip()
