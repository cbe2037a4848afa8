"""deploy/grafana and deploy/prometheus: the alert rules pass ``promtool check rules`` and
their unit tests (each alert fires on its input series), the dashboard's queries are valid
PromQL, and every metric either names is one a Lookout service really exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import lookout_api.metrics
import lookout_count_aggregator.metrics
import lookout_notifier.metrics
import lookout_shared.metrics
import lookout_snapshot_worker.metrics
import pytest
import yaml
from prometheus_client import REGISTRY

from tests.unit.deploy.deploy_files import ROOT

PROMTOOL = "/usr/bin/promtool"
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "lookout.json"
# Imported for their metrics: each registers its own in the default registry.
METRICS_MODULES = (
    lookout_shared.metrics,
    lookout_api.metrics,
    lookout_snapshot_worker.metrics,
    lookout_count_aggregator.metrics,
    lookout_notifier.metrics,
)
# What Prometheus adds to every target.
SCRAPE_SERIES = {"up"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported() -> set[str]:
    """Every series name the services' registries expose (labelled or not yet)."""
    names = set(SCRAPE_SERIES)
    for family in REGISTRY.collect():
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    """The series an expression selects: Lookout's (``lookout_*``) and Prometheus's ``up``,
    outside label matchers (which may hold ``lookout.*`` as a value)."""
    without_matchers = re.sub(r"\{[^}]*\}", "", expr)
    return set(re.findall(r"\b(lookout_[a-z0-9_]+|up)\b", without_matchers))


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=cwd, check=False)


def test_alert_rules_pass_promtool_check() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_fires_in_the_promtool_unit_tests() -> None:
    done = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert tested == {rule["alert"] for rule in alert_rules()}
    # Each alert has a case where it is expected to fire (a non-empty exp_alerts).
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    firing = {
        check["alertname"]
        for case in cases
        for check in case["alert_rule_test"]
        if check.get("exp_alerts")
    }
    assert firing == tested


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule (Grafana's variables filled in)."""
    rules = [
        {
            "record": f"dashboard:query{i}",
            "expr": expr.replace("$__rate_interval", "5m").replace("$job", "lookout.*"),
        }
        for i, expr in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    "needed",
    [
        "lookout_http_requests_total",
        "lookout_http_request_duration_seconds_bucket",
        "lookout_cache_requests_total",
        "lookout_outbox_backlog_messages",
        "lookout_outbox_oldest_age_seconds",
        "lookout_queue_messages_ready",
        "lookout_queue_messages_unacked",
        "lookout_dead_letter_messages",
        "lookout_ffmpeg_runs_total",
        "lookout_ffmpeg_duration_seconds_bucket",
        "lookout_count_drift",
        "lookout_counts_trusted",
        "lookout_ws_connections",
        "lookout_ws_slow_client_closes_total",
        "up",
    ],
)
def test_the_dashboard_shows(needed: str) -> None:
    assert any(needed in metric_names(q) for q in dashboard_queries())


def test_every_metric_of_the_dashboard_and_the_alerts_is_exported() -> None:
    used = {name for q in dashboard_queries() for name in metric_names(q)}
    used |= {name for rule in alert_rules() for name in metric_names(rule["expr"])}
    assert "lookout_counts_trusted" in used  # the parsing finds names
    assert used - exported() == set()


def test_a_misspelt_metric_is_caught() -> None:
    assert metric_names('sum(rate(lookout_ffmpeg_run_total{outcome="x"}[5m]))') - exported()
