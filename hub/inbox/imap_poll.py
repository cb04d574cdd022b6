"""Polls the IMAP mailbox of each email channel that has one: a second way in, beside the SMTP listener.

A mail is fetched with BODY.PEEK (which leaves it unread) and flagged \\Seen only after it is
stored, so a crash between the two costs a re-fetch, which stores nothing new.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from imapclient import SEEN, IMAPClient

from channels.registry import adapter_class
from hub.inbox.mail import accept_mail
from hub.tenancy.models import ChannelAccount

log = logging.getLogger(__name__)

FETCH_BATCH = 50


@dataclass(frozen=True)
class PollResult:
    fetched: int
    stored: int
    flagged: int


def polls_imap(account: ChannelAccount) -> bool:
    receives_mail = adapter_class(account.kind).receives_mail
    return receives_mail and account.active and bool(account.config.get("imap_host"))


def poll_mailbox(account: ChannelAccount) -> PollResult:
    """Takes every unread mail in the account's IMAP folder into the inbox."""
    config, secrets = account.config, account.secrets
    fetched = stored = flagged = 0
    with IMAPClient(
        str(config["imap_host"]),
        port=int(config.get("imap_port") or 993),
        ssl=bool(config.get("imap_ssl", True)),
        timeout=30,
    ) as client:
        client.login(str(secrets["imap_username"]), str(secrets["imap_password"]))
        client.select_folder(str(config.get("imap_folder") or "INBOX"))
        unread = client.search(["UNSEEN"])
        for start in range(0, len(unread), FETCH_BATCH):
            batch = unread[start : start + FETCH_BATCH]
            for uid, data in client.fetch(batch, ["BODY.PEEK[]"]).items():
                fetched += 1
                intake = accept_mail(account, data[b"BODY[]"], mail_from=None, recipient=account.address)
                if intake.kept:
                    client.add_flags([uid], [SEEN])
                    stored += intake.new_events
                    flagged += intake.flagged is not None
                else:
                    log.warning("mail %s in %s left unread: %s", uid, account.address, intake.refused)
    return PollResult(fetched=fetched, stored=stored, flagged=flagged)
