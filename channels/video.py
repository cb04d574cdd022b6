"""The video platform Protocol, the rooms and participants it speaks of, and the registry of platforms by kind.

A consultation held by video gets a room on the platform the town configured. Everything the hub
needs to know of a platform (how a room is named, how a link lets a person in with the right
role, what it can tell about a room) is asked of the platform's module here; as with channels,
nothing outside channels/ names a platform.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from channels.base import PermanentError, ProviderSettings

# Random bytes in a room's name: 192 bits, so that nobody finds a room by trying names, and
# knowing one room's name tells nothing of another's. Each platform spells them in the
# alphabet it allows.
ROOM_ID_BYTES = 24

SettingsModel = TypeVar("SettingsModel", bound=ProviderSettings)


@dataclass(frozen=True)
class Room:
    """A consultation's room on a platform: what the hub keeps to hand out links later.

    `id` is the platform's name for the room (ROOM_ID_BYTES random bytes). `title` is what the
    platform shows as the meeting's name. `starts_at` and `ends_at` (aware datetimes) are the
    consultation's time, which bounds how long a link works where the platform lets links
    expire. `max_participants` is the most people in the room at once, hosts included, where
    the platform enforces such a limit.
    """

    kind: str
    id: str
    title: str
    starts_at: datetime
    ends_at: datetime
    max_participants: int


@dataclass(frozen=True)
class Participant:
    """A person in a room, as the platform reports them; `user_id` is the one given with their link."""

    user_id: str
    name: str
    moderator: bool


class VideoSettings(ProviderSettings):
    """A video platform's configuration; the platforms share no setting yet."""


def new_room(
    kind: str, room_id: str, *, title: str, starts_at: datetime, ends_at: datetime, max_participants: int
) -> Room:
    """A Room, once its times and size make sense: a caller's mistake here is a bug, not a platform's refusal."""
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValueError("starts_at und ends_at brauchen eine Zeitzone")
    if ends_at <= starts_at:
        raise ValueError("ends_at muss nach starts_at liegen")
    if max_participants < 1:
        raise ValueError("max_participants muss mindestens 1 sein")
    if not title.strip():
        raise ValueError("Der Raum braucht einen Titel")
    return Room(kind, room_id, title.strip(), starts_at, ends_at, max_participants)


def load_settings(
    model: type[SettingsModel], label: str, config: Mapping[str, Any], secrets: Mapping[str, Any]
) -> SettingsModel:
    """A platform's settings as its model types them; PermanentError naming what is missing or malformed."""
    problems = model.problems(config, secrets)
    if problems:
        raise PermanentError(f"{label}: " + "; ".join(map(str, problems)))
    return model.model_validate({**config, **secrets})


@runtime_checkable
class VideoPlatform(Protocol):
    """What the hub needs of a video platform. Built from the town's settings for it: `config`
    (the server's address and other public settings) and `secrets` (shared secrets), see
    `build_video_platform`.

    What the class declares, for callers that have only a kind:
    - `label`: the platform's name for staff. `configuration`: its settings.
    - `knows_presence`: whether `is_running` and `participants` say what really happens in a
      room; False where the platform cannot be asked (they then always answer "nobody").

    Every method that calls the platform raises TransientError when it cannot be reached or
    answers with a server error (worth retrying), PermanentError when it refuses (wrong secret,
    bad settings).
    """

    kind: ClassVar[str]
    label: ClassVar[str]
    configuration: ClassVar[type[VideoSettings]]
    knows_presence: ClassVar[bool]

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None: ...

    def create_room(self, *, title: str, starts_at: datetime, ends_at: datetime, max_participants: int) -> Room:
        """A new room with a name nobody can guess, set up on the platform where it has a create call."""
        ...

    def join_url(self, room: Room, *, name: str, moderator: bool, user_id: str) -> str:
        """The link that lets `name` into the room, as host (`moderator`) or as participant.

        The host's link and a citizen's differ, and a citizen's never grants the host's rights.
        Ask for a link when it is handed out, not at booking: the platform may need the room set
        up again by then, which this does.
        """
        ...

    def is_running(self, room: Room) -> bool:
        """Whether someone is in the room now (always False where `knows_presence` is False)."""
        ...

    def participants(self, room: Room) -> list[Participant]:
        """Who is in the room now (always empty where `knows_presence` is False)."""
        ...

    def end(self, room: Room) -> None:
        """End the meeting for everyone in it; a room that is already gone is no error."""
        ...


_PLATFORMS: dict[str, type[VideoPlatform]] = {}


class DuplicateVideoPlatform(RuntimeError):
    """Two platform modules claim one kind: a configuration mistake that must stop the process."""


class UnknownVideoPlatform(LookupError):
    """No platform is registered for the kind asked for."""


def register_video_platform(platform: type[VideoPlatform]) -> type[VideoPlatform]:
    """Class decorator: make `platform` the one implementation of its `kind`."""
    existing = _PLATFORMS.get(platform.kind)
    if existing is not None and existing is not platform:
        raise DuplicateVideoPlatform(
            f"video platform {platform.kind!r} is claimed by {existing.__qualname__} and {platform.__qualname__}"
        )
    _PLATFORMS[platform.kind] = platform
    return platform


def _load_builtin_platforms() -> None:
    # Importing the modules runs their @register_video_platform decorators.
    from channels import bigbluebutton, jitsi  # noqa: F401


def video_platform_class(kind: str) -> type[VideoPlatform]:
    _load_builtin_platforms()
    try:
        return _PLATFORMS[kind]
    except KeyError:
        known = ", ".join(sorted(_PLATFORMS))
        raise UnknownVideoPlatform(f"unknown video platform {kind!r}; known: {known}") from None


def video_platform_kinds() -> list[str]:
    _load_builtin_platforms()
    return sorted(_PLATFORMS)


def build_video_platform(kind: str, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> VideoPlatform:
    return video_platform_class(kind)(config, secrets)
