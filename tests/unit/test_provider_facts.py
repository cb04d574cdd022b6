"""Provider facts live in channels/: no other module names a channel kind or video platform, or imports one.

Callers ask the adapter class (channels.registry) what it reaches and can carry, and the video
platform's class (channels.video) what it can tell; a kind's name in hub code means a fact
leaked out of its module. The check reads string literals with the ast module and compares them
with the registries' kinds, so it knows exactly what it finds.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr
from sqlmodel import Session

from channels import registry
from channels.base import (
    ChannelAdapter,
    ChannelSettings,
    Identity,
    InboundEvent,
    OutboundMessage,
    Receipt,
    Webhook,
    WebhookRequest,
    setting,
)
from channels.registry import adapter_classes, known_kinds
from channels.video import video_platform_class, video_platform_kinds
from hub.errors import InvalidInput
from hub.settings import Settings
from hub.tenancy import administration as admin
from hub.tenancy import service as tenancy

ROOT = Path(__file__).resolve().parents[2]

# Where provider kinds are named on purpose.
EXEMPT = (
    "channels/",  # the adapters and their sandbox emulators
    "tests/",  # tests drive each provider by name
    "bench/",  # benchmarks, like tests, drive each provider's sandbox by name
    "hub/demo.py",  # the demo creates one account per kind
    "hub/migrations/",  # history: migrations must not change with the code
)
# "email" is also the kind of a contact's address and a field name ("email": user.email), which
# the hub names in its own right (staff accounts, the importer, the sign-up by email). It counts
# as a provider fact only where it stands for a channel kind; every other kind counts anywhere.
SHARED_WORDS = frozenset({"email"})
# Calls whose `kind=` argument is a channel kind, and whose first argument may be one.
CHANNEL_CALLS = re.compile(r"channel|account|adapter", re.IGNORECASE)
# An expression that holds a channel kind: account.kind, ctx.account.kind, ChannelAccount.kind,
# row.channel.kind, channel_kind.
CHANNEL_KIND_EXPRESSION = re.compile(r"(account|channel)\w*\.kind$|channel_kind$", re.IGNORECASE)


def hub_files(root: Path, suffix: str) -> Iterator[Path]:
    """The project's files ending in `suffix`, less the exempt ones; hidden folders (.venv) and npm's are not read."""
    for top in sorted(root.iterdir()):
        if top.name.startswith(".") or top.name == "node_modules":
            continue
        for path in [top] if top.is_file() else sorted(top.rglob(f"*{suffix}")):
            if path.suffix == suffix and not path.relative_to(root).as_posix().startswith(EXEMPT):
                yield path


def _segments(text: str) -> set[str]:
    """A URL path's or a dotted name's parts: "/webhooks/twilio/" names a kind as much as "twilio" does."""
    return set(re.split(r"[/.]", text))


def _stands_for_a_channel(node: ast.Constant, parent: ast.AST | None, parents: dict[ast.AST, ast.AST]) -> bool:
    """Whether a literal stands where a channel kind goes (for the words that are more than a kind)."""
    if isinstance(parent, ast.keyword):
        call = parents.get(parent)
        channel_call = isinstance(call, ast.Call) and bool(CHANNEL_CALLS.search(ast.unparse(call.func)))
        return parent.arg == "channel_kind" or (parent.arg == "kind" and channel_call)
    if isinstance(parent, ast.Call):
        return bool(CHANNEL_CALLS.search(ast.unparse(parent.func))) and bool(parent.args) and parent.args[0] is node
    if isinstance(parent, ast.Compare):
        operands = [parent.left, *parent.comparators]
        return any(CHANNEL_KIND_EXPRESSION.search(ast.unparse(operand)) for operand in operands)
    return False


def python_leaks(root: Path) -> list[str]:
    kinds = set(known_kinds()) | set(video_platform_kinds())
    adapter_modules = {adapter.__module__ for adapter in adapter_classes()}
    adapter_modules |= {video_platform_class(kind).__module__ for kind in video_platform_kinds()}
    found = []
    for path in hub_files(root, ".py"):
        where = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=where)
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            imported = [node.module] if isinstance(node, ast.ImportFrom) else []
            imported += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            leaked = [name for name in imported if name in adapter_modules]
            found += [f"{where}:{node.lineno}: imports the adapter {name}" for name in leaked]
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            parent = parents.get(node)
            # A literal in a tuple compared with account.kind counts as compared itself.
            while isinstance(parent, ast.Tuple | ast.List | ast.Set):
                parent = parents.get(parent)
            for kind in sorted(({node.value} | _segments(node.value)) & kinds):
                if kind in SHARED_WORDS and not (node.value == kind and _stands_for_a_channel(node, parent, parents)):
                    continue
                found.append(f"{where}:{node.lineno}: names the channel kind {kind!r} ({node.value!r})")
    return sorted(found, key=lambda leak: (leak.split(":")[0], int(leak.split(":")[1])))


def template_leaks(root: Path) -> list[str]:
    """Templates compare no kind and look up no table by one (`limits.twilio`)."""
    every_kind = [*known_kinds(), *video_platform_kinds()]
    kinds = "|".join(re.escape(kind) for kind in every_kind if kind not in SHARED_WORDS)
    quoted_or_attribute = re.compile(rf"""(["'])({kinds})\1|\b\w+\.({kinds})\b(?!\.)""")
    found = []
    for path in hub_files(root, ".html"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if quoted_or_attribute.search(line):
                found.append(f"{path.relative_to(root).as_posix()}:{number}: names a channel kind")
    return found


def test_no_module_outside_channels_names_a_provider() -> None:
    leaks = python_leaks(ROOT)
    assert not leaks, "ask the adapter class (channels.registry) instead:\n" + "\n".join(leaks)


def test_no_page_template_names_a_provider() -> None:
    leaks = template_leaks(ROOT)
    assert not leaks, "pass what the adapter declares to the page instead:\n" + "\n".join(leaks)


def test_the_check_sees_each_way_a_kind_leaks(tmp_path: Path) -> None:
    module = tmp_path / "hub" / "leaky.py"
    module.parent.mkdir()
    module.write_text(
        "from channels.facebook import FacebookAdapter\n"
        'if account.kind in ("telegram", "facebook"): pass\n'
        'url = f"/webhooks/twilio/{account.id}/status"\n'
        'if ctx.account.kind == "email": pass\n'
        'account = channel_account(session, kind="email")\n'
        'stop(session, channel_kind="email")\n'
        # Not channel kinds: a field name, a contact's kind of address, the sign-up form's path.
        'row = {"email": user.email}\n'
        'contact = find_contact(session, kind="email", address=address)\n'
        'router.get("/abo/{slug}/email")\n',
        encoding="utf-8",
    )
    template = tmp_path / "templates" / "page.html"
    template.parent.mkdir()
    template.write_text('{% if row.channel.kind == "twilio" %}{{ limits.telegram }}{% endif %}\n', encoding="utf-8")

    leaks = python_leaks(tmp_path)

    assert [leak.split(": ", 1)[0] for leak in leaks] == [
        "hub/leaky.py:1",
        "hub/leaky.py:2",
        "hub/leaky.py:2",
        "hub/leaky.py:3",
        "hub/leaky.py:4",
        "hub/leaky.py:5",
        "hub/leaky.py:6",
    ]
    assert template_leaks(tmp_path) == ["templates/page.html:1: names a channel kind"]


def test_the_check_sees_video_platforms_too(tmp_path: Path) -> None:
    module = tmp_path / "hub" / "rooms.py"
    module.parent.mkdir()
    module.write_text(
        'from channels.bigbluebutton import BigBlueButton\nif platform.kind == "jitsi": pass\n', encoding="utf-8"
    )

    assert [leak.split(": ", 1)[0] for leak in python_leaks(tmp_path)] == ["hub/rooms.py:1", "hub/rooms.py:2"]


class SignalSettings(ChannelSettings):
    phone_number: str = setting("Telefonnummer", address=True)
    api_token: SecretStr = setting("API-Token")
    hook_secret: SecretStr = setting("Webhook-Geheimnis", generated=True)


class SignalAdapter(ChannelAdapter):
    """A fifth channel on paper: it exists only in this test."""

    kind: ClassVar[str] = "signal"
    title: ClassVar[str] = "Signal"
    label: ClassVar[str] = "Signal"
    identity: ClassVar[Identity] = Identity("phone", "Telefon", "Telefonnummer")
    configuration: ClassVar[type[ChannelSettings]] = SignalSettings
    webhook: ClassVar[Webhook | None] = Webhook("", "text/plain")
    receives_mail: ClassVar[bool] = False
    max_body_chars: ClassVar[int] = 2000
    max_segments: ClassVar[int | None] = None
    supports_media: ClassVar[bool] = True
    supports_choices: ClassVar[bool] = False
    supports_subject: ClassVar[bool] = False
    reply_window: ClassVar[timedelta | None] = None
    rate_per_second: ClassVar[float] = 1.0
    consent_source: ClassVar[str] = "keyword"
    broadcast_rank: ClassVar[int] = 15

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        self.phone_number = config["phone_number"]

    def verify(self, request: WebhookRequest) -> None:
        return None

    def parse(self, request: WebhookRequest) -> list[InboundEvent]:
        return []

    def send(self, message: OutboundMessage) -> Receipt:
        return Receipt(provider_id="1")


def test_a_new_adapter_alone_is_offered_and_configured_by_the_administration(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.adapter_classes()  # the built-in adapters first, so that they do not replace the map below
    monkeypatch.setitem(registry._ADAPTERS, "signal", SignalAdapter)
    municipality = tenancy.create_municipality(session, slug="signalstadt", name="Signalstadt")
    assert municipality.id is not None
    admin_user = tenancy.create_user(session, municipality_id=municipality.id, email="a@x.de", name="A", role="admin")
    assert admin_user.id is not None

    assert admin.channel_kinds()["signal"] == "Signal"
    assert [field.key for field in admin.channel_fields("signal")] == ["phone_number", "api_token"]
    with pytest.raises(InvalidInput, match="Bitte ausfüllen: API-Token"):
        admin.create_channel_account(session, municipality_id=municipality.id, actor_id=admin_user.id, kind="signal",
                                     name="Signal", values={"phone_number": "+4930555"})  # fmt: skip
    account = admin.create_channel_account(
        session, municipality_id=municipality.id, actor_id=admin_user.id, kind="signal", name="Signal",
        values={"phone_number": "+4930555", "api_token": "geheim"},
    )  # fmt: skip

    assert account.address == "+4930555"
    assert account.secrets["api_token"] == "geheim" and len(account.secrets["hook_secret"]) > 20
    assert [(field.key, value) for field, value in admin.console_secrets(account)] == [
        ("hook_secret", account.secrets["hook_secret"])
    ]
    assert tenancy.webhook_url(settings, account) == f"{settings.public_url}/webhooks/signal/{account.id}"
    assert tenancy.status_callback_url(settings, account) is None
