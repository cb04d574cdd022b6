"""The hub's Prometheus counters, bumped on the hot paths, and their exposition merged across processes.

With PROMETHEUS_MULTIPROC_DIR set (production: the API processes and the workers share it),
every process writes its counts to files there and a scrape reads them all. Without it each
process counts in memory; `rathaus serve` points its worker children at a folder of its own,
so the scrape adds theirs to the web app's.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# The `_created` timestamps cannot be added up across processes, and Prometheus needs none.
disable_created_metrics()

if os.environ.get(MULTIPROC_ENV):
    # Files are named by process id; containers sharing the folder all run as pid 1, so the
    # host name goes into the name too.
    values.ValueClass = values.MultiProcessValue(lambda: f"{socket.gethostname()}-{os.getpid()}")

WEBHOOKS_RECEIVED = Counter("rathaus_webhooks_received_total", "Webhook calls and mails received.", ["channel"])
WEBHOOKS_REJECTED = Counter(
    "rathaus_webhooks_rejected_total",
    "Webhook calls refused (signature) or stored as unreadable (payload).",
    ["channel", "reason"],
)
PIPELINE_SECONDS = Histogram(
    "rathaus_pipeline_seconds",
    "From an inbound event being stored to the pipeline having handled it.",
    ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
MESSAGES_SENT = Counter("rathaus_messages_sent_total", "Messages a provider accepted.", ["channel", "delivery_class"])
MESSAGES_FAILED = Counter(
    "rathaus_messages_failed_total",
    "Sends that ended without delivery: rejected, opted_out (at the provider) or gave_up (after passing failures).",
    ["channel", "delivery_class", "reason"],
)
MESSAGES_RETRIED = Counter(
    "rathaus_messages_retried_total", "Passing send failures that are tried again.", ["channel", "delivery_class"]
)
RATE_LIMIT_WAITS = Counter(
    "rathaus_rate_limit_waits_total", "Sends that waited for a slot under the channel's rate limit.", ["channel"]
)
SWEEPER_REPAIRS = Counter(
    "rathaus_sweeper_repairs_total", "Work the sweeper found left behind and repaired, by kind.", ["kind"]
)


class _InProcess(Collector):
    """This process's in-memory metrics, as one collector among others."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def _counts_in_memory() -> bool:
    return values.ValueClass is values.MutexValue


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """The text format of all processes' metrics and of `extra` (read now), each family once."""
    sources: list[Collector] = list(extra)
    if _counts_in_memory():
        sources.append(_InProcess())
    shared = os.environ.get(MULTIPROC_ENV)
    if shared and Path(shared).is_dir():
        sources.append(multiprocess.MultiProcessCollector(None, path=shared))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(sources))
    return bytes(generate_latest(registry))


class _Merged(Collector):
    """Families of the same name from several sources as one, samples with the same labels summed.

    The web app and its worker children may both have counted a send of the same channel and
    class; the text format allows each family and each sample only once.
    """

    def __init__(self, sources: list[Collector]) -> None:
        self._sources = sources

    def collect(self) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        sums: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
        for source in self._sources:
            for family in source.collect():
                families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
                totals = sums.setdefault(family.name, {})
                for sample in family.samples:
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    totals[key] = totals.get(key, 0.0) + sample.value
        for name, family in families.items():
            for (sample_name, labels), value in sums[name].items():
                family.add_sample(sample_name, dict(labels), value)
            yield family
