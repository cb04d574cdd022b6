"""deploy/'s alert rules and dashboard: they parse, and every hub metric they name is one /metrics exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
HUB_METRIC = re.compile(r"\brathaus_[a-z_]+\b")
# What the text format appends to a family's name in its samples.
SUFFIXES = {"counter": ("",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


@pytest.fixture
def exported(settings: Settings) -> set[str]:
    with TestClient(create_app(), client=("127.0.0.1", 40000)) as client:
        text = client.get("/metrics").text
    names = set()
    for name, kind in re.findall(r"^# TYPE (rathaus_\S+) (\S+)$", text, re.MULTILINE):
        names.update(name + suffix for suffix in SUFFIXES[kind])
    return names


def rule_expressions() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_the_alert_rules_parse_and_cover_what_operators_watch() -> None:
    alerts = {
        rule["alert"]
        for group in yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    assert {"RathausQueueGrowing", "RathausSendsFailing", "RathausWebhookChannelSilent"} <= alerts
    assert "RathausSweeperRepairing" in alerts
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["scrape_configs"][0]["metrics_path"] == "/metrics"


def test_rules_and_dashboard_name_only_metrics_the_hub_exports(exported: set[str]) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "rathaus-hub.json").read_text())
    panels = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    named = {name for expr in [*rule_expressions(), *panels] for name in HUB_METRIC.findall(expr)}

    assert named, "the rules name the hub's metrics"
    assert named <= exported, f"not exported: {sorted(named - exported)}"
    assert {"rathaus_queue_depth", "rathaus_messages_failed_total", "rathaus_sweeper_repairs_total"} <= named


def test_compose_runs_prometheus_and_grafana_with_the_shared_metrics_folder() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"prometheus", "grafana"} <= set(services)
    for name in ("api", "smtp", "worker-inbound", "worker-bulk", "beat"):
        assert services[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"] == "/run/rathaus-metrics", name
        assert "metrics:/run/rathaus-metrics" in services[name]["volumes"], name
