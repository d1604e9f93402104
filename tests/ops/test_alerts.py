"""deploy/prometheus/alerts.yml: valid for promtool, only metrics /metrics really exposes, and a
runbook section in docs/operations.md for every alert."""

from __future__ import annotations

import os
import re
import shutil
import smtplib
import subprocess
from pathlib import Path

import pytest
import yaml
from django.test import Client

from mailcore.models import Mailbox
from mailcore.smtp.server import Receiver
from tests.factories import make_email
from tests.ops.scrape import scrape

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RUNBOOK = ROOT / "docs" / "operations.md"
# Series that come from Prometheus itself and node_exporter, not from Mailroom.
EXTERNAL = re.compile(r"^(up|node_[a-z0-9_]+)$")
NOT_METRICS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan",
}  # fmt: skip


def alerts() -> list[dict]:  # type: ignore[type-arg]
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (functions, keywords, labels left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range selectors
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\(?)", expr):
        name, is_call = match.groups()
        if not is_call and name.lower() not in NOT_METRICS:
            names.add(name)
    return names


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, re.MULTILINE):
        found.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return found


def test_the_expression_parser_finds_series_and_nothing_else() -> None:
    expr = """histogram_quantile(0.99, sum by (le) (rate(a_bucket{route!~"x|y"}[5m])))
      / on (instance) sum(increase(b_total{outcome="failed"}[1h])) > 1e3 and up == 1"""
    assert metric_names(expr) == {"a_bucket", "b_total", "up"}


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        assert not os.environ.get("CI"), ".ci/run installs Debian's prometheus for promtool"
        pytest.skip("promtool not installed (apt-get install prometheus)")
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    groups = yaml.safe_load(RULES.read_text())["groups"]
    assert f"SUCCESS: {sum(len(group['rules']) for group in groups)} rules found" in result.stdout


@pytest.mark.django_db(transaction=True)
def test_every_series_an_alert_uses_is_exposed(
    client: Client, receiver: Receiver, alice: Mailbox
) -> None:
    assert client.get("/healthz").status_code == 200
    with smtplib.SMTP("127.0.0.1", receiver.port, timeout=10) as smtp:
        smtp.sendmail("dana@remote.test", ["alice@example.test"], make_email())
    exposed = scrape(client).sample_names
    missing = {
        (rule["alert"], name)
        for rule in alerts()
        for name in metric_names(rule["expr"])
        if name not in exposed and not EXTERNAL.match(name)
    }
    assert not missing
    used = {name for rule in alerts() for name in metric_names(rule["expr"])}
    assert {"up", "node_filesystem_avail_bytes"} <= used  # the parser saw the external ones too
    assert len(used) >= 15


def test_every_alert_has_severity_summary_and_a_runbook_section() -> None:
    runbook = RUNBOOK.read_text()
    section = runbook[runbook.index("\n## Alerts runbook") :]
    section = section[: section.find("\n## ", 1)] if "\n## " in section[1:] else section
    in_section = anchors(section)
    rules = alerts()
    assert len({rule["alert"] for rule in rules}) >= 15
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        path, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert path == "docs/operations.md", rule["alert"]
        assert anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in in_section, f"no runbook heading for {rule['alert']}"
