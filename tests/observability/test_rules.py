"""The Prometheus rules, their unit tests and the alert manager definition, checked by the real
tools (promtool 2.42, amtool 0.25), and the metric names they read against the README's list."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from infra.components.observability.prometheus import alert_manager_definition
from tests.observability.tools import OBSERVABILITY, ROOT, run

RULES = OBSERVABILITY / "rules"
RULE_FILES = [RULES / "recording.yml", RULES / "alerts.yml"]
UNIT_TESTS = RULES / "tests" / "alerts.test.yml"
TOPIC = "arn:aws:sns:us-east-1:123456789012:agent-platform-dev-alerts"


def alerts() -> dict[str, dict]:
    groups = yaml.safe_load((RULES / "alerts.yml").read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def recorded() -> set[str]:
    groups = yaml.safe_load((RULES / "recording.yml").read_text())["groups"]
    return {rule["record"] for group in groups for rule in group["rules"]}


def test_the_rule_files_pass_promtool_check_rules():
    result = run("promtool", "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout  # recording.yml
    assert "SUCCESS: 8 rules found" in result.stdout  # alerts.yml


def test_a_broken_rule_fails_promtool(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text((RULES / "alerts.yml").read_text().replace("> 0.05", "> > 0.05", 1))
    assert run("promtool", "check", "rules", str(broken)).returncode != 0


def test_every_alert_passes_its_unit_tests():
    result = run("promtool", "test", "rules", str(UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    cases = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    fires, quiet = set(), set()
    for case in cases:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    assert fires == quiet == set(alerts())


def test_the_unit_tests_fail_when_an_alert_no_longer_fires(tmp_path):
    # The same tests against alerts whose thresholds were raised out of reach.
    rules = tmp_path / "rules"
    (rules / "tests").mkdir(parents=True)
    (rules / "recording.yml").write_text((RULES / "recording.yml").read_text())
    raised = re.sub(r"> 0\.05\b", "> 0.99", (RULES / "alerts.yml").read_text())
    (rules / "alerts.yml").write_text(raised)
    (rules / "tests" / "alerts.test.yml").write_text(UNIT_TESTS.read_text())
    result = run("promtool", "test", "rules", str(rules / "tests" / "alerts.test.yml"))
    assert result.returncode != 0
    assert "AgentApiErrorRatioHigh" in result.stdout + result.stderr


def test_every_alert_has_a_severity_a_summary_and_a_first_response_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name, rule in alerts().items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert f"`{name}`" in readme, f"README 'Operations' does not explain {name}"


def test_the_hpa_alert_matches_the_scale_target_not_the_hpa_name():
    expr = alerts()["AgentScalingAtMaximum"]["expr"]
    assert 'scaletargetref_name=~"agent-api|agent-worker"' in expr
    assert 'horizontalpodautoscaler="' not in expr and "horizontalpodautoscaler=~" not in expr


def _definition(tmp_path: Path, topic: str = TOPIC) -> Path:
    document = yaml.safe_load(alert_manager_definition(topic, "us-east-1"))
    for name, text in document["template_files"].items():
        (tmp_path / name).write_text(text)
    config = tmp_path / "alertmanager.yml"
    config.write_text(document["alertmanager_config"])
    return config


def test_the_alert_manager_definition_passes_amtool(tmp_path):
    result = run("amtool", "check-config", str(_definition(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 receivers" in result.stdout and "1 templates" in result.stdout


def test_amtool_refuses_a_definition_without_its_topic(tmp_path):
    result = run("amtool", "check-config", str(_definition(tmp_path, topic="")))
    assert result.returncode != 0


def test_the_alert_manager_routes_everything_to_sns_only():
    config = yaml.safe_load(
        yaml.safe_load(alert_manager_definition(TOPIC, "us-east-1"))["alertmanager_config"]
    )
    (receiver,) = config["receivers"]
    assert set(receiver) == {"name", "sns_configs"}
    assert config["route"]["repeat_interval"] == "4h"  # AMP allows at most 5 days
    assert all(r["receiver"] == receiver["name"] for r in config["route"]["routes"])


# --- metric names: the README lists what the rules and dashboards read ---------------------------

_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "le", "inf", "nan",
}  # fmt: skip
_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_names(expr: str) -> set[str]:
    """Metric names an expression reads (label matchers, groupings and functions left out)."""
    text = re.sub(r'"[^"]*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        name, rest = match.group(0), text[match.end() :].lstrip()
        if rest.startswith("(") or name.lower() in _KEYWORDS or name.startswith("$"):
            continue
        if text[match.start() - 1 : match.start()] == "$":
            continue
        names.add(name)
    return names


def readme_metrics() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Metrics the rules read", 1)[1].split("\n### ", 1)[0]
    return set(re.findall(r"^\| `([a-z_:]+)`", section, re.MULTILINE))


def _base(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def grafana_exprs() -> list[str]:
    dashboard = json.loads((OBSERVABILITY / "grafana" / "agent-platform.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    variables = dashboard["templating"]["list"]
    exprs += [v["definition"].removeprefix("label_values(").removesuffix(", cluster)")
              for v in variables if v["type"] == "query"]  # fmt: skip
    return exprs


def test_rules_and_dashboard_read_only_metrics_the_readme_lists():
    listed, own = readme_metrics(), recorded()
    assert len(listed) >= 20
    exprs = [r["expr"] for r in alerts().values()]
    exprs += [
        r["expr"]
        for g in yaml.safe_load((RULES / "recording.yml").read_text())["groups"]
        for r in g["rules"]
    ]
    exprs += grafana_exprs()
    read = {_base(n) for e in exprs for n in metric_names(e)} - own
    assert read <= listed, f"not in README 'Metrics the rules read': {sorted(read - listed)}"


def test_the_metric_name_reader_sees_through_labels_and_functions():
    expr = 'sum by (cluster, le) (rate(x_seconds_bucket{route="/a/{b}"}[5m])) / on (pod) y_total'
    assert metric_names(expr) == {"x_seconds_bucket", "y_total"}


def test_every_dashboard_query_is_valid_promql(tmp_path):
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"panel_{i}", "expr": e.replace("$cluster", "agent-platform-dev")}
                    for i, e in enumerate(grafana_exprs())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.yml"
    path.write_text(yaml.safe_dump(rules))
    result = run("promtool", "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dashboard_panel_reads_the_datasource_and_cluster_variables():
    dashboard = json.loads((OBSERVABILITY / "grafana" / "agent-platform.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 15
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"] and all('cluster="$cluster"' in t["expr"] for t in panel["targets"])
    names = [v["name"] for v in dashboard["templating"]["list"]]
    assert names == ["datasource", "cluster"]
