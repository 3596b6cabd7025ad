"""``logml setup`` against the real Elasticsearch 8 node of tests/services/up (no mocks).

The test node has no X-Pack, so ILM must be reported as skipped (not faked), the templates
must be installed without ``index.lifecycle.name``, and documents must get the mapped types.
"""
import json
import uuid

import pytest

from logml import setup as S
from logml.detect import Anomaly, ServiceWindow
from logml.docs import anomaly_doc, window_doc

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix(es):
    p = f"logmlt{uuid.uuid4().hex[:8]}"
    yield p
    es.indices.delete(index=f"{p}-*", ignore_unavailable=True, allow_no_indices=True)
    for kind in S.KINDS:
        es.options(ignore_status=404).indices.delete_index_template(name=f"{p}-{kind}")


def test_setup_installs_templates_and_reports_ilm_skipped(es, es_url, prefix, tmp_path):
    report = S.setup(es_url, prefix=prefix, out_dir=tmp_path)
    assert report.ok, report.format()
    assert report.server.startswith("Elasticsearch 8.")
    assert report.ilm_supported is False
    text = report.format()
    assert "not supported by this server (no X-Pack" in text
    assert any(s.startswith(f"ILM policy {prefix}-90d") for s in report.skipped)
    assert any("Kibana import" in s for s in report.skipped)

    for kind in S.KINDS:
        name = f"{prefix}-{kind}"
        assert f"index template {name} ({prefix}-{kind}-*): created" in report.installed
        (t,) = es.indices.get_index_template(name=name)["index_templates"]
        body = t["index_template"]
        assert body["index_patterns"] == [f"{prefix}-{kind}-*"]
        assert "lifecycle" not in body["template"]["settings"]["index"]
        assert body["template"]["settings"]["index"]["number_of_replicas"] == "0"  # one node
        assert body["_meta"]["managed_by"] == "logml setup"

    # the Kibana objects file is written for this prefix
    objs = [json.loads(x) for x in (tmp_path / S.OBJECTS_FILE).read_bytes().splitlines()]
    assert report.kibana_file == str(tmp_path / S.OBJECTS_FILE)
    assert {o["attributes"]["title"] for o in objs if o["type"] == "index-pattern"} == \
        {f"{prefix}-{k}-*" for k in S.KINDS}


def test_setup_twice_is_idempotent(es, es_url, prefix):
    first = S.setup(es_url, prefix=prefix)
    assert first.ok, first.format()
    before = {k: es.indices.get_index_template(name=f"{prefix}-{k}")["index_templates"]
              for k in S.KINDS}
    second = S.setup(es_url, prefix=prefix)
    assert second.ok, second.format()
    assert second.skipped == first.skipped
    for kind in S.KINDS:
        assert f"index template {prefix}-{kind} ({prefix}-{kind}-*): unchanged" in \
            second.installed
        assert es.indices.get_index_template(name=f"{prefix}-{kind}")["index_templates"] == \
            before[kind]
    # a changed template (e.g. an older logml's) is updated, not left alone
    es.indices.put_index_template(name=f"{prefix}-windows", index_patterns=[f"{prefix}-windows-*"],
                                  priority=1, template={"mappings": {"properties": {}}})
    third = S.setup(es_url, prefix=prefix)
    assert f"index template {prefix}-windows ({prefix}-windows-*): updated" in third.installed
    assert es.indices.get_index_template(name=f"{prefix}-windows")["index_templates"] == \
        before["windows"]


def test_documents_get_the_mapped_types(es, es_url, prefix):
    assert S.setup(es_url, prefix=prefix).ok
    w = ServiceWindow(service=0, start=1767225600.0, end=1767225660.0, lines=120, errors=7,
                      error_ratio=7 / 120, error_ratio_z=3.25, anomaly_score=61.5,
                      outage_probability=0.42, expected_lines=100.0, expected_error_ratio=0.01)
    a = Anomaly(service=0, type="spike", start=1767225600.0, end=1767225660.0, template=3,
                actual=40.0, expected=5.5, lower=0.0, upper=12.0, zscore=6.1, score=88.0,
                severity="critical", samples=["conn reset by 10.0.0.1"],
                incident_id="2026-01-01T00:00Z")
    windows_index = f"{prefix}-windows-2026.01.01"
    anomalies_index = f"{prefix}-anomalies-2026.01.01"
    wid, wdoc = window_doc(w, "api")
    aid, adoc = anomaly_doc(a, "api", "a1b2c3", "conn reset by <IP>")
    es.index(index=windows_index, id=wid, document=wdoc, refresh=True)
    es.index(index=anomalies_index, id=aid, document=adoc, refresh=True)

    for index, kind in ((windows_index, "windows"), (anomalies_index, "anomalies")):
        mapping = es.indices.get_mapping(index=index)[index]["mappings"]
        got = S.mapped_fields(mapping)
        want = S.mapped_fields(S.mappings(kind))
        assert got == want, f"{index}: {set(got.items()) ^ set(want.items())}"
        assert mapping["dynamic"] in ("false", False)
        settings = es.indices.get_settings(index=index)[index]["settings"]["index"]
        assert settings["number_of_replicas"] == "0" and settings["number_of_shards"] == "1"

    got = S.mapped_fields(es.indices.get_mapping(index=windows_index)[windows_index]["mappings"])
    assert got["logml.lines"] == "long" and got["logml.window.end"] == "date"
    assert got["logml.expected_lines"] == "float"
    assert got["logml.error_ratio"] == "float" and got["service.name"] == "keyword"

    # the mapped types work: range on a date, terms on keywords, a sum on a long
    res = es.search(index=f"{prefix}-anomalies-*", size=0,
                    query={"bool": {"filter": [
                        {"term": {"logml.severity": "critical"}},
                        {"term": {"logml.template.keyword": "conn reset by <IP>"}},
                        {"range": {"logml.window.end": {"gte": "2026-01-01T00:01:00Z"}}},
                        {"range": {"event.severity": {"gte": 3}}}]}},
                    aggs={"types": {"terms": {"field": "logml.anomaly.type"}}})
    assert res["aggregations"]["types"]["buckets"] == [{"key": "spike", "doc_count": 1}]
    res = es.search(index=f"{prefix}-windows-*", size=0,
                    aggs={"lines": {"sum": {"field": "logml.lines"}}})
    assert res["aggregations"]["lines"]["value"] == 120


def test_log_index_maps_logml_fields_and_filebeat_extras(es, es_url, prefix):
    assert S.setup(es_url, prefix=prefix).ok
    index = f"{prefix}-logs-2026.01.01"
    es.index(index=index, id="1", refresh=True, document={
        "@timestamp": "2026-01-01T00:00:01.000Z", "message": "conn reset by 10.0.0.1",
        "service": {"name": "api"}, "host": {"name": "web-1"},
        "log": {"level": "error", "offset": 77, "file": {"path": "/var/log/api.log"}},
        "agent": {"type": "filebeat", "id": "2026-01-01T00:00:00Z"},  # date-like string
        "logml": {"template_id": "a1b2c3", "template": "conn reset by <IP>",
                  "params": ["10.0.0.1"], "truncated": True}})
    got = S.mapped_fields(es.indices.get_mapping(index=index)[index]["mappings"])
    want = S.mapped_fields(S.mappings("logs"))
    assert {k: got.get(k) for k in want} == want
    assert got["agent.type"] == "keyword" and got["agent.id"] == "keyword"  # no date detection
    assert es.count(index=index, query={"term": {"logml.params": "10.0.0.1"}})["count"] == 1


def test_unreachable_server_is_an_error_not_a_crash(tmp_path):
    report = S.setup("http://127.0.0.1:1", prefix="logmlx", out_dir=tmp_path)
    assert not report.ok
    assert "not reachable" in report.errors[0]
    with pytest.raises(S.SetupError, match="cannot reach Elasticsearch at http://127.0.0.1:1: "
                       "Connection refused; start it"):
        S.run_setup("http://127.0.0.1:1", out_dir=tmp_path)


def test_backfill_then_live_switches_refresh_and_replicas_of_the_log_indices(es, es_url,
                                                                             prefix):
    assert S.setup(es_url, prefix=prefix).ok
    es.indices.create(index=f"{prefix}-logs-2026.01.01")
    es.indices.create(index=f"{prefix}-windows-2026.01.01")

    def settings(index):
        return es.indices.get_settings(index=index)[index]["settings"]["index"]

    report = S.ingest_mode(es_url, "backfill", prefix=prefix)
    assert report.ok, report.format()
    assert settings(f"{prefix}-logs-2026.01.01")["refresh_interval"] == "-1"
    assert settings(f"{prefix}-windows-2026.01.01").get("refresh_interval") is None
    es.indices.create(index=f"{prefix}-logs-2026.01.02")  # a new day during the backfill
    assert settings(f"{prefix}-logs-2026.01.02")["refresh_interval"] == "-1"
    assert settings(f"{prefix}-logs-2026.01.02")["number_of_replicas"] == "0"
    assert "not searchable until" in report.format()

    report = S.ingest_mode(es_url, "live", prefix=prefix)
    assert report.ok, report.format()
    for day in ("01", "02"):
        assert settings(f"{prefix}-logs-2026.01.{day}")["refresh_interval"] == S.LIVE_REFRESH
    es.indices.create(index=f"{prefix}-logs-2026.01.03")
    assert settings(f"{prefix}-logs-2026.01.03")["refresh_interval"] == S.LIVE_REFRESH
    # back to what setup installed: a second setup finds it unchanged
    again = S.setup(es_url, prefix=prefix)
    assert f"index template {prefix}-logs ({prefix}-logs-*): unchanged" in again.installed


def test_ingest_mode_needs_the_templates(es_url, prefix):
    report = S.ingest_mode(es_url, "backfill", prefix=prefix)
    assert not report.ok and "run logml setup first" in report.format()


def test_a_template_elasticsearch_refuses_is_one_line_exit_2(es, es_url, prefix, tmp_path):
    """Someone else's template with logml's priority over the same indices: Elasticsearch
    refuses logml's; the operator gets the report on stdout and one line on stderr that
    names the template and Elasticsearch's reason."""
    import subprocess
    import sys
    blocker = f"{prefix}-blocker"
    es.indices.put_index_template(name=blocker, index_patterns=[f"{prefix}-logs-*"],
                                  priority=S.TEMPLATE_PRIORITY)
    try:
        p = subprocess.run([sys.executable, "-m", "logml.cli", "setup", "--es", es_url,
                            "--prefix", prefix, "--out", str(tmp_path)],
                           capture_output=True, text=True, timeout=120)
    finally:
        es.indices.delete_index_template(name=blocker)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert lines[0].startswith(f"logml: error: index template {prefix}-logs: Elasticsearch "
                               f"answered 400"), lines[0]
    assert blocker in lines[0] and "run logml setup again" in lines[0]
    assert f"index template {prefix}-windows ({prefix}-windows-*): created" in p.stdout
