"""Jitsi Meet on the town's own server: rooms secured by token authentication, links with a JWT signed by PyJWT."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import jwt
from pydantic import SecretStr

from channels.base import N_, setting
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

# Prosody's token plugin checks HS256 tokens with the app secret (its default signature_algorithm).
ALGORITHM = "HS256"
# The audience Jitsi's examples and JaaS use; a server that accepts another (asap_accepted_audiences) names it.
DEFAULT_AUDIENCE = "jitsi"
# A link works from a little before it was made (the servers' clocks may differ) until this long
# after the consultation's end, so a conversation that runs over can be rejoined after a dropout.
CLOCK_SKEW = timedelta(minutes=1)
LATE_JOIN = timedelta(minutes=30)


class JitsiSettings(VideoSettings):
    """A Jitsi Meet server with token authentication (jitsi-meet-tokens, or Prosody's `authentication = "token"`)."""

    base_url: str = setting(N_("Adresse des Jitsi-Servers"), hint=N_("z. B. https://meet.musterstadt.de"), address=True)
    app_id: str = setting(N_("App-ID"), hint=N_("app_id aus der Prosody-Konfiguration des Servers"))
    app_secret: SecretStr = setting(N_("App-Geheimnis"), hint=N_("app_secret aus der Prosody-Konfiguration"))
    audience: str = setting(
        N_("Audience (aud)"),
        hint=N_("Leer lassen für „jitsi“; sonst ein Wert aus asap_accepted_audiences."),
        default=DEFAULT_AUDIENCE,
    )
    tenant: str | None = setting(
        N_("Mandant"),
        hint=N_("Nur wenn die Räume unter https://server/MANDANT/RAUM liegen."),
        default=None,
    )
    domain: str | None = setting(
        N_("XMPP-Domain"),
        hint=N_("Leer lassen, wenn sie der Rechnername der Adresse ist."),
        default=None,
        on_form=False,
    )


@register_video_platform
class JitsiMeet(VideoPlatform):
    """Jitsi Meet rooms: a room exists while someone is in it, and only a valid token lets a person in.

    Jitsi has no API for rooms, so nothing here calls the server: `create_room` only names the
    room, and the token in each link (every participant needs one) is what secures it. The
    server does not report who is in a room either, so `is_running` answers False and
    `participants` nobody (`knows_presence` is False).
    """

    kind: ClassVar[str] = "jitsi"
    label: ClassVar[str] = "Jitsi Meet"
    configuration: ClassVar[type[VideoSettings]] = JitsiSettings
    knows_presence: ClassVar[bool] = False

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        settings = load_settings(JitsiSettings, self.label, config, secrets)
        self._base_url = settings.base_url.rstrip("/")
        self._app_id = settings.app_id
        self._app_secret = settings.app_secret.get_secret_value()
        self._audience = settings.audience or DEFAULT_AUDIENCE
        # The token's `sub` is the tenant for /TENANT/ROOM, else the server's domain, both lowercase.
        self._tenant = settings.tenant.strip("/").lower() if settings.tenant else None
        self._subject = self._tenant or (settings.domain or urlsplit(self._base_url).hostname or "").lower()

    def __repr__(self) -> str:
        # Spelled out so that the app secret can never end up in a log through repr().
        return f"JitsiMeet(base_url={self._base_url!r}, app_id={self._app_id!r})"

    def create_room(self, *, title: str, starts_at: datetime, ends_at: datetime, max_participants: int) -> Room:
        """Names the room: lowercase letters and digits, as Jitsi compares room names in lowercase.

        `max_participants` is kept on the Room but not enforced: Jitsi limits occupants per
        server (muc_max_occupants), not per room.
        """
        room_id = base64.b32encode(secrets.token_bytes(ROOM_ID_BYTES)).decode("ascii").rstrip("=").lower()
        return new_room(
            self.kind, room_id, title=title, starts_at=starts_at, ends_at=ends_at, max_participants=max_participants
        )

    def join_url(self, room: Room, *, name: str, moderator: bool, user_id: str) -> str:
        path = f"{self._tenant}/{room.id}" if self._tenant else room.id
        token = self._token(room, name=name, moderator=moderator, user_id=user_id)
        return f"{self._base_url}/{quote(path)}?jwt={token}"

    def _token(self, room: Room, *, name: str, moderator: bool, user_id: str) -> str:
        """The JWT for one person and one room, valid until LATE_JOIN after the room's end.

        Self-hosted Jitsi grants moderator rights from a token only through a community plugin,
        and each reads its own claim: token_affiliation `context.user.affiliation` (or
        `.moderator`), the original token_moderation a top-level `moderator`; JaaS reads
        `context.user.moderator`. The token carries all of them, so whichever the town runs sees
        the same role. Jitsi wants every field of `context.user` as a string.
        """
        now = datetime.now(UTC)
        claims = {
            "iss": self._app_id,
            "aud": self._audience,
            "sub": self._subject,
            "room": room.id,
            "nbf": int((now - CLOCK_SKEW).timestamp()),
            "exp": int((room.ends_at + LATE_JOIN).timestamp()),
            "moderator": moderator,
            "context": {
                "user": {
                    "id": user_id,
                    "name": name,
                    "moderator": "true" if moderator else "false",
                    "affiliation": "owner" if moderator else "member",
                }
            },
        }
        return jwt.encode(claims, self._app_secret, algorithm=ALGORITHM)

    def is_running(self, room: Room) -> bool:
        """Always False: Jitsi cannot be asked whether anyone is in a room (see the class)."""
        return False

    def participants(self, room: Room) -> list[Participant]:
        """Always empty: Jitsi cannot be asked who is in a room (see the class)."""
        return []

    def end(self, room: Room) -> None:
        """Nothing to do: Jitsi has no call that closes a room.

        A room disappears when the last person leaves, and once the links' tokens have expired
        (LATE_JOIN after the end) nobody can enter it again; the host can end the meeting for
        everyone from inside it.
        """
        return None
