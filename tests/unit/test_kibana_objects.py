"""Kibana saved objects and index templates of ``logml setup`` agree with each other and
with the documents logml writes (no services needed).

Every field a saved search shows, sorts on or queries is mapped in the template of its data
view's pattern; every field docs.py puts into window, anomaly and log documents is mapped
explicitly (none left to dynamic mapping or unindexed).
"""
import json
import re

import orjson
import pytest

from logml import setup as S
from logml.decode import Decoder
from logml.detect import Anomaly, ServiceWindow
from logml.docs import anomaly_doc, log_doc, window_doc

TEMPLATES = S.index_templates("logml")


def _objects():
    return [json.loads(line) for line in S.PACKAGED_OBJECTS.read_bytes().splitlines()]


def _mapped(kind: str) -> dict[str, str]:
    return S.mapped_fields(TEMPLATES[f"logml-{kind}"]["template"]["mappings"])


def _kind_of_pattern(pattern: str) -> str:
    for name, body in TEMPLATES.items():
        if pattern in body["index_patterns"]:
            return name.removeprefix("logml-")
    raise AssertionError(f"no index template for the data view pattern {pattern!r}")


def _leaves(doc: dict, path: str = "") -> dict:
    out = {}
    for k, v in doc.items():
        if isinstance(v, dict):
            out.update(_leaves(v, f"{path}{k}."))
        else:
            out[f"{path}{k}"] = v
    return out


def _kql_fields(query: str) -> set[str]:
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', query)
    return set(re.findall(r"([A-Za-z@_][\w.@]*)\s*(?::|>=|<=|>|<)", unquoted))


def test_packaged_file_is_generated_from_the_code():
    assert S.PACKAGED_OBJECTS.read_bytes() == S.kibana_ndjson("logml"), (
        "logml/kibana/logml-objects.ndjson is stale; regenerate it with: python -c "
        "'from logml.setup import write_packaged_objects; write_packaged_objects()'")


def test_objects_are_complete_and_references_resolve():
    objs = _objects()
    by_id = {(o["type"], o["id"]): o for o in objs}
    assert len(by_id) == len(objs), "duplicate saved-object ids"
    views = [o for o in objs if o["type"] == "index-pattern"]
    assert sorted(v["attributes"]["title"] for v in views) == \
        ["logml-anomalies-*", "logml-logs-*", "logml-windows-*"]
    assert all(v["attributes"]["timeFieldName"] == "@timestamp" for v in views)
    titles = {o["attributes"]["title"] for o in objs}
    assert {"logml critical anomalies", "logml anomalies by service", "logml anomalies"} <= titles
    for o in objs:
        for ref in o["references"]:
            assert (ref["type"], ref["id"]) in by_id, f"{o['id']} refers to missing {ref}"
    (dash,) = [o for o in objs if o["type"] == "dashboard"]
    panels = json.loads(dash["attributes"]["panelsJSON"])
    refs = {r["name"]: r for r in dash["references"]}
    assert len(panels) >= 3
    for p in panels:
        assert p["type"] == "search" and p["gridData"]["i"] == p["panelIndex"]
        ref = refs[f"{p['panelIndex']}:{p['panelRefName']}"]
        assert ref["type"] == "search" and ("search", ref["id"]) in by_id
        g = p["gridData"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 48 and g["h"] > 0
    json.loads(dash["attributes"]["optionsJSON"])
    json.loads(dash["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])


def test_every_field_the_saved_searches_use_is_mapped():
    objs = _objects()
    views = {o["id"]: o for o in objs if o["type"] == "index-pattern"}
    searches = [o for o in objs if o["type"] == "search"]
    assert searches
    for s in searches:
        (ref,) = s["references"]
        assert ref["name"] == "kibanaSavedObjectMeta.searchSourceJSON.index"
        kind = _kind_of_pattern(views[ref["id"]]["attributes"]["title"])
        mapped = _mapped(kind)
        source = json.loads(s["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        assert source["indexRefName"] == ref["name"]
        assert source["query"]["language"] == "kuery"
        used = set(s["attributes"]["columns"]) | {f for f, _ in s["attributes"]["sort"]} \
            | _kql_fields(source["query"]["query"])
        missing = sorted(f for f in used if f not in mapped)
        assert not missing, f"{s['attributes']['title']!r} uses unmapped {kind} fields {missing}"
        for f, _ in s["attributes"]["sort"]:
            assert mapped[f] in ("date", "keyword", "long", "float", "double"), f


def test_kql_field_extraction():
    assert _kql_fields('a.b : "x: y" and c >= 3 or not d.e < 1') == {"a.b", "c", "d.e"}


def _window():
    return ServiceWindow(service=0, start=1767225600.0, end=1767225660.0, lines=120, errors=7,
                         error_ratio=7 / 120, error_ratio_z=3.25, anomaly_score=61.5,
                         outage_probability=0.42, expected_lines=100.0,
                         expected_error_ratio=0.01)


def _anomaly(template: int = 3, kind: str = "spike"):
    return Anomaly(service=0, type=kind, start=1767225600.0, end=1767225660.0,
                   template=template, actual=40.0, expected=5.5, lower=0.0, upper=12.0,
                   zscore=6.1, score=88.0, severity="critical",
                   samples=["conn reset by 10.0.0.1", "conn reset by 10.0.0.2"],
                   incident_id="2026-01-01T00:00Z")


def _assert_all_mapped(kind: str, doc: dict):
    mapped = _mapped(kind)
    leaves = _leaves(doc)
    missing = sorted(f for f in leaves if f not in mapped)
    assert not missing, f"{kind} document fields not in the {kind} template: {missing}"
    return mapped, leaves


def test_window_docs_are_fully_mapped():
    import dataclasses
    _id, doc = window_doc(dataclasses.replace(_window(), covered=0.25), "api")
    mapped, leaves = _assert_all_mapped("windows", doc)
    assert mapped["logml.window.covered"] == "float"  # the window an input ends inside
    assert mapped["logml.lines"] == "long" and mapped["logml.window.end"] == "date"
    assert mapped["logml.error_ratio"] == "float"
    # DESIGN.md's key fields are all there
    for f in ("service.name", "@timestamp", "logml.window.end", "logml.lines", "logml.errors",
              "logml.error_ratio", "logml.anomaly_score", "logml.outage_probability"):
        assert f in leaves and f in mapped


@pytest.mark.parametrize("template_id,template", [("a1b2c3", "conn reset by <IP>"), (None, None)])
def test_anomaly_docs_are_fully_mapped(template_id, template):
    kind = "spike" if template_id else "error_rate"
    _id, doc = anomaly_doc(_anomaly(3 if template_id else -1, kind), "api", template_id, template,
                           ["b2c3d4", "c3d4e5"] if template_id else None)  # merged from
    mapped, leaves = _assert_all_mapped("anomalies", doc)
    assert ("logml.template_parents" in leaves) == bool(template_id)
    for f in ("service.name", "@timestamp", "logml.anomaly.type", "logml.template_id",
              "logml.template", "logml.actual", "logml.expected", "logml.lower", "logml.upper",
              "logml.zscore", "logml.anomaly_score", "event.severity", "logml.severity",
              "logml.samples"):
        assert f in leaves and f in mapped, f
    assert mapped["event.severity"] == "long" and mapped["logml.severity"] == "keyword"
    assert mapped["logml.anomaly.type"] == "keyword" and mapped["logml.template.keyword"]


def test_log_docs_logml_and_core_ecs_fields_are_mapped_explicitly():
    event = {"@timestamp": "2026-01-01T00:00:01.250Z", "message": "conn reset by 10.0.0.1",
             "service": {"name": "api"}, "host": {"name": "web-1"},
             "log": {"level": "ERROR", "offset": 1234, "file": {"path": "/var/log/api.log"}},
             "agent": {"type": "filebeat", "version": "8.19.0"}, "ecs": {"version": "8.0.0"},
             "input": {"type": "filestream"}}
    events, errors = Decoder().decode([orjson.dumps(event)], [0], "test")
    assert not errors and len(events) == 1
    _id, doc = log_doc(events, 0, "a1b2c3", "conn reset by <IP>", ["10.0.0.1"], "test",
                       ["b2c3d4"])  # a template merged from another
    doc["logml"]["truncated"] = True  # set on truncated lines only
    mapped = _mapped("logs")
    leaves = _leaves(doc)
    logml_fields = {f for f in leaves if f.startswith("logml.")}
    assert logml_fields == {"logml.template_id", "logml.template", "logml.params",
                            "logml.template_parents", "logml.truncated"}
    for f in logml_fields | {"@timestamp", "message", "service.name", "host.name", "log.level",
                             "log.file.path"}:
        assert f in mapped, f
    # the Filebeat extras (agent.*, ecs.*, input.*) are left to dynamic mapping: as keywords
    m = TEMPLATES["logml-logs"]["template"]["mappings"]
    assert m["dynamic"] is True and m["date_detection"] is False
    assert m["dynamic_templates"][0]["strings_as_keyword"]["mapping"]["type"] == "keyword"


def test_windows_and_anomalies_templates_do_not_map_dynamically():
    for kind in ("windows", "anomalies"):
        assert TEMPLATES[f"logml-{kind}"]["template"]["mappings"]["dynamic"] is False


def test_templates_use_no_x_pack_only_types_and_ilm_only_when_asked():
    allowed = {"date", "text", "keyword", "long", "float", "double", "boolean"}
    for body in TEMPLATES.values():
        types = set(S.mapped_fields(body["template"]["mappings"]).values())
        assert types <= allowed, types - allowed
        assert "lifecycle" not in body["template"]["settings"]["index"]
    with_ilm = S.index_templates("logml", replicas=0, ilm_policy="logml-90d")
    for body in with_ilm.values():
        assert body["template"]["settings"]["index"]["lifecycle"] == {"name": "logml-90d"}
        assert body["template"]["settings"]["index"]["number_of_replicas"] == 0
    assert S.ilm_policy_body()["policy"]["phases"]["delete"]["min_age"] == "90d"


def test_custom_prefix_changes_patterns_and_ids_consistently():
    objs = S.kibana_objects("acme")
    assert {o["attributes"]["title"] for o in objs if o["type"] == "index-pattern"} == \
        {"acme-logs-*", "acme-windows-*", "acme-anomalies-*"}
    ids = {o["id"] for o in objs}
    for o in objs:
        assert o["id"].startswith("acme-")
        assert all(r["id"] in ids for r in o["references"])
    assert set(S.index_templates("acme")) == {"acme-logs", "acme-windows", "acme-anomalies"}


def test_kibana_import_request_format():
    ndjson = S.kibana_ndjson("logml")
    req = S.kibana_import_request("http://kibana.example:5601/", ndjson)
    assert req.full_url == "http://kibana.example:5601/api/saved_objects/_import?overwrite=true"
    assert req.get_method() == "POST"
    headers = {k.lower(): v for k, v in req.header_items()}
    assert headers["kbn-xsrf"] == "true"
    ctype = headers["content-type"]
    assert ctype.startswith("multipart/form-data; boundary=")
    boundary = ctype.split("boundary=", 1)[1].encode()
    body = req.data
    assert body.startswith(b"--" + boundary + b"\r\n")
    assert body.endswith(b"\r\n--" + boundary + b"--\r\n")
    head, rest = body.split(b"\r\n\r\n", 1)
    assert b'Content-Disposition: form-data; name="file"; filename="logml-objects.ndjson"' in head
    assert rest[:-len(b"\r\n--" + boundary + b"--\r\n")] == ndjson
    assert boundary not in ndjson


def test_report_format_lists_installed_and_skipped():
    r = S.SetupReport("http://es:9200", server="Elasticsearch 8.19.21",
                      installed=["index template logml-logs (logml-logs-*): created"],
                      skipped=["ILM policy logml-90d: not supported by this server (no X-Pack)"])
    text = r.format()
    assert "installed:" in text and "skipped:" in text and "not supported" in text
    assert text.endswith("result: ok") and r.ok
    r.errors.append("boom")
    assert not r.ok and "1 error(s)" in r.format()
