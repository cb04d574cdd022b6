"""`rathaus sandbox …` finds the sandbox where the settings say, says so in one line when it is not there, and the
hint `rathaus serve --demo` prints runs as printed."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from channels.sandbox.client import SandboxClient
from channels.sandbox.server import SandboxServer
from hub import settings as settings_module
from hub.cli import citizen_sms_hint, main
from tests.unit.conftest import FakeProvider

HUB_NUMBER = "+4930123456"
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port nothing listens on (the OS just handed it out and it was closed again)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings from the environment as each test sets it, read afresh by every command."""
    monkeypatch.setenv("RATHAUS_DATA_DIR", str(tmp_path))
    settings_module.get_settings.cache_clear()
    yield monkeypatch
    settings_module.get_settings.cache_clear()


@pytest.fixture
def sandbox(fake_provider: FakeProvider) -> Iterator[SandboxServer]:
    """A sandbox on a port of its own, with a Twilio number whose webhook is the fake provider."""
    with SandboxServer() as server, SandboxClient(server.url) as client:
        client.register_account(
            "twilio", {"account_sid": "AC" + "1" * 32, "phone_number": HUB_NUMBER}, {"auth_token": "geheim"},
            webhook_url=f"{fake_provider.url}/webhooks/twilio/1",
        )  # fmt: skip
        yield server


def texts_received(fake_provider: FakeProvider) -> list[str]:
    return [request.form["Body"][0] for request in fake_provider.requests if request.path == "/webhooks/twilio/1"]


def test_the_commands_reach_the_sandbox_at_the_port_the_settings_name(
    environment: pytest.MonkeyPatch, sandbox: SandboxServer, fake_provider: FakeProvider
) -> None:
    environment.setenv("RATHAUS_SANDBOX_PORT", str(sandbox.http_port))
    sent = CliRunner().invoke(main, ["sandbox", "sms", "--text", "Hallo Rathaus"])
    assert sent.exit_code == 0, sent.output
    assert texts_received(fake_provider) == ["Hallo Rathaus"]
    assert CliRunner().invoke(main, ["sandbox", "outbox"]).exit_code == 0


@pytest.mark.parametrize("command", [["sms", "--text", "Hallo"], ["outbox"], ["email", "--text", "Hallo"]])
def test_an_unreachable_sandbox_is_one_german_line_and_exit_code_1(
    environment: pytest.MonkeyPatch, command: list[str]
) -> None:
    port = free_port()
    environment.setenv("RATHAUS_SANDBOX_PORT", str(port))
    failed = CliRunner().invoke(main, ["sandbox", *command])
    assert failed.exit_code == 1
    assert isinstance(failed.exception, SystemExit), failed.exception  # click's own exit, not a crash
    assert failed.output.strip().splitlines() == [
        f"Error: Die Sandbox unter http://127.0.0.1:{port} ist nicht erreichbar. Läuft `rathaus serve --demo` "
        "oder `rathaus sandbox serve`? Den Port nennt RATHAUS_SANDBOX_PORT (oder --url)."
    ]


def test_sandbox_serve_listens_on_the_ports_the_settings_name(tmp_path: Path) -> None:
    http_port, smtp_port = free_port(), free_port()
    env = {**os.environ, "RATHAUS_DATA_DIR": str(tmp_path), "RATHAUS_SANDBOX_PORT": str(http_port),
           "RATHAUS_SANDBOX_SMTP_PORT": str(smtp_port), "PYTHONPATH": str(ROOT)}  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "hub.cli", "sandbox", "serve"], env=env, cwd=tmp_path)
    try:
        deadline, answer = time.monotonic() + 60, None
        with SandboxClient(f"http://127.0.0.1:{http_port}", timeout=2) as client:
            while answer is None and time.monotonic() < deadline and process.poll() is None:
                try:
                    answer = client.healthz()
                except httpx.TransportError:  # not listening yet
                    time.sleep(0.1)
        assert answer == {"ok": True}, f"no sandbox on {http_port} (exit code {process.poll()})"
        with socket.create_connection(("127.0.0.1", smtp_port), timeout=5) as smtp:
            assert smtp.recv(100).startswith(b"220")
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_hint_that_serve_demo_prints_works_as_printed_from_another_terminal(
    environment: pytest.MonkeyPatch, sandbox: SandboxServer, fake_provider: FakeProvider
) -> None:
    environment.setenv("RATHAUS_SANDBOX_PORT", str(sandbox.http_port))
    hint = citizen_sms_hint(settings_module.get_settings())
    # Another terminal in the same folder, without this one's sandbox settings.
    env = {name: value for name, value in os.environ.items() if not name.startswith("RATHAUS_SANDBOX_")}
    ran = subprocess.run(shlex.split(hint), env=env, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert texts_received(fake_provider) == ["Hallo Rathaus"]
