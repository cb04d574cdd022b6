"""Two API processes and two workers per queue on one PostgreSQL and one Redis: under webhook load
and a running broadcast, no citizen's message is lost and no broadcast message is sent twice.

The production layout is started as the benchmarks start it (bench/harness.py): the sandbox,
`rathaus api` twice, `rathaus worker -Q <queue>` twice per queue and one `rathaus beat`.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import sqlalchemy as sa

from bench.harness import TEXT, add_subscribers, address, approve, draft, running_hub, set_rate, wait_for_arrivals
from bench.inbound_webhooks import request_factory
from tests.running_hub import wait_for

pytestmark = [pytest.mark.fault, pytest.mark.production]

SUBSCRIBERS = 400
WEBHOOKS = 150


def on_replica(target: str, api_url: str) -> str:
    """The same webhook sent to another API process; its signature is over the public URL, so it still holds."""
    replica = urlsplit(api_url)
    return urlunsplit(urlsplit(target)._replace(netloc=replica.netloc))


def inbound_questions(engine: sa.Engine) -> Counter[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT body FROM message WHERE direction = 'inbound' AND body LIKE 'Frage %'")
        ).scalars()
        return Counter(rows)


@pytest.mark.timeout(900)
def test_two_apis_and_two_workers_lose_nothing_and_send_nothing_twice() -> None:
    with running_hub("production", replicas=2) as hub:
        set_rate(hub, "telegram", 1_000)
        add_subscribers(hub, SUBSCRIBERS, "telegram")
        broadcast_id = draft(hub, channel="telegram", title="Zwei von allem")
        approve(hub, broadcast_id)

        # Every webhook goes to both API processes at once, as a provider retrying through a proxy would.
        build = request_factory(hub.accounts, hub.url)
        requests = [build(n) for n in range(WEBHOOKS)]
        with httpx.Client(timeout=30) as client, ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(
                pool.map(
                    lambda sent: client.post(sent[0], headers=sent[1], content=sent[2]).status_code,
                    [(on_replica(target, api_url), headers, body)
                     for target, headers, body in requests for api_url in hub.api_urls],
                )
            )  # fmt: skip
        assert Counter(answers) == {200: 2 * WEBHOOKS}

        engine = hub.engine()
        try:
            questions = wait_for(
                lambda: (found := inbound_questions(engine)) and sum(found.values()) >= WEBHOOKS and found,
                timeout=300, interval=1, what="every webhook's message in the inbox",
            )  # fmt: skip
            assert questions == {f"Frage {n}": 1 for n in range(WEBHOOKS)}, "a message lost or stored twice"
        finally:
            engine.dispose()

        wait_for_arrivals(hub, "telegram", SUBSCRIBERS, timeout=300, progress=False)
        wait_for(
            lambda: hub.api.get(f"/api/v1/broadcasts/{broadcast_id}/report").json()["status"] == "completed",
            what="the broadcast to complete",
        )  # fmt: skip
        received = Counter(item["to"] for item in hub.sandbox.outbox(kind="telegram") if TEXT in item["text"])
        assert received == {address("telegram", n): 1 for n in range(SUBSCRIBERS)}
