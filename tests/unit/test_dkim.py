"""DKIM: `rathaus dkim generate` stores a town's key and prints its record; mail sent with it verifies."""

from __future__ import annotations

import re

import dkim
from click.testing import CliRunner
from sqlmodel import Session

from channels.base import OutboundMessage
from channels.registry import build_adapter
from hub.cli import main
from hub.tenancy.models import ChannelAccount
from tests.unit import test_email
from tests.unit.db import make_town
from tests.unit.test_email import SmtpSink

# The email tests' SMTP server, which keeps each mail as it came over the wire.
mail_sink = test_email.smtp_sink

RECORD = re.compile(r'^(?P<name>\S+)\. IN TXT \( (?P<strings>(?:"[^"]*" ?)+)\)$', re.MULTILINE)


def published(output: str) -> dict[str, bytes]:
    """The TXT records the command printed, as a resolver returns them (the strings joined)."""
    return {
        found["name"]: "".join(re.findall(r'"([^"]*)"', found["strings"])).encode("ascii")
        for found in RECORD.finditer(output)
    }


def test_a_mail_signed_with_the_generated_key_verifies_and_covers_one_click_unsubscribe(
    session: Session, mail_sink: SmtpSink
) -> None:
    town = make_town(session)
    result = CliRunner().invoke(main, ["dkim", "generate", "--town", "testdorf", "--selector", "2026a"])
    assert result.exit_code == 0, result.output
    records = published(result.output)
    assert list(records) == ["2026a._domainkey.testdorf.example"]
    assert records["2026a._domainkey.testdorf.example"].startswith(b"v=DKIM1; k=rsa; p=")

    account = session.get(ChannelAccount, town.accounts["email"].id, populate_existing=True)
    assert account is not None and account.config["dkim_selector"] == "2026a"
    adapter = build_adapter("email", {**account.config, "smtp_port": mail_sink.port}, account.secrets)
    adapter.send(
        OutboundMessage(
            to="eva@example.org",
            text="Die Straße ist ab Montag gesperrt.",
            subject="Baustelle Hauptstraße",
            headers=(
                ("List-Unsubscribe", "<https://hub.testdorf.example/abmelden/abc>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ),
        )
    )

    [mail] = mail_sink.mails
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    lookups: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        lookups.append(name)
        return records.get(name.decode("ascii").rstrip("."), b"")

    assert dkim.verify(mail.raw, dnsfunc=dns)
    assert lookups == [b"2026a._domainkey.testdorf.example."]
    signed = dkim.DKIM(mail.raw)
    assert signed.verify(dnsfunc=dns)
    covered = {name.lower() for name, _ in signed.signed_headers}
    assert {b"from", b"to", b"subject", b"list-unsubscribe", b"list-unsubscribe-post"} <= covered
    # Changing the unsubscribe link breaks the signature.
    assert not dkim.verify(mail.raw.replace(b"/abmelden/abc", b"/abmelden/xyz"), dnsfunc=dns)


def test_without_a_key_mail_goes_out_unsigned(session: Session, mail_sink: SmtpSink) -> None:
    town = make_town(session)
    account = town.accounts["email"]
    adapter = build_adapter("email", {**account.config, "smtp_port": mail_sink.port}, account.secrets)

    adapter.send(OutboundMessage(to="eva@example.org", text="Hallo"))

    [mail] = mail_sink.mails
    assert "DKIM-Signature" not in mail.message


def test_generate_refuses_a_bad_selector_and_a_town_without_mailbox(session: Session) -> None:
    make_town(session)
    runner = CliRunner()

    bad = runner.invoke(main, ["dkim", "generate", "--town", "testdorf", "--selector", "nicht gut"])
    assert bad.exit_code != 0 and "Ungültiger DKIM-Selektor" in bad.output
    runner.invoke(main, ["municipality", "create", "--slug", "ohnepost", "--name", "Ohnepost"])
    none = runner.invoke(main, ["dkim", "generate", "--town", "ohnepost"])
    assert none.exit_code != 0 and "kein E-Mail-Postfach" in none.output
