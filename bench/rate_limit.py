"""Rate-limit accuracy: with a cap of N messages per second on the SMS account, the rate achieved and the worst second.

An announcement to more recipients than the cap lets through in the measured time is sent;
the sandbox's arrival times over that time give the achieved rate (as a fraction of N, the
baseline) and the largest count in any one-second window (sliding, at every arrival), which
must never exceed N.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime

from bench.harness import (
    Hub,
    add_subscribers,
    approve,
    backends_of,
    common_arguments,
    draft,
    header,
    machine,
    running_hub,
    set_rate,
    table,
    wait_for_arrivals,
)


def max_in_one_second(times: list[float]) -> int:
    """The most arrivals in any window [t, t + 1 s), t running over every arrival."""
    most, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def measure(hub: Hub, cap: int, seconds: int) -> tuple[str, ...]:
    recipients = cap * (seconds + 15)
    add_subscribers(hub, recipients, "twilio")
    set_rate(hub, "twilio", cap)
    broadcast_id = draft(hub, channel="twilio", title="Ratenbegrenzung")
    approve(hub, broadcast_id)
    wait_for_arrivals(hub, "twilio", 1, timeout=300, progress=False)
    time.sleep(seconds + 2)
    hub.api.post(f"/api/v1/broadcasts/{broadcast_id}/cancel")
    arrivals = sorted(datetime.fromisoformat(item["received_at"]).timestamp() for item in hub.sandbox.outbox("twilio"))
    window = [t for t in arrivals if t < arrivals[0] + seconds]
    achieved = len(window) / seconds
    worst = max_in_one_second(arrivals)
    verdict = "ok" if worst <= cap else "EXCEEDED"
    return (hub.backend, str(cap), str(seconds), f"{achieved:.2f}", f"{achieved / cap:.2f}", str(worst), verdict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=int, default=20, help="N, messages per second on the account.")
    parser.add_argument("--seconds", type=int, default=60, help="Measured time (quick: 15).")
    common_arguments(parser)
    args = parser.parse_args()
    header(
        f"Rate-limit accuracy: cap {args.cap}/s on one SMS account, measured over {args.seconds} s",
        f"Machine: {machine()}. Arrivals at the sandbox from the first on. A send counts for 1.05 s from the "
        "provider's answer (docs/entwicklung/rundsendungen.md, Rate limits), so the ceiling is a little under N.",
    )
    rows = []
    for backend in backends_of(args.backend):
        with running_hub(backend) as hub:
            rows.append(measure(hub, args.cap, args.seconds))
    table(rows, ("backend", "N /s", "seconds", "achieved /s", "achieved / N", "max in any 1 s", "≤ N"))


if __name__ == "__main__":
    main()
