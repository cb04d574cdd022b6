"""IMAP polling against a real Dovecot: unread mail enters the inbox once and is then marked read."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from imapclient import SEEN, IMAPClient

from tests.running_hub import Hub, free_port, wait_for

MAILBOX_USER = "rathaus-imap"
MAILBOX_PASSWORD = "geheim"

DOVECOT_CONF = """
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = 1
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@dataclass(frozen=True)
class Dovecot:
    port: int

    def client(self) -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        client.login(MAILBOX_USER, MAILBOX_PASSWORD)
        client.select_folder("INBOX")
        return client


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    # Not under pytest's tmp_path: that is private to root, and Dovecot's mail processes run
    # as the dovecot user, which must be able to reach the mail folders.
    root = Path(tempfile.mkdtemp(prefix="rathaus-dovecot-"))
    root.chmod(0o755)
    for folder in ("mail", "home"):
        (root / folder).mkdir(mode=0o777)
        (root / folder).chmod(0o777)  # the mail processes run as the dovecot user
    port = free_port()
    config = root / "dovecot.conf"
    config.write_text(DOVECOT_CONF.format(root=root, port=port, password=MAILBOX_PASSWORD))
    process = subprocess.Popen([binary, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    server = Dovecot(port=port)
    try:
        wait_for(lambda: _logs_in(server), what="Dovecot to accept logins")
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)
        log = root / "dovecot.log"
        if log.exists() and "Error" in log.read_text():
            print(log.read_text()[-3000:])  # noqa: T201 (pytest shows it only for a failed test)
        shutil.rmtree(root, ignore_errors=True)


def _logs_in(server: Dovecot) -> bool:
    try:
        server.client().logout()
        return True
    except OSError:
        return False


def test_unread_mail_in_the_imap_mailbox_becomes_a_conversation_once(hub: Hub, dovecot: Dovecot) -> None:
    address = f"imap-{hub.backend}@musterstadt.example"
    added = hub.cli(
        "channel", "add", "--kind", "email", "--name", "Postfach über IMAP",
        "--config", f"address={address}", "--config", "imap_host=127.0.0.1",
        "--config", f"imap_port={dovecot.port}", "--config", "imap_ssl=false",
        "--config", "smtp_host=127.0.0.1", "--config", f"smtp_port={hub.env['RATHAUS_SANDBOX_SMTP_PORT']}",
        "--secret", f"imap_username={MAILBOX_USER}", "--secret", f"imap_password={MAILBOX_PASSWORD}",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr

    citizen = f"imap-{uuid.uuid4().hex[:8]}@example.org"
    raw = (
        f"From: Grete Möller <{citizen}>\r\nTo: {address}\r\nSubject: =?utf-8?q?Parkausweis_f=C3=BCr_Anwohner?=\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nIch möchte einen Anwohnerparkausweis beantragen.\r\n"
    ).encode()
    mailbox = dovecot.client()
    mailbox.append("INBOX", raw)

    conversation = hub.wait_for_conversation_with(citizen)
    assert conversation["subject"] == "Parkausweis für Anwohner"
    assert conversation["contact"]["display_name"] == "Grete Möller"
    wait_for(lambda: mailbox.search(["UNSEEN"]) == [] and True, what="the mail to be marked read")
    assert all(SEEN in flags for flags in mailbox.get_flags(mailbox.search(["ALL"])).values())

    # The same mail appearing again (moved back, restored from backup) stores nothing new.
    mailbox.append("INBOX", raw)
    wait_for(lambda: mailbox.search(["UNSEEN"]) == [] and True, what="the copy to be read")
    inbound = [m for m in hub.messages(conversation["id"]) if m["direction"] == "inbound"]
    assert [m["body"].strip() for m in inbound] == ["Ich möchte einen Anwohnerparkausweis beantragen."]
    mailbox.logout()
