"""A rolling upgrade on the production layout: the previous release's API keeps serving while the new one migrates.

The previous release is this repository's code as it was before the newest migration came, taken from git.
Its `rathaus api` serves a PostgreSQL database at its own head; then today's `rathaus migrate` brings the
schema to today's head under it, today's `rathaus api` starts beside it, and both store webhooks and serve the
inbox for the overlap, each reading what the other wrote.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from hub.migrate import code_head
from tests.redis_claim import claim_redis_database
from tests.running_hub import REPO, free_port, start_postgres_database, wait_for

pytestmark = pytest.mark.production

VERSIONS = Path("hub") / "migrations" / "versions"
ADMIN = "upgrade@musterstadt.example"


def previous_release(into: Path) -> str:
    """Unpacks the code as it was before the newest migration was added into `into`; returns that code's head."""
    newest = max(path.name for path in (REPO / VERSIONS).glob("[0-9]*_*.py"))
    added = subprocess.run(
        # Along main's first parents: a migration made on a branch is rechained when merged, so the
        # release before it is main before that merge, not the branch's own parent.
        ["git", "log", "-1", "--first-parent", "--format=%H", "--diff-filter=A", "--", str(VERSIONS / newest)],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert added, f"git history without the commit that added {newest}"
    tree = subprocess.run(["git", "archive", f"{added}^"], cwd=REPO, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tree)) as archive:
        archive.extractall(into, filter="data")
    head = max(path.name for path in (into / VERSIONS).glob("[0-9]*_*.py")).split("_", 1)[0]
    assert head < newest, f"the code before {newest} is at {head}"
    return head


def rathaus(code: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "hub.cli", *args], env={**env, "PYTHONPATH": str(code)},
                          cwd=code, capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
    assert done.returncode == 0, f"rathaus {' '.join(args)} ({code}): {done.stdout}{done.stderr}"
    return done.stdout


@contextmanager
def api_process(code: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """`rathaus api` of the code in `code` on a port of its own; yields its URL as it starts (see `ready`)."""
    port = free_port()
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "api"],
            env={**env, "PYTHONPATH": str(code), "RATHAUS_PORT": str(port)}, cwd=code,
            stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    except BaseException:
        sys.stderr.write(log.read_text(errors="replace")[-4000:])
        raise
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def worker(code: Path, env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "worker", "-Q", "inbound", "-c", "2"],
            env={**env, "PYTHONPATH": str(code)}, cwd=code, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def revision(database_url: str) -> str:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one())
    finally:
        engine.dispose()


def ready(url: str) -> None:
    wait_for(lambda: _status(f"{url}/readyz") == 200, what=f"rathaus api at {url}", timeout=60)


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


class Town:
    """What both processes serve: one town with a Telegram bot, and its admin's API token."""

    def __init__(self, code: Path, env: dict[str, str]) -> None:
        rathaus(code, env, "municipality", "create", "--slug", "musterstadt", "--name", "Musterstadt")
        rathaus(code, env, "user", "create", "--email", ADMIN, "--name", "Admin", "--role", "admin",
                "--password", "ein-langes-passwort")  # fmt: skip
        self.token = rathaus(code, env, "token", "create", "--email", ADMIN, "--name", "upgrade").strip()
        # Replies go nowhere: the bot's API is a closed port, and only what comes in is looked at here.
        self.secret = uuid.uuid4().hex
        added = rathaus(code, env, "channel", "add", "--kind", "telegram", "--name", "Bot", "--config",
                        "bot_username=MusterstadtBot", "--config", f"api_base_url=http://127.0.0.1:{free_port()}",
                        "--secret", "bot_token=123:abc", "--secret", f"webhook_secret={self.secret}")  # fmt: skip
        self.bot_id = int(added.split()[1])  # "Kanal 1 angelegt. Webhook: …"
        self.updates = 0

    def write(self, url: str, text: str) -> None:
        """A citizen of a chat of their own writes to the bot; Telegram POSTs the update to `url`'s webhook."""
        self.updates += 1
        chat = 800000000 + uuid.uuid4().int % 10**8
        person = {"id": chat, "first_name": "Erika"}
        update = {"update_id": self.updates, "message": {
            "message_id": 1, "from": {**person, "is_bot": False, "language_code": "de"},
            "chat": {**person, "type": "private"}, "date": int(time.time()), "text": text,
        }}  # fmt: skip
        answered = httpx.post(f"{url}/webhooks/telegram/{self.bot_id}", json=update,
                              headers={"X-Telegram-Bot-Api-Secret-Token": self.secret}, timeout=10)  # fmt: skip
        assert answered.status_code == 200, answered.text

    def inbox(self, url: str) -> dict[str, str]:
        """The texts of the inbox's conversations as `url` serves them, by their first message."""
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10) as api:
            listed = api.get("/api/v1/conversations", params={"per_page": 200})
            assert listed.status_code == 200, listed.text
            found = {}
            for conversation in listed.json()["items"]:
                messages: list[dict[str, Any]] = api.get(f"/api/v1/conversations/{conversation['id']}/messages").json()
                found[str(conversation["id"])] = messages[0]["body"]
        return found


def test_the_previous_release_and_this_one_serve_side_by_side_across_the_migration(tmp_path: Path) -> None:
    old = tmp_path / "previous"
    old_head = previous_release(old)
    database_url, drop = start_postgres_database()
    broker_url, release = claim_redis_database()
    env = {**os.environ, "RATHAUS_DATA_DIR": str(tmp_path / "data"), "RATHAUS_DATABASE_URL": database_url,
           "RATHAUS_BROKER_URL": broker_url}  # fmt: skip
    try:
        rathaus(old, env, "migrate")
        assert revision(database_url) == old_head
        # Each process takes seconds to start on a busy machine: the town is made while the API starts.
        with api_process(old, env, tmp_path / "api-previous.log") as previous:
            town = Town(old, env)
            ready(previous)
            texts = ["Vor dem Update"]
            town.write(previous, texts[-1])

            rathaus(REPO, env, "migrate")  # under the running previous release
            assert revision(database_url) == code_head()
            texts.append("Alte Version, neues Schema")
            town.write(previous, texts[-1])

            # The pipeline of this release threads what both store; each process lists all of it.
            with worker(REPO, env, tmp_path / "worker.log"), api_process(REPO, env, tmp_path / "api.log") as current:
                ready(current)
                health = httpx.get(f"{current}/healthz").json()
                assert health["status"] == "ok", health
                for url, text in ((current, "An die neue Version"), (previous, "An die alte, daneben")):
                    texts.append(text)
                    town.write(url, text)
                inbox = wait_for(lambda: town.inbox(current), until=lambda seen: len(seen) == len(texts),
                                 what="a conversation per message", timeout=60)  # fmt: skip
                assert sorted(inbox.values()) == sorted(texts)
                assert town.inbox(previous) == inbox
    finally:
        release()
        drop()
