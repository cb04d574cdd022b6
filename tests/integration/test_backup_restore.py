"""A backup taken while webhooks keep arriving restores into an empty database: every row and attachment byte, once.

The hub is filled through its real paths (citizens' messages on three channels, one with an attachment,
subscribers by keyword with their consent, a broadcast with its deliveries, a booking by the API), then
`rathaus backup` runs while SMS webhooks keep coming, and `rathaus restore` puts it into a new database.
A second backup, with no webhooks arriving, must restore every row that stayed as it was while it ran,
exactly, and every attachment byte.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from tests.integration.test_broadcasts_e2e import finished_report, mobile, send, subscribe_by_sms
from tests.running_hub import REPO, Hub, free_port, start_postgres_database, wait_for

Rows = dict[str, list[str]]


def every_row(engine: sa.Engine) -> Rows:
    """Each table's rows, as comparable text, in a stable order."""
    with engine.connect() as connection:
        tables = sa.inspect(connection).get_table_names()
        return {
            name: sorted(
                repr(tuple(row)) for row in connection.execute(sa.select(sa.text("*")).select_from(sa.table(name)))
            )
            for name in tables
        }


def attachments(engine: sa.Engine) -> dict[int, bytes | None]:
    with engine.connect() as connection:
        return {key: data for key, data in connection.execute(sa.text("SELECT id, data FROM attachment"))}


@contextmanager
def empty_database(hub: Hub, folder: Path) -> Iterator[dict[str, str]]:
    """The hub's settings pointed at a new, empty database of its backend."""
    env = {**hub.env, "RATHAUS_DATA_DIR": str(folder)}
    drop: Callable[[], None] | None = None
    if hub.backend == "production":
        env["RATHAUS_DATABASE_URL"], drop = start_postgres_database()
    try:
        yield env
    finally:
        if drop is not None:
            drop()


def database_of(env: dict[str, str]) -> sa.Engine:
    return sa.create_engine(env.get("RATHAUS_DATABASE_URL") or f"sqlite:///{env['RATHAUS_DATA_DIR']}/rathaus.sqlite")


def rathaus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "hub.cli", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, check=False, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def fill(hub: Hub) -> bytes:
    """Citizens write on three channels (a PDF by mail), two subscribe, a broadcast goes out, a place is booked."""
    pdf = b"%PDF-1.4\n" + uuid.uuid4().bytes * 64 + b"\n%%EOF\n"
    citizen = f"sicherung-{uuid.uuid4().hex[:8]}@example.org"
    hub.sandbox.send_email(from_=citizen, to=hub.accounts["email"]["address"], subject="Antrag", text="Anbei.",
                           attachments=[("Antrag.pdf", "application/pdf", pdf)])  # fmt: skip
    hub.sandbox.send_sms(from_=mobile(), to=hub.accounts["twilio"]["address"], body="Die Laterne ist aus.")
    hub.sandbox.send_telegram(chat_id=700000000 + uuid.uuid4().int % 10**8, text="Wann ist Sperrmüll?")
    for number in (mobile(), mobile()):
        subscribe_by_sms(hub, number, "ABFALL")
    broadcast = send(hub, title=f"Biotonne {uuid.uuid4().hex[:6]}", texts={"de": {"body": "Am Samstag."}},
                     topics=["abfall"], channels=["twilio"])  # fmt: skip
    finished_report(hub, broadcast["id"])
    free = (slot for series in hub.api.get("/api/v1/consultations/series").json()
            for session in hub.api.get(f"/api/v1/consultations/series/{series['id']}/sessions").json()
            for slot in session["slots"] if slot["free"])  # fmt: skip
    slot = next(free)
    booked = hub.api.post(f"/api/v1/consultations/slots/{slot['id']}/bookings",
                          json={"name": "Lena Sicher", "phone": mobile()})  # fmt: skip
    assert booked.status_code == 201, booked.text
    hub.wait_for_conversation_with(citizen)
    hub.wait_until_stored_messages_ran()
    return pdf


@contextmanager
def webhooks_arriving(hub: Hub) -> Iterator[list[str]]:
    """Signed SMS webhooks, one after another, until the block ends; yields the texts sent so far."""
    sent: list[str] = []
    stop = threading.Event()

    def keep_writing() -> None:
        while not stop.is_set():
            text = f"Nachricht während der Sicherung {len(sent)}"
            hub.sandbox.send_sms(from_=mobile(), to=hub.accounts["twilio"]["address"], body=text)
            sent.append(text)

    writer = threading.Thread(target=keep_writing, daemon=True)
    writer.start()
    try:
        wait_for(lambda: len(sent) >= 3, what="webhooks arriving")
        yield sent
    finally:
        stop.set()
        writer.join(timeout=30)


def backup_between(hub: Hub, target: Path) -> tuple[Rows, Rows]:
    """`rathaus backup` into target, and the hub's rows just before and just after it."""
    before = every_row(hub.engine)
    rathaus(hub.env, "backup", str(target))
    return before, every_row(hub.engine)


def unchanged(before: Rows, after: Rows) -> Rows:
    """The rows no process touched while the backup ran: a consistent backup holds each of them exactly.

    The hub is never fully still (beat polls, sessions are touched), so the test does not wait for a quiet
    moment; a row that changed meanwhile may be in the backup in either state.
    """
    return {name: sorted(set(rows) & set(after.get(name, []))) for name, rows in before.items()}


def answers_healthz(env: dict[str, str], token: str) -> dict[str, Any]:
    """`rathaus api` on the restored database: /healthz and the inbox with a token made before the backup."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "hub.cli", "api"], env={**env, "RATHAUS_PORT": str(port)},
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"

        def health() -> httpx.Response | None:
            try:
                return httpx.get(f"{url}/healthz", timeout=2)
            except httpx.HTTPError:
                return None

        answer = wait_for(health, what="the restored hub to answer")
        listed = httpx.get(f"{url}/api/v1/conversations", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert listed.status_code == 200
        return {**answer.json(), "conversations": listed.json()["total"]}
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_a_backup_under_load_restores_every_row_and_attachment(hub: Hub, tmp_path: Path) -> None:
    pdf = fill(hub)
    filled = every_row(hub.engine)

    with webhooks_arriving(hub) as sent:
        before = len(sent)
        rathaus(hub.env, "backup", str(tmp_path / "unter-last.tar"))
        during = len(sent) - before
    assert (tmp_path / "unter-last.tar").stat().st_mode & 0o077 == 0  # citizens' data and the secret key

    with empty_database(hub, tmp_path / "a") as env:
        restored = rathaus(env, "restore", str(tmp_path / "unter-last.tar"))
        assert "alle geprüft" in restored.stdout
        engine = database_of(env)
        try:
            rows = every_row(engine)
            # Everything there before the load is there, each message once; attachments to the byte. (SQLite's
            # full-text index merges its segments as it grows: its own tables may hold fewer rows later.)
            tables = [name for name in filled if not name.startswith("message_search_")]
            assert [name for name in tables if len(rows[name]) < len(filled[name])] == []
            with engine.connect() as connection:
                ids = connection.execute(sa.text("SELECT provider_id FROM message WHERE provider_id IS NOT NULL"))
                provider_ids = [row[0] for row in ids]
            assert len(provider_ids) == len(set(provider_ids))
            source_files = attachments(hub.engine)
            assert pdf in attachments(engine).values()
            assert all(source_files[key] == data for key, data in attachments(engine).items())
        finally:
            engine.dispose()
        health = answers_healthz(env, hub.token)
        assert health["status"] == "ok" and health["database_schema"] == health["code_schema"]
        assert health["conversations"] >= 1
    assert during > 0  # webhooks were answered while the backup ran

    hub.wait_until_stored_messages_ran()
    files = attachments(hub.engine)
    before, after = backup_between(hub, tmp_path / "ruhig.tar")
    with empty_database(hub, tmp_path / "b") as env:
        rathaus(env, "restore", str(tmp_path / "ruhig.tar"))
        engine = database_of(env)
        try:
            rows = every_row(engine)
            missing = {name: sorted(set(kept) - set(rows[name])) for name, kept in unchanged(before, after).items()}
            assert {name: lost for name, lost in missing.items() if lost} == {}
            assert attachments(engine).items() >= files.items()
        finally:
            engine.dispose()


def test_a_restore_refuses_a_database_that_is_not_empty(hub: Hub, tmp_path: Path) -> None:
    rathaus(hub.env, "backup", str(tmp_path / "sicherung.tar"))
    refused = subprocess.run([sys.executable, "-m", "hub.cli", "restore", str(tmp_path / "sicherung.tar")], env=hub.env,
                             cwd=REPO, capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
    assert refused.returncode == 1
    assert "nur in eine leere Datenbank zurückgespielt" in refused.stderr
