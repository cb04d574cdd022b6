"""Runs every benchmark in turn (`make bench`); `--quick` uses the sizes of the figures in the benchmarks page."""

from __future__ import annotations

import argparse
import subprocess
import sys

# (module, full-size arguments, quick arguments)
BENCHMARKS = (
    ("bench.broadcast_throughput", ["--recipients", "100000"], ["--recipients", "2000"]),
    (
        "bench.warning_preemption",
        ["--recipients", "100000"],
        ["--recipients", "4000", "--runs", "3", "--backend", "production"],
    ),
    ("bench.rate_limit", ["--seconds", "60"], ["--seconds", "60"]),
    (
        "bench.inbound_webhooks",
        ["--seconds", "10"],
        ["--seconds", "10", "--backend", "production", "--rates", "10,25,50,100,200,400"],
    ),
    ("bench.webhook_cost", ["--requests", "300"], ["--requests", "300"]),
    ("bench.inbox_scale", ["--conversations", "100000"], ["--requests", "30"]),
    ("bench.consultation_booking", ["--citizens", "2000"], ["--citizens", "2000"]),
    ("bench.problem_duplicates", ["--reports", "100000"], ["--reports", "100000"]),
    ("bench.backup_restore", ["--messages", "100000"], ["--messages", "100000"]),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Small sizes (minutes instead of hours on 2 cores).")
    parser.add_argument("--only", default="", help="Comma-separated module names, e.g. rate_limit,inbox_scale.")
    args = parser.parse_args()
    chosen = {name.strip() for name in args.only.split(",") if name.strip()}
    failed = []
    for module, full, quick in BENCHMARKS:
        if chosen and module.removeprefix("bench.") not in chosen:
            continue
        done = subprocess.run([sys.executable, "-m", module, *(quick if args.quick else full)], check=False)
        if done.returncode:
            failed.append(module)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
