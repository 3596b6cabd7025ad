"""prometheus/: alert and recording rules, their promtool unit tests, the Alertmanager config and
the Grafana dashboard.

Integration tests use the real tools of tests/services/up prometheus/alertmanager (Debian's
prometheus 2.42 with promtool, alertmanager 0.25 with amtool): promtool check and test the rules,
amtool checks the Alertmanager config, a scratch Alertmanager on the repo config proves the
inhibitions, and the running test Prometheus (which loads prometheus/rules/*.yml) evaluates the
rules and every dashboard query. The tests without the integration mark read the files as text
or JSON (PyYAML is not a dependency).
"""
import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from servicekit import services

REPO = Path(__file__).resolve().parents[1]
PROM = REPO / "prometheus"
RULES = PROM / "rules" / "logml.yml"
RULE_TESTS = PROM / "tests" / "logml_test.yml"
ALERTMANAGER_YML = PROM / "alertmanager.yml"
DASHBOARD = PROM / "grafana" / "logml-dashboard.json"

ALERTS = {
    "LogmlLogAnomalyWarning": "warning",
    "LogmlLogAnomalyCritical": "critical",
    "LogmlOutagePredicted": "critical",
    "LogmlErrorRatioHigh": "warning",
    "LogmlStalled": "critical",
    "LogmlConsumerLagHigh": "warning",
    "LogmlKafkaUnreachable": "critical",
    "LogmlNoMetrics": "critical",
    "LogmlDeadLetters": "warning",
    "LogmlPartitionsWaitingForState": "critical",
}



def run(*cmd, timeout=120, stdout_only=False) -> str:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{out}"
    return proc.stdout if stdout_only else out


def alert_blocks() -> dict[str, str]:
    """alertname -> the text of its rule (from `- alert:` to the next rule)."""
    text = RULES.read_text()
    parts = re.split(r"(?m)^\s*- (?=alert:|record:)", text)
    blocks = {}
    for part in parts:
        m = re.match(r"alert:\s*(\S+)", part)
        if m:
            blocks[m.group(1)] = part
    return blocks


# ------------------------------------------------------------------------ static checks

def test_every_alert_has_severity_summary_runbook_and_kibana_link():
    blocks = alert_blocks()
    assert set(blocks) == set(ALERTS)
    comment = RULES.read_text().split("groups:")[0]
    for name, block in blocks.items():
        assert re.search(rf"(?m)^\s+severity: {ALERTS[name]}\s*$", block), name
        for key in ("summary", "description", "runbook_url", "kibana_url"):
            assert re.search(rf"(?m)^\s+{key}:", block), f"{name} has no {key}"
        anchor = name.lower()
        assert f"docs/runbook.md#{anchor}" in block, name
        assert f"#{anchor}" in comment, f"runbook anchor of {name} not listed in the header"
        kibana = re.search(r"kibana_url: (.*)$", block, re.M).group(1).strip()
        assert kibana.startswith("http://localhost:5601/app/discover#/?"), kibana
        assert "index:'logml-anomalies'" in kibana  # data view id of `logml setup`
        literal = re.sub(r"\{\{.*?\}\}", "", kibana)  # the URL outside template actions
        assert not re.search(r'[\s"<>{}]', literal), f"{name}: kibana_url is not URL-encoded"
        summary = re.search(r"summary: >-\n(.*?)\n\s+description:", block, re.S).group(1)
        assert "$value" in summary, f"{name}: summary does not show the actual value"
        assert "expected" in summary, f"{name}: summary does not show what was expected"
        if "$labels.service" in block.split("annotations:")[0] or name.startswith(
                ("LogmlLog", "LogmlOutage", "LogmlErrorRatio")):
            assert "service.name:%22{{ $labels.service | urlquery }}%22" in kibana, name


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    text = RULE_TESTS.read_text()
    cases = re.findall(r"alertname: (\S+)\n\s+exp_alerts:(.*?)(?=\n\s+- eval_time:|\n  - name:|\Z)",
                       text, re.S)
    firing = {name for name, body in cases if "exp_labels" in body}
    quiet = {name for name, body in cases if body.strip().startswith("[]")}
    assert firing == set(ALERTS), set(ALERTS) ^ firing
    assert quiet == set(ALERTS), set(ALERTS) ^ quiet
    assert "promql_expr_test:" in text and "logml:lines:rate5m" in text
    for name, body in cases:
        if "exp_labels" in body:
            assert "exp_annotations" in body and "summary:" in body, name


def test_alertmanager_groups_by_service_and_inhibits_warnings():
    text = ALERTMANAGER_YML.read_text()
    assert re.search(r"(?m)^  group_by: \[service, alertname\]", text)
    assert re.search(r"(?m)^  receiver: default$", text)
    assert "webhook_configs:" in text
    assert "target_matchers: ['alertname=\"LogmlLogAnomalyWarning\"'" in text
    assert "LogmlLogAnomalyCritical" in text


def test_prometheus_config_loads_the_rules():
    text = (PROM / "prometheus.yml").read_text()
    assert re.search(r"(?m)^rule_files:\n  - rules/\*\.yml$", text)
    assert re.search(r"(?m)^  - job_name: logml$", text)


def _dashboard_targets(dash: dict):
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            yield panel, target


def test_grafana_dashboard_structure():
    dash = json.loads(DASHBOARD.read_text())
    assert 36 <= dash["schemaVersion"] <= 41
    assert dash["uid"] and dash["title"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    svc = variables["service"]
    assert svc["definition"] == "label_values(logml_lines_total, service)"
    assert svc["multi"] and svc["includeAll"]
    assert svc["datasource"]["uid"] == "${DS_PROMETHEUS}"
    titles = {p["title"] for p in dash["panels"]}
    for wanted in ("Anomaly score per service", "Outage probability", "Error ratio vs expected",
                   "Lines per window vs expected", "Anomalies by type and severity",
                   "Top template z-scores", "New templates", "Consumer lag",
                   "Elasticsearch bulk latency p95", "Dead letters and invalid records"):
        assert wanted in titles, wanted
    exprs = " ".join(t["expr"] for _, t in _dashboard_targets(dash))
    for metric in ("logml_anomaly_score", "logml_outage_probability", "logml_error_ratio",
                   "logml_error_ratio_expected", "logml_window_lines",
                   "logml_window_lines_expected", "logml_anomalies_total",
                   "logml_template_zscore", "logml_new_templates_total", "logml_consumer_lag",
                   "logml_elasticsearch_bulk_seconds_bucket", "logml_records_dead_lettered_total"):
        assert re.search(rf"\b{metric}\b", exprs), metric
    ids, cells = set(), set()
    for panel in dash["panels"]:
        assert panel["id"] not in ids
        ids.add(panel["id"])
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {panel['title']!r} overlaps another"
                cells.add((x, y))
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    for panel, target in _dashboard_targets(dash):
        assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        if "service" in target["expr"] and "logml_consumer_lag" not in target["expr"]:
            assert 'service=~"$service"' in target["expr"], panel["title"]


# ------------------------------------------------------------------------ with the real tools

@pytest.fixture(scope="module")
def promtool():
    return services("prometheus")["PROMTOOL_BIN"]


@pytest.fixture(scope="module")
def amtool():
    am = services("alertmanager").get("AMTOOL_BIN")
    assert am, "amtool is not installed (it ships in Debian's prometheus-alertmanager)"
    return am


@pytest.mark.integration
def test_promtool_check_rules(promtool):
    out = run(promtool, "check", "rules", *sorted((PROM / "rules").glob("*.yml")))
    assert "SUCCESS" in out


@pytest.mark.integration
def test_promtool_unit_tests(promtool):
    out = run(promtool, "test", "rules", RULE_TESTS)
    assert "SUCCESS" in out


@pytest.mark.integration
def test_promtool_check_config(promtool):
    out = run(promtool, "check", "config", PROM / "prometheus.yml")
    assert "SUCCESS" in out and "rules/logml.yml" in out


@pytest.mark.integration
def test_amtool_check_config(amtool):
    out = run(amtool, "check-config", ALERTMANAGER_YML)
    assert "SUCCESS" in out


@pytest.mark.integration
def test_amtool_routes(amtool):
    out = run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_YML}",
              "alertname=LogmlLogAnomalyCritical", "service=checkout", "severity=critical",
              stdout_only=True)
    assert out.strip() == "default"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(url: str, body=None, timeout=5):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


@pytest.fixture
def repo_alertmanager(amtool, tmp_path):
    """A scratch Alertmanager on a free loopback port running prometheus/alertmanager.yml."""
    binary = next((b for b in (Path(amtool).with_name("prometheus-alertmanager"),
                               Path(amtool).with_name("alertmanager")) if b.exists()), None)
    assert binary, f"no alertmanager binary beside {amtool}"
    port = _free_port()
    log = open(tmp_path / "alertmanager.log", "w")
    proc = subprocess.Popen(
        [str(binary), f"--config.file={ALERTMANAGER_YML}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
         "--log.level=warn"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=2).read()
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, (tmp_path / "alertmanager.log").read_text()
                assert time.monotonic() < deadline, "alertmanager did not become ready"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.integration
def test_repo_alertmanager_inhibits_warnings_of_the_same_service(repo_alertmanager):
    def alert(name, service, severity):
        return {"labels": {"alertname": name, "service": service, "severity": severity,
                           "job": "logml", "instance": "a:8000"},
                "annotations": {"summary": f"{name} {service}"}}

    _http(f"{repo_alertmanager}/api/v2/alerts", [
        alert("LogmlLogAnomalyCritical", "checkout", "critical"),
        alert("LogmlLogAnomalyWarning", "checkout", "warning"),   # inhibited
        alert("LogmlLogAnomalyWarning", "search", "warning"),     # other service: active
        alert("LogmlOutagePredicted", "cart", "critical"),
        alert("LogmlLogAnomalyWarning", "cart", "warning"),       # inhibited
        alert("LogmlErrorRatioHigh", "checkout", "warning"),      # names the cause: active
    ])
    want = {("LogmlLogAnomalyCritical", "checkout"): "active",
            ("LogmlLogAnomalyWarning", "checkout"): "suppressed",
            ("LogmlLogAnomalyWarning", "search"): "active",
            ("LogmlOutagePredicted", "cart"): "active",
            ("LogmlLogAnomalyWarning", "cart"): "suppressed",
            ("LogmlErrorRatioHigh", "checkout"): "active"}
    deadline = time.monotonic() + 30
    while True:
        got = {(a["labels"]["alertname"], a["labels"]["service"]): a["status"]
               for a in _http(f"{repo_alertmanager}/api/v2/alerts")}
        states = {k: v["state"] for k, v in got.items()}
        if states == want or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert states == want
    assert got[("LogmlLogAnomalyWarning", "checkout")]["inhibitedBy"]
    groups = _http(f"{repo_alertmanager}/api/v2/alerts/groups")
    assert {tuple(sorted(g["labels"])) for g in groups} == {("alertname", "service")}


def _query(base: str, promql: str):
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"{}") or {"status": "error", "error": str(exc)}


@pytest.mark.integration
def test_running_prometheus_loads_and_evaluates_the_rules():
    base = services("prometheus")["PROMETHEUS_URL"]
    deadline = time.monotonic() + 60
    while True:
        with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=5) as resp:
            groups = json.load(resp)["data"]["groups"]
        ours = [g for g in groups if g["file"].endswith("/prometheus/rules/logml.yml")]
        rules = {r["name"]: r for g in ours for r in g["rules"]}
        evaluated = all(r.get("lastEvaluation", "").startswith("2") and
                        not r["lastEvaluation"].startswith("0001") for r in rules.values())
        if (set(ALERTS) <= set(rules) and evaluated) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {g["name"] for g in ours} == {"logml.recording", "logml.anomalies", "logml.health"}
    assert set(ALERTS) <= set(rules)
    assert "logml:lines:rate5m" in rules
    bad = {n: r.get("lastError") for n, r in rules.items() if r["health"] != "ok"}
    assert not bad, bad
    for name, severity in ALERTS.items():
        assert rules[name]["labels"]["severity"] == severity


@pytest.mark.integration
def test_dashboard_queries_are_valid_promql():
    base = services("prometheus")["PROMETHEUS_URL"]
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for _, t in _dashboard_targets(dash)]
    exprs += [a["expr"] for a in dash["annotations"]["list"] if "expr" in a]
    for expr in exprs:
        promql = expr.replace("$service", ".*").replace("$__rate_interval", "1m")
        body = _query(base, promql)
        assert body.get("status") == "success", f"{expr}: {body.get('error')}"
