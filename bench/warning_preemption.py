"""Warning pre-emption: how soon a warning approved during a large announcement reaches its first and last recipient.

The announcement goes by SMS to N subscribers with no rate cap; the warning goes by Telegram
to W other subscribers, so the sandbox tells the two apart. Each run approves a new warning
while the announcement is still sending. The baseline is the same warning approved when
nothing else is sending, measured in the same run.
"""

from __future__ import annotations

import argparse
import time

from bench.harness import (
    NO_RATE_CAP,
    Hub,
    add_subscribers,
    approve,
    backends_of,
    common_arguments,
    draft,
    header,
    machine,
    percentile,
    ratio,
    running_hub,
    sandbox_count,
    set_rate,
    table,
    wait_for_arrivals,
)


def one_warning(hub: Hub, recipients: int, number: int) -> tuple[float, float]:
    """Approves a warning to the Telegram subscribers; (seconds to first, seconds to last) arrival."""
    hub.sandbox.clear_outbox()
    broadcast_id = draft(hub, kind="warning", channel="telegram", title=f"Unwetterwarnung {number}")
    approved_at = approve(hub, broadcast_id)
    last = wait_for_arrivals(hub, "telegram", recipients, timeout=600, progress=False)
    _, first, _ = sandbox_count(hub, "telegram")
    return (first or last) - approved_at, last - approved_at


def announcement_running(hub: Hub, broadcast_id: int) -> bool:
    return bool(hub.api.get(f"/api/v1/broadcasts/{broadcast_id}").json()["status"] == "sending")


def measure(hub: Hub, announcement: int, warning: int, runs: int) -> list[tuple[str, ...]]:
    add_subscribers(hub, announcement, "twilio")
    add_subscribers(hub, warning, "telegram", start=announcement)
    set_rate(hub, "twilio", NO_RATE_CAP)
    set_rate(hub, "telegram", NO_RATE_CAP)
    idle = [one_warning(hub, warning, 0)]
    print(f"  {hub.backend}: idle warning first {idle[0][0]:.2f}s, last {idle[0][1]:.2f}s", flush=True)

    announcement_id = draft(hub, channel="twilio", title="Große Ankündigung")
    approve(hub, announcement_id)
    wait_for_arrivals(hub, "twilio", min(200, announcement), timeout=600, progress=False)
    busy: list[tuple[float, float]] = []
    for number in range(1, runs + 1):
        if not announcement_running(hub, announcement_id):
            print(f"  {hub.backend}: the announcement finished after {len(busy)} runs; use more recipients")
            break
        busy.append(one_warning(hub, warning, number))
        print(f"  {hub.backend}: warning {number}: first {busy[-1][0]:.2f}s, last {busy[-1][1]:.2f}s", flush=True)
        time.sleep(1)
    hub.api.post(f"/api/v1/broadcasts/{announcement_id}/cancel")
    rows = []
    for label, index in (("first message", 0), ("last message", 1)):
        during = [run[index] for run in busy]
        p50, p95 = percentile(during, 0.5), percentile(during, 0.95)
        rows.append(
            (hub.backend, label, f"{p50:.2f}", f"{p95:.2f}", f"{idle[0][index]:.2f}", ratio(p50, idle[0][index]),
             str(len(busy)))
        )  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000, help="Announcement recipients (quick: 3000).")
    parser.add_argument("--warning-recipients", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    common_arguments(parser)
    args = parser.parse_args()
    header(
        f"Warning pre-emption: a warning to {args.warning_recipients:,} during an announcement to {args.recipients:,}",
        f"Machine: {machine()}. Seconds from approval (REST API) to the warning's first and last message "
        "accepted by the sandbox, over the runs; baseline: the same warning with nothing else sending.",
    )
    rows = []
    for backend in backends_of(args.backend):
        with running_hub(backend) as hub:
            rows += measure(hub, args.recipients, args.warning_recipients, args.runs)
    table(rows, ("backend", "warning's", "p50 s", "p95 s", "idle s (baseline)", "p50 / idle", "runs"))


if __name__ == "__main__":
    main()
