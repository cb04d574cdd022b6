"""The video platforms through their real modules against the sandbox's BigBlueButton and Jitsi emulators."""

from __future__ import annotations

import dataclasses
import hashlib
import html
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import jwt
import pytest
import requests
from defusedxml import ElementTree

from channels.base import PermanentError, TransientError
from channels.bigbluebutton import BigBlueButton
from channels.jitsi import JitsiMeet
from channels.sandbox.client import SandboxClient
from channels.sandbox.server import SandboxServer
from channels.video import (
    Participant,
    Room,
    UnknownVideoPlatform,
    VideoPlatform,
    build_video_platform,
    video_platform_class,
    video_platform_kinds,
)

BBB_SECRET = "8cd8ef52e8e101574e400365b55e11a6"
APP_ID = "rathaus_musterstadt"
APP_SECRET = "jitsi-app-secret-for-the-sandbox"
GUESSED_SECRET = "a-guess-at-the-secret-of-32-bytes"
TITLE = "Sprechstunde Bürgerbüro"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[SandboxClient]:
    with SandboxClient(sandbox.url) as sandbox_client:
        sandbox_client.register_account("bigbluebutton", {}, {"secret": BBB_SECRET})
        sandbox_client.register_account("jitsi", {"app_id": APP_ID}, {"app_secret": APP_SECRET})
        yield sandbox_client
        sandbox_client.reset()


def bigbluebutton(sandbox: SandboxServer, **settings: str) -> VideoPlatform:
    config = {"api_url": f"{sandbox.url}/bigbluebutton/", **settings}
    secret = config.pop("secret", BBB_SECRET)
    return build_video_platform("bigbluebutton", config, {"secret": secret})


def jitsi(sandbox: SandboxServer, **settings: str) -> VideoPlatform:
    config = {"base_url": f"{sandbox.url}/jitsi", "app_id": APP_ID, **settings}
    secret = config.pop("app_secret", APP_SECRET)
    return build_video_platform("jitsi", config, {"app_secret": secret})


def create(platform: VideoPlatform, *, hours_from_now: float = 1.0, max_participants: int = 2) -> Room:
    starts_at = datetime.now(UTC) + timedelta(hours=hours_from_now)
    return platform.create_room(
        title=TITLE, starts_at=starts_at, ends_at=starts_at + timedelta(minutes=30), max_participants=max_participants
    )


def signed(sandbox: SandboxServer, call: str, params: dict[str, str], algorithm: str = "sha1") -> str:
    """A BigBlueButton API URL signed as the API documentation describes it, independently of the module."""
    query = urlencode(params)
    checksum = hashlib.new(algorithm, (call + query + BBB_SECRET).encode()).hexdigest()
    return f"{sandbox.url}/bigbluebutton/api/{call}?{query}&checksum={checksum}"


def xml(response: requests.Response) -> dict[str, str]:
    root = ElementTree.fromstring(response.content)
    return {child.tag: (child.text or "") for child in root}


def host_and_citizen_links(platform: VideoPlatform, room: Room) -> tuple[str, str]:
    host = platform.join_url(room, name="Petra Berger", moderator=True, user_id="staff-7")
    citizen = platform.join_url(room, name="Erika Mustermann", moderator=False, user_id="citizen-42")
    assert host != citizen
    return host, citizen


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()} | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


# The registry


def test_the_registry_knows_both_platforms_and_refuses_others(sandbox: SandboxServer) -> None:
    assert video_platform_kinds() == ["bigbluebutton", "jitsi"]
    assert video_platform_class("bigbluebutton") is BigBlueButton
    assert video_platform_class("jitsi") is JitsiMeet
    assert isinstance(bigbluebutton(sandbox), VideoPlatform)
    with pytest.raises(UnknownVideoPlatform, match="zoom"):
        video_platform_class("zoom")


def test_settings_have_german_titles_and_keep_secrets_apart() -> None:
    fields = {field.key: field for field in BigBlueButton.configuration.fields()}
    assert fields["secret"].secret and not fields["api_url"].secret
    assert fields["api_url"].address
    assert fields["checksum_algorithm"].title == "Prüfsummenverfahren"
    assert [field.key for field in JitsiMeet.configuration.fields() if field.secret] == ["app_secret"]
    assert "rate_per_second" not in fields


def test_missing_or_malformed_settings_are_a_permanent_error(sandbox: SandboxServer) -> None:
    with pytest.raises(PermanentError, match="Gemeinsames Geheimnis fehlt"):
        build_video_platform("bigbluebutton", {"api_url": sandbox.url}, {})
    with pytest.raises(PermanentError, match="Prüfsummenverfahren hat nicht die erwartete Form"):
        bigbluebutton(sandbox, checksum_algorithm="md5")
    with pytest.raises(PermanentError, match="App-Geheimnis fehlt"):
        build_video_platform("jitsi", {"base_url": "https://meet.example.org", "app_id": APP_ID}, {})


def test_a_repr_never_shows_a_secret(sandbox: SandboxServer) -> None:
    assert BBB_SECRET not in repr(bigbluebutton(sandbox))
    assert APP_SECRET not in repr(jitsi(sandbox))


# BigBlueButton


def test_a_room_is_created_once_on_the_server(sandbox: SandboxServer, client: SandboxClient) -> None:
    platform = bigbluebutton(sandbox)
    room = create(platform, max_participants=3)

    [meeting] = client.meetings("bigbluebutton")
    assert (meeting["meeting_id"], meeting["name"]) == (room.id, TITLE)
    assert (meeting["max_participants"], meeting["guest_policy"]) == (3, "ALWAYS_ACCEPT")
    assert 90 <= meeting["duration"] <= 121  # until the end (1 h 30 min) plus the time it may run over
    assert not meeting["running"]

    # Handing out a link creates it again, as BigBlueButton may have forgotten it: the same meeting.
    platform.join_url(room, name="Erika Mustermann", moderator=False, user_id="citizen-42")
    [again] = client.meetings("bigbluebutton")
    assert again["create_time"] == meeting["create_time"]


def test_a_repeat_create_on_the_wire_is_a_duplicate_warning(sandbox: SandboxServer, client: SandboxClient) -> None:
    params = {"name": TITLE, "meetingID": "sprechstunde-7"}
    first = xml(requests.get(signed(sandbox, "create", params), timeout=5))
    second = xml(requests.get(signed(sandbox, "create", params, "sha512"), timeout=5))
    other_name = xml(requests.get(signed(sandbox, "create", {**params, "name": "Andere"}), timeout=5))

    assert (first["returncode"], first.get("messageKey")) == ("SUCCESS", None)
    assert (second["returncode"], second["messageKey"]) == ("SUCCESS", "duplicateWarning")
    assert second["createTime"] == first["createTime"]
    assert (other_name["returncode"], other_name["messageKey"]) == ("FAILED", "idNotUnique")
    assert len(client.meetings("bigbluebutton")) == 1


@pytest.mark.parametrize(
    ("call", "params", "key"),
    [
        ("create", {"name": TITLE}, "missingParamMeetingID"),
        ("create", {"meetingID": "raum-1"}, "missingParamName"),
        ("join", {"meetingID": "raum-1", "role": "VIEWER"}, "missingParamFullName"),
        ("join", {"meetingID": "unbekannt", "fullName": "Erika", "role": "VIEWER"}, "notFound"),
        ("getMeetingInfo", {"meetingID": "unbekannt"}, "notFound"),
        ("end", {"meetingID": "unbekannt"}, "notFound"),
    ],
)
def test_the_emulator_fails_like_bigbluebutton(
    sandbox: SandboxServer, client: SandboxClient, call: str, params: dict[str, str], key: str
) -> None:
    answer = xml(requests.get(signed(sandbox, call, params), timeout=5))
    assert (answer["returncode"], answer["messageKey"]) == ("FAILED", key)
    assert answer["message"]


def test_host_and_citizen_links_differ_and_give_their_roles(sandbox: SandboxServer, client: SandboxClient) -> None:
    platform = bigbluebutton(sandbox)
    room = create(platform)
    host, citizen = host_and_citizen_links(platform, room)
    assert not platform.is_running(room)

    opened = {}
    for person, url in (("host", host), ("citizen", citizen)):
        redirect = requests.get(url, allow_redirects=False, timeout=5)
        assert redirect.status_code == 302
        assert urlsplit(redirect.headers["location"]).path == "/html5client/join"
        opened[person] = requests.get(redirect.headers["location"], timeout=5)

    assert "Petra Berger (moderator)" in opened["host"].text
    assert "Erika Mustermann (viewer)" in opened["citizen"].text
    attendees = client.meeting("bigbluebutton", room.id)["attendees"]
    assert {(a["user_id"], a["name"], a["moderator"]) for a in attendees} == {
        ("staff-7", "Petra Berger", True),
        ("citizen-42", "Erika Mustermann", False),
    }
    assert platform.is_running(room)
    assert sorted(platform.participants(room), key=lambda person: person.user_id) == [
        Participant("citizen-42", "Erika Mustermann", moderator=False),
        Participant("staff-7", "Petra Berger", moderator=True),
    ]


def test_a_citizen_cannot_make_their_link_a_host_link(sandbox: SandboxServer, client: SandboxClient) -> None:
    platform = bigbluebutton(sandbox)
    room = create(platform)
    citizen = platform.join_url(room, name="Erika Mustermann", moderator=False, user_id="citizen-42")

    answer = xml(requests.get(with_query(citizen, role="MODERATOR"), timeout=5))

    assert (answer["returncode"], answer["messageKey"]) == ("FAILED", "checksumError")
    assert client.meeting("bigbluebutton", room.id)["attendees"] == []


def test_join_without_redirect_answers_the_url_in_xml(sandbox: SandboxServer, client: SandboxClient) -> None:
    room = create(bigbluebutton(sandbox))
    params = {"fullName": "Erika", "meetingID": room.id, "role": "VIEWER", "redirect": "false"}

    answer = xml(requests.get(signed(sandbox, "join", params), timeout=5))

    assert (answer["returncode"], answer["messageKey"]) == ("SUCCESS", "successfullyJoined")
    assert "Erika (viewer)" in requests.get(answer["url"], timeout=5).text


def test_a_wrong_secret_is_refused_as_a_checksum_error(sandbox: SandboxServer, client: SandboxClient) -> None:
    with pytest.raises(PermanentError, match="Prüfsumme") as caught:
        create(bigbluebutton(sandbox, secret=GUESSED_SECRET))
    assert caught.value.code == "checksumError"
    assert client.meetings("bigbluebutton") == []


def test_each_checksum_algorithm_is_understood(sandbox: SandboxServer, client: SandboxClient) -> None:
    for algorithm in ("sha1", "sha256", "sha384", "sha512"):
        room = create(bigbluebutton(sandbox, checksum_algorithm=algorithm))
        assert client.meeting("bigbluebutton", room.id)["name"] == TITLE


def test_an_unreachable_server_is_transient(sandbox: SandboxServer) -> None:
    platform = build_video_platform(
        "bigbluebutton", {"api_url": f"http://127.0.0.1:{closed_port()}/bigbluebutton/"}, {"secret": BBB_SECRET}
    )
    with pytest.raises(TransientError, match="nicht erreichbar"):
        create(platform)


def test_a_server_error_is_transient(sandbox: SandboxServer, client: SandboxClient) -> None:
    client.set_faults("bigbluebutton", rate_5xx=1.0)
    with pytest.raises(TransientError) as caught:
        create(bigbluebutton(sandbox))
    assert caught.value.code == "500"


def test_an_address_that_is_no_bigbluebutton_is_permanent(sandbox: SandboxServer, client: SandboxClient) -> None:
    with pytest.raises(PermanentError, match="stimmt die Adresse"):
        create(build_video_platform("bigbluebutton", {"api_url": f"{sandbox.url}/nirgends"}, {"secret": BBB_SECRET}))


def test_end_ends_the_meeting_and_old_links_stop_working(sandbox: SandboxServer, client: SandboxClient) -> None:
    platform = bigbluebutton(sandbox)
    room = create(platform)
    citizen = platform.join_url(room, name="Erika Mustermann", moderator=False, user_id="citizen-42")
    requests.get(citizen, timeout=5)
    assert platform.is_running(room)

    platform.end(room)

    meeting = client.meeting("bigbluebutton", room.id)
    assert (meeting["ended"], meeting["running"], meeting["attendees"]) == (True, False, [])
    assert not platform.is_running(room)
    assert platform.participants(room) == []
    again = xml(requests.get(citizen, timeout=5))
    assert (again["returncode"], again["messageKey"]) == ("FAILED", "meetingForciblyEnded")
    platform.end(room)  # ending twice, or a room the server forgot, is no error
    platform.end(dataclasses.replace(room, id="nie-angelegt"))


# Jitsi Meet


def test_jitsi_links_let_host_and_citizen_in_with_their_roles(sandbox: SandboxServer, client: SandboxClient) -> None:
    platform = jitsi(sandbox)
    room = create(platform)
    host, citizen = host_and_citizen_links(platform, room)
    assert client.meetings("jitsi") == []  # Jitsi has no create call: the room exists once someone enters

    for url in (host, citizen):
        page = requests.get(url, timeout=5)
        assert page.status_code == 200
        assert f"in the room <strong>{room.id}</strong>" in page.text

    attendees = client.meeting("jitsi", room.id)["attendees"]
    assert {(a["user_id"], a["name"], a["moderator"]) for a in attendees} == {
        ("staff-7", "Petra Berger", True),
        ("citizen-42", "Erika Mustermann", False),
    }
    # Jitsi cannot be asked, and says so.
    assert not JitsiMeet.knows_presence and BigBlueButton.knows_presence
    assert (platform.is_running(room), platform.participants(room)) == (False, [])
    platform.end(room)


def test_the_jitsi_token_carries_what_prosody_checks(sandbox: SandboxServer) -> None:
    room = create(jitsi(sandbox))
    url = jitsi(sandbox).join_url(room, name="Erika Mustermann", moderator=False, user_id="citizen-42")
    token = parse_qs(urlsplit(url).query)["jwt"][0]

    claims = jwt.decode(token, APP_SECRET, algorithms=["HS256"], audience="jitsi", issuer=APP_ID)

    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert (claims["sub"], claims["room"]) == ("127.0.0.1", room.id)
    assert claims["nbf"] <= datetime.now(UTC).timestamp() < claims["exp"]
    assert claims["exp"] >= room.ends_at.timestamp()
    user = claims["context"]["user"]
    assert user == {"id": "citizen-42", "name": "Erika Mustermann", "moderator": "false", "affiliation": "member"}
    assert all(isinstance(value, str) for value in user.values())
    assert claims["moderator"] is False


def test_a_tenant_is_in_the_path_and_the_token(sandbox: SandboxServer, client: SandboxClient) -> None:
    platform = jitsi(sandbox, tenant="Musterstadt")
    room = create(platform)
    url = platform.join_url(room, name="Erika", moderator=False, user_id="citizen-42")

    assert urlsplit(url).path == f"/jitsi/musterstadt/{room.id}"
    assert requests.get(url, timeout=5).status_code == 200
    assert client.meeting("jitsi", f"musterstadt/{room.id}")["attendees"][0]["user_id"] == "citizen-42"


def _refusal(url: str) -> str:
    page = requests.get(url, timeout=5)
    assert page.status_code == 403
    return html.unescape(page.text)


def test_jitsi_refuses_tampered_expired_and_foreign_tokens(sandbox: SandboxServer, client: SandboxClient) -> None:
    platform = jitsi(sandbox)
    room, other = create(platform), create(platform)
    url = platform.join_url(room, name="Erika", moderator=False, user_id="citizen-42")
    token = parse_qs(urlsplit(url).query)["jwt"][0]
    header, payload, signature = token.split(".")
    # A citizen who makes themselves moderator keeps the old signature.
    claims = jwt.decode(token, options={"verify_signature": False}) | {"moderator": True}
    promoted = jwt.encode(claims, GUESSED_SECRET, algorithm="HS256").split(".")[1]
    forged = ("B" if signature[0] != "B" else "C") + signature[1:]

    assert "InvalidSignatureError" in _refusal(with_query(url, jwt=f"{header}.{promoted}.{signature}"))
    assert "InvalidSignatureError" in _refusal(with_query(url, jwt=f"{header}.{payload}.{forged}"))
    assert f"not {other.id!r}" in _refusal(url.replace(room.id, other.id, 1))
    assert "nobody in without a token" in _refusal(url.split("?")[0])
    past = create(platform, hours_from_now=-5)
    expired = platform.join_url(past, name="Erika", moderator=False, user_id="citizen-42")
    assert "ExpiredSignatureError" in _refusal(expired)
    wrong_secret = jitsi(sandbox, app_secret=GUESSED_SECRET).join_url(room, name="Erika", moderator=True, user_id="x")
    assert "InvalidSignatureError" in _refusal(wrong_secret)
    wrong_audience = jitsi(sandbox, audience="andere").join_url(room, name="Erika", moderator=False, user_id="x")
    assert "InvalidAudienceError" in _refusal(wrong_audience)
    wrong_domain = jitsi(sandbox, domain="meet.example.org").join_url(room, name="Erika", moderator=False, user_id="x")
    assert "sub 'meet.example.org'" in _refusal(wrong_domain)
    unknown_app = jitsi(sandbox, app_id="fremde_app").join_url(room, name="Erika", moderator=False, user_id="x")
    assert "no app 'fremde_app'" in _refusal(unknown_app)
    assert client.meetings("jitsi") == []


# Room names


@pytest.mark.parametrize(("kind", "alphabet"), [("bigbluebutton", r"[A-Za-z0-9_-]"), ("jitsi", r"[a-z2-7]")])
def test_room_names_are_long_random_and_in_the_platforms_alphabet(
    sandbox: SandboxServer, client: SandboxClient, kind: str, alphabet: str
) -> None:
    platform = bigbluebutton(sandbox) if kind == "bigbluebutton" else jitsi(sandbox)
    ids = [create(platform).id for _ in range(20)]

    assert len(set(ids)) == len(ids)
    assert all(len(room_id) >= 32 and re.fullmatch(f"{alphabet}+", room_id) for room_id in ids)


def test_a_room_needs_an_end_after_its_start(sandbox: SandboxServer) -> None:
    starts_at = datetime.now(UTC)
    with pytest.raises(ValueError, match="nach starts_at"):
        jitsi(sandbox).create_room(title=TITLE, starts_at=starts_at, ends_at=starts_at, max_participants=2)
