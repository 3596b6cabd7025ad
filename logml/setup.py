"""``logml setup``: index templates, the ILM policy and the Kibana saved objects.

Like ``filebeat setup``, run once per cluster (and again after an upgrade; it is
idempotent). What the server cannot do is skipped and said so, never faked:

* GET / gives the version; ``GET _xpack`` tells whether ILM exists (a server without
  X-Pack answers 400 there);
* composable index templates for ``<prefix>-logs-*``, ``<prefix>-windows-*`` and
  ``<prefix>-anomalies-*`` with explicit mappings (ECS names, ``logml.*``); replicas 0 on
  a one-data-node cluster unless told otherwise;
* the ILM policy ``<prefix>-90d`` (delete 90 days after an index is created; the indices
  are daily, so there is no rollover) and ``index.lifecycle.name`` in the templates, only
  where ILM exists;
* Kibana saved objects (data views, saved searches, a dashboard made of saved-search
  panels) as an NDJSON file, and imported through Kibana's API when a Kibana URL is given.

The mappings and saved objects are built here, in code; ``logml/kibana/logml-objects.ndjson``
is the packaged copy for the default prefix (a unit test keeps it equal to the code).
"""
from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("logs", "windows", "anomalies")
ILM_DAYS = 90
TEMPLATE_PRIORITY = 200
TEMPLATE_VERSION = 3  # bump when the mappings change
LIVE_REFRESH = "5s"  # per-line documents searchable within 5 s, refreshes kept cheap
PACKAGED_OBJECTS = Path(__file__).resolve().parent / "kibana" / "logml-objects.ndjson"
OBJECTS_FILE = "kibana-objects.ndjson"

# --------------------------------------------------------------------------- mappings

_KW = {"type": "keyword", "ignore_above": 1024}
_TEXT_KW = {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 2048}}}


def _common_properties() -> dict:
    """ECS fields every logml document may carry."""
    return {
        "@timestamp": {"type": "date"},
        "message": {"type": "text"},
        "service": {"properties": {"name": _KW}},
        "host": {"properties": {"name": _KW}},
        "event": {"properties": {"kind": _KW, "dataset": _KW, "severity": {"type": "long"}}},
    }


def mappings(kind: str) -> dict:
    """The explicit mapping of one index kind (logs, windows, anomalies)."""
    props = _common_properties()
    if kind == "logs":
        # Filebeat/Logstash events carry more ECS fields than logml knows (agent.*, input.*,
        # ecs.*, tags, ...): they are mapped dynamically, strings as keywords like Filebeat
        # does; date detection is off so a string field never flips to a date.
        # Per-line documents are many and filtered, rarely ranked: the message keeps no
        # norms (a byte per document saved, and the work to write it). The template is
        # an exact value many lines share (full-text search on templates is what the
        # anomalies index is for): a keyword, not analysed per line. Params are an array
        # of keywords (exact values: "which ids failed").
        props["message"] = {"type": "text", "norms": False}
        props["log"] = {"properties": {"level": _KW, "logger": _KW, "offset": {"type": "long"},
                                       "file": {"properties": {"path": _KW}}}}
        props["logml"] = {"properties": {
            "template_id": _KW, "template": {"type": "keyword", "ignore_above": 2048},
            "template_parents": _KW, "params": _KW, "truncated": {"type": "boolean"}}}
        return {"dynamic": True, "date_detection": False,
                "dynamic_templates": [{"strings_as_keyword": {
                    "match_mapping_type": "string", "mapping": _KW}}],
                "properties": props}
    if kind == "windows":
        props["logml"] = {"properties": {
            "window": {"properties": {"end": {"type": "date"}, "seconds": {"type": "float"},
                                      "covered": {"type": "float"}}},
            "lines": {"type": "long"}, "expected_lines": {"type": "float"},
            "errors": {"type": "long"},
            "error_ratio": {"type": "float"}, "error_ratio_zscore": {"type": "float"},
            "anomaly_score": {"type": "float"}, "outage_probability": {"type": "float"}}}
    elif kind == "anomalies":
        props["logml"] = {"properties": {
            "anomaly": {"properties": {"type": _KW}},
            "template_id": _KW, "template": _TEXT_KW, "template_parents": _KW,
            "actual": {"type": "double"}, "expected": {"type": "double"},
            "lower": {"type": "double"}, "upper": {"type": "double"},
            "zscore": {"type": "double"}, "anomaly_score": {"type": "float"},
            "probability": {"type": "double"}, "severity": _KW, "samples": {"type": "text"}, "incident_id": _KW,
            "window": {"properties": {"end": {"type": "date"}}}}}
    else:
        raise ValueError(f"unknown index kind {kind!r}; known: {KINDS}")
    # logml writes these documents itself: a field not mapped here is kept in _source but
    # not indexed (dynamic: false), so a new field never breaks indexing; a unit test checks
    # that every field logml writes is mapped.
    return {"dynamic": False, "properties": props}


def index_pattern(prefix: str, kind: str) -> str:
    return f"{prefix}-{kind}-*"


def index_templates(prefix: str = "logml", replicas: int = 1,
                    ilm_policy: str | None = None) -> dict[str, dict]:
    """name -> body of the composable index template for each kind."""
    out = {}
    for kind in KINDS:
        settings: dict = {"number_of_shards": 1, "number_of_replicas": replicas}
        if kind == "logs":
            settings["refresh_interval"] = LIVE_REFRESH
            settings["mapping"] = {"total_fields": {"limit": 2000}}
        if ilm_policy:
            settings["lifecycle"] = {"name": ilm_policy}
        body = {"index_patterns": [index_pattern(prefix, kind)],
                "priority": TEMPLATE_PRIORITY,
                "version": TEMPLATE_VERSION,
                "template": {"settings": {"index": settings}, "mappings": mappings(kind)}}
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
        body["_meta"] = {"managed_by": "logml setup", "description":
                         f"logml {kind} documents (DESIGN.md)", "hash": digest}
        out[f"{prefix}-{kind}"] = body
    return out


def ilm_policy_body(days: int = ILM_DAYS) -> dict:
    # Daily indices, no write alias: no rollover; delete counts from index creation.
    return {"policy": {"_meta": {"managed_by": "logml setup"},
                       "phases": {"hot": {"min_age": "0ms", "actions": {}},
                                  "delete": {"min_age": f"{days}d",
                                             "actions": {"delete": {}}}}}}


def mapped_fields(mapping: dict) -> dict[str, str]:
    """Dotted field path -> type of every leaf (and multi-field) in a mapping."""
    out: dict[str, str] = {}

    def walk(props: dict, path: str):
        for name, spec in props.items():
            full = f"{path}{name}"
            if "properties" in spec:
                walk(spec["properties"], full + ".")
            else:
                out[full] = spec.get("type", "object")
                for sub, subspec in spec.get("fields", {}).items():
                    out[f"{full}.{sub}"] = subspec["type"]
    walk(mapping["properties"], "")
    return out


# --------------------------------------------------------------------------- Kibana objects

# Saved searches: (slug, title, kind, columns, KQL query). Every field named here must be
# mapped for that kind (tests/unit/test_kibana_objects.py).
SAVED_SEARCHES = [
    ("critical-anomalies", "logml critical anomalies", "anomalies",
     ["service.name", "logml.anomaly.type", "logml.anomaly_score", "logml.actual",
      "logml.expected", "logml.template", "message"],
     'logml.severity : "critical"'),
    ("anomalies", "logml anomalies by service", "anomalies",
     ["service.name", "logml.severity", "logml.anomaly.type", "logml.anomaly_score",
      "logml.zscore", "logml.actual", "logml.expected", "logml.incident_id", "message"],
     ""),
    ("new-templates", "logml new templates", "anomalies",
     ["service.name", "logml.template_id", "logml.template", "logml.actual", "logml.samples"],
     'logml.anomaly.type : "new_template"'),
    ("windows-at-risk", "logml windows at risk", "windows",
     ["service.name", "logml.anomaly_score", "logml.outage_probability", "logml.lines",
      "logml.expected_lines", "logml.errors", "logml.error_ratio", "logml.error_ratio_zscore"],
     "logml.anomaly_score >= 50 or logml.outage_probability >= 0.5"),
    ("error-lines", "logml error lines", "logs",
     ["service.name", "host.name", "log.level", "logml.template_id", "message"],
     'log.level : ("error" or "fatal")'),
]

# Dashboard panels: (saved-search slug, x, y, w, h) on Kibana's 48-column grid.
DASHBOARD_PANELS = [
    ("critical-anomalies", 0, 0, 48, 15),
    ("windows-at-risk", 0, 15, 24, 15),
    ("new-templates", 24, 15, 24, 15),
    ("anomalies", 0, 30, 48, 18),
]
DASHBOARD_TITLE = "logml anomalies"


def data_view_id(prefix: str, kind: str) -> str:
    return f"{prefix}-{kind}"


def search_id(prefix: str, slug: str) -> str:
    return f"{prefix}-search-{slug}"


def dashboard_id(prefix: str) -> str:
    return f"{prefix}-dashboard-anomalies"


def _search_source(query: str, index_ref: bool) -> str:
    src = {"query": {"query": query, "language": "kuery"}, "filter": []}
    if index_ref:
        src["indexRefName"] = "kibanaSavedObjectMeta.searchSourceJSON.index"
    return json.dumps(src, separators=(",", ":"))


def kibana_objects(prefix: str = "logml") -> list[dict]:
    """Data views, saved searches and the dashboard, in the saved-objects export format
    (the shape Kibana 8's own sample data uses; Kibana migrates them on import)."""
    objs: list[dict] = []
    for kind in KINDS:
        objs.append({
            "id": data_view_id(prefix, kind), "type": "index-pattern",
            "attributes": {"title": index_pattern(prefix, kind), "timeFieldName": "@timestamp"},
            "references": [], "migrationVersion": {}})
    for slug, title, kind, columns, query in SAVED_SEARCHES:
        objs.append({
            "id": search_id(prefix, slug), "type": "search",
            "attributes": {"title": title, "description": "", "columns": columns,
                           "sort": [["@timestamp", "desc"]], "hits": 0, "version": 1,
                           "kibanaSavedObjectMeta": {
                               "searchSourceJSON": _search_source(query, True)}},
            "references": [{"id": data_view_id(prefix, kind), "type": "index-pattern",
                            "name": "kibanaSavedObjectMeta.searchSourceJSON.index"}],
            "migrationVersion": {"search": "7.9.3"}})
    panels, refs = [], []
    for n, (slug, x, y, w, h) in enumerate(DASHBOARD_PANELS, 1):
        idx = str(n)
        panels.append({"version": "8.0.0", "type": "search",
                       "gridData": {"x": x, "y": y, "w": w, "h": h, "i": idx},
                       "panelIndex": idx, "embeddableConfig": {"enhancements": {}},
                       "panelRefName": f"panel_{idx}"})
        refs.append({"id": search_id(prefix, slug), "type": "search",
                     "name": f"{idx}:panel_{idx}"})
    objs.append({
        "id": dashboard_id(prefix), "type": "dashboard",
        "attributes": {
            "title": DASHBOARD_TITLE if prefix == "logml" else f"{DASHBOARD_TITLE} ({prefix})",
            "description": "Anomalies, service windows at risk and new templates found by logml",
            "hits": 0, "version": 1, "timeRestore": True, "timeFrom": "now-24h",
            "timeTo": "now", "refreshInterval": {"pause": False, "value": 60000},
            "optionsJSON": json.dumps({"hidePanelTitles": False, "useMargins": True},
                                      separators=(",", ":")),
            "panelsJSON": json.dumps(panels, separators=(",", ":")),
            "kibanaSavedObjectMeta": {"searchSourceJSON": _search_source("", False)}},
        "references": refs, "migrationVersion": {"dashboard": "7.14.0"}})
    return objs


def kibana_ndjson(prefix: str = "logml") -> bytes:
    return b"".join(json.dumps(o, sort_keys=True, separators=(",", ":")).encode() + b"\n"
                    for o in kibana_objects(prefix))


def write_packaged_objects() -> Path:
    """Regenerate logml/kibana/logml-objects.ndjson from the code (default prefix)."""
    PACKAGED_OBJECTS.parent.mkdir(parents=True, exist_ok=True)
    PACKAGED_OBJECTS.write_bytes(kibana_ndjson("logml"))
    return PACKAGED_OBJECTS


def kibana_import_request(kibana_url: str, ndjson: bytes,
                          filename: str = "logml-objects.ndjson") -> urllib.request.Request:
    """POST {kibana}/api/saved_objects/_import?overwrite=true, the file as multipart/form-data."""
    boundary = f"logml-{uuid.uuid4().hex}"
    body = (f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: application/ndjson\r\n\r\n").encode() + ndjson + \
        f"\r\n--{boundary}--\r\n".encode()
    return urllib.request.Request(
        kibana_url.rstrip("/") + "/api/saved_objects/_import?overwrite=true", data=body,
        method="POST", headers={"kbn-xsrf": "true",
                                "Content-Type": f"multipart/form-data; boundary={boundary}"})


def import_to_kibana(kibana_url: str, ndjson: bytes, timeout: float = 30.0) -> tuple[bool, str]:
    """(ok, what happened) of importing the saved objects into Kibana."""
    try:
        with urllib.request.urlopen(kibana_import_request(kibana_url, ndjson),
                                    timeout=timeout) as resp:
            result = json.load(resp)
    except urllib.error.HTTPError as e:
        return False, f"HTTP {e.code}: {e.read()[:500].decode(errors='replace')}"
    except (urllib.error.URLError, OSError, ValueError) as e:
        return False, f"{_why(e)} (is Kibana at that URL? --kibana URL)"
    if result.get("success"):
        return True, f"{result.get('successCount', 0)} objects imported"
    errs = [f"{x.get('type')}/{x.get('id')}: {x.get('error', {}).get('type')}"
            for x in result.get("errors", [])]
    return False, f"{result.get('successCount', 0)} imported, errors: {'; '.join(errs)}"


# --------------------------------------------------------------------------- setup


class SetupError(Exception):
    """logml setup could not do its work; the message (one line) says what to do."""


def _why(e: BaseException) -> str:
    """The gist of a client error: the client nests the socket's reason several levels
    deep ("Connection error caused by: ConnectionError(... [Errno 111] Connection
    refused))")."""
    import re
    text = str(e)
    if "is not Elasticsearch" in text:
        return "the server there is not Elasticsearch"
    m = re.search(r"\[Errno -?\d+\] ([^)\]'\"<>]+)", text)
    if m:
        return m.group(1).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _refused(e: BaseException) -> str:
    """An error answer in a line: status, type and Elasticsearch's reason."""
    body = getattr(e, "body", None)
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and getattr(e, "status_code", None):
        return f"Elasticsearch answered {e.status_code} {err.get('type')}: {err.get('reason')}"
    return _why(e)


@dataclass
class SetupReport:
    es_url: str
    unreachable: str | None = None  # why Elasticsearch could not be reached at all
    server: str = ""
    ilm_supported: bool | None = None
    installed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    kibana_file: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def format(self) -> str:
        lines = [f"logml setup: {self.es_url}" + (f" ({self.server})" if self.server else "")]
        for title, items in (("installed", self.installed), ("skipped", self.skipped),
                             ("notes", self.notes), ("errors", self.errors)):
            if items:
                lines.append(f"{title}:")
                lines.extend(f"  - {x}" for x in items)
        lines.append("result: " + ("ok" if self.ok else f"{len(self.errors)} error(s)"))
        return "\n".join(lines)


def _ilm_supported(client) -> tuple[bool, str]:
    """Ask the X-Pack info API (GET /_xpack) whether ILM is there. A server without X-Pack
    answers 400 ("_xpack" read as an index name); probing _ilm/* instead answers 405 there,
    which the transport takes for a dead node and warns about."""
    from elasticsearch import ApiError, TransportError
    try:
        info = client.xpack.info(categories="features")
    except ApiError as e:
        return False, f"GET _xpack answered {e.status_code}"
    except TransportError as e:
        return False, f"GET _xpack failed: {e}"
    ilm = (info.get("features") or {}).get("ilm") or {}
    if not ilm.get("available"):
        return False, "X-Pack reports ILM unavailable"
    if not ilm.get("enabled", True):
        return False, "X-Pack reports ILM disabled"
    return True, "ILM available"


def _client(es_url: str, client):
    """(client, close): the caller's client, left open, or one of our own that close()
    shuts."""
    if client is not None:
        return client, lambda: None
    from elasticsearch import Elasticsearch
    own = Elasticsearch(es_url, request_timeout=30)
    return own, own.close


def setup(es_url: str, prefix: str = "logml", kibana_url: str | None = None,
          out_dir: str | Path | None = None, replicas: int | None = None,
          client=None) -> SetupReport:
    """Install what the server supports; report what was installed and what was skipped.

    replicas None = 0 on a cluster with one data node, else 1.
    """
    from elasticsearch import ApiError, TransportError

    report = SetupReport(es_url)
    client, close = _client(es_url, client)
    try:
        try:
            info = client.info()
            health = client.cluster.health()
        except (ApiError, TransportError) as e:
            report.errors.append(f"Elasticsearch at {es_url} not reachable: {e}")
            report.unreachable = _why(e)
            return report
        version = info["version"]["number"]
        data_nodes = int(health.get("number_of_data_nodes", 1))
        report.server = (f"Elasticsearch {version}, cluster {info.get('cluster_name')}, "
                         f"{data_nodes} data node{'s' if data_nodes != 1 else ''}")
        if not version.startswith("8."):
            report.notes.append(f"logml is built for Elasticsearch 8.x; this server is {version}")
        if replicas is None:
            replicas = 0 if data_nodes <= 1 else 1
            report.notes.append(f"number_of_replicas {replicas} ({data_nodes} data node"
                                f"{'s' if data_nodes != 1 else ''}; --replicas overrides)")

        ilm, why = _ilm_supported(client)
        report.ilm_supported = ilm
        policy = f"{prefix}-{ILM_DAYS}d"
        if ilm:
            try:
                client.ilm.put_lifecycle(name=policy, policy=ilm_policy_body()["policy"])
                report.installed.append(f"ILM policy {policy} (delete {ILM_DAYS} days after "
                                        f"index creation)")
            except ApiError as e:
                report.errors.append(f"ILM policy {policy}: {e}")
                ilm = False
        else:
            report.skipped.append(f"ILM policy {policy} (and index.lifecycle.name in the "
                                  f"templates): not supported by this server (no X-Pack; "
                                  f"{why}); retention is up to you: delete old daily indices, "
                                  f"e.g. DELETE {prefix}-logs-2025.01.01")

        for name, body in index_templates(prefix, replicas, policy if ilm else None).items():
            pattern = body["index_patterns"][0]
            try:
                existing = client.options(ignore_status=404).indices.get_index_template(
                    name=name)
                current = [t["index_template"] for t in existing.get("index_templates", [])]
                if current and current[0].get("_meta", {}).get("hash") == body["_meta"]["hash"]:
                    report.installed.append(f"index template {name} ({pattern}): unchanged")
                else:
                    client.indices.put_index_template(
                        name=name, index_patterns=body["index_patterns"],
                        priority=body["priority"], version=body["version"],
                        template=body["template"], meta=body["_meta"])
                    report.installed.append(f"index template {name} ({pattern}): "
                                            f"{'updated' if current else 'created'}")
                existing_idx = client.options(ignore_status=404).indices.get(
                    index=pattern, allow_no_indices=True, expand_wildcards="open,closed")
                if existing_idx.body:
                    report.notes.append(f"{len(existing_idx.body)} existing {pattern} indices "
                                        f"keep their mappings; the template applies to new "
                                        f"(daily) indices")
            except (ApiError, TransportError) as e:
                report.errors.append(f"index template {name}: {_refused(e)}")

        ndjson = kibana_ndjson(prefix)
        n = len(kibana_objects(prefix))
        if out_dir is not None:
            path = Path(out_dir) / OBJECTS_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(ndjson)
            report.kibana_file = str(path)
            report.installed.append(f"Kibana saved objects ({n}: 3 data views, "
                                    f"{len(SAVED_SEARCHES)} saved searches, 1 dashboard) "
                                    f"written to {path}")
        if kibana_url:
            ok, what = import_to_kibana(kibana_url, ndjson)
            if ok:
                report.installed.append(f"Kibana saved objects imported into {kibana_url}: "
                                        f"{what}")
            else:
                report.errors.append(f"Kibana import into {kibana_url} failed: {what}")
        else:
            hint = (f"import {report.kibana_file}" if report.kibana_file else
                    "use --out DIR to write the file, then import it")
            report.skipped.append(f"Kibana import: no Kibana URL given ({hint} in Kibana: "
                                  f"Stack Management > Saved objects > Import)")
    finally:
        close()
    return report


def ingest_mode(es_url: str, mode: str, prefix: str = "logml", replicas: int | None = None,
                client=None) -> SetupReport:
    """``backfill``: the per-line indices (existing ones and the daily ones the template
    makes from now on) get ``refresh_interval: -1`` and no replicas, so a replay indexes at
    the server's full speed; ``live`` puts back the refresh interval and the replicas of
    ``setup`` and refreshes once. Only ``<prefix>-logs-*``: windows and anomalies are few
    and Kibana wants them at once. Nothing else is changed (translog durability stays
    ``request``: an acknowledged bulk survives a crash, which the commits rely on)."""
    from elasticsearch import ApiError, TransportError

    if mode not in ("backfill", "live"):
        raise ValueError(f"ingest mode {mode!r}: backfill or live")
    report = SetupReport(es_url)
    client, close = _client(es_url, client)
    try:
        try:
            data_nodes = int(client.cluster.health().get("number_of_data_nodes", 1))
        except (ApiError, TransportError) as e:
            report.errors.append(f"Elasticsearch at {es_url} not reachable: {e}")
            report.unreachable = _why(e)
            return report
        name, pattern = f"{prefix}-logs", index_pattern(prefix, "logs")
        try:
            found = client.options(ignore_status=404).indices.get_index_template(name=name)
            current = [t["index_template"] for t in found.get("index_templates", [])]
            if not current:
                report.errors.append(f"index template {name} missing: run logml setup first")
                return report
            body = current[0]
            index_settings = body["template"]["settings"]["index"]
            meta = dict(body.get("_meta") or {})
            was_backfill = meta.get("ingest_mode") == "backfill"
            if mode == "backfill":
                refresh, reps = "-1", 0
                if not was_backfill:  # what --live puts back
                    meta["live_replicas"] = int(index_settings.get("number_of_replicas", 0))
                    meta["hash"] = f"backfill-{meta.get('hash', '')}"  # setup puts it back
            else:
                refresh = LIVE_REFRESH
                reps = replicas if replicas is not None else int(
                    meta.pop("live_replicas", 0 if data_nodes <= 1 else 1))
                meta["hash"] = str(meta.get("hash", "")).removeprefix("backfill-")
            meta["ingest_mode"] = mode
            index_settings["refresh_interval"] = refresh
            index_settings["number_of_replicas"] = reps
            client.indices.put_index_template(
                name=name, index_patterns=body["index_patterns"], priority=body["priority"],
                version=body.get("version"), template=body["template"], meta=meta)
            report.installed.append(f"index template {name}: refresh_interval {refresh}, "
                                    f"number_of_replicas {reps} for new {pattern} indices")
            existing = client.options(ignore_status=404).indices.get(
                index=pattern, allow_no_indices=True, expand_wildcards="open")
            if existing.body:
                client.indices.put_settings(index=pattern, settings={"index": {
                    "refresh_interval": refresh, "number_of_replicas": reps}})
                report.installed.append(f"{len(existing.body)} existing {pattern} indices: "
                                        f"refresh_interval {refresh}, number_of_replicas "
                                        f"{reps}")
                if mode == "live":
                    client.indices.refresh(index=pattern)
        except (ApiError, TransportError) as e:
            report.errors.append(f"{mode} settings on {pattern}: {e}")
            return report
        if mode == "backfill":
            report.notes.append("new lines are not searchable until `logml setup --live`")
            if data_nodes > 1:
                report.notes.append(f"no replicas until --live: a lost node loses the lines "
                                    f"indexed since; keep the input (topic retention, files) "
                                    f"until --live ({data_nodes} data nodes)")
    finally:
        close()
    return report


def run_setup(es_url: str, kibana_url: str | None = None, out_dir: str | Path | None = None,
              prefix: str = "logml", replicas: int | None = None,
              mode: str | None = None) -> int:
    """The ``logml setup`` command: run setup (or only switch the ingest mode) and print
    the report; SetupError (one line) when Elasticsearch is out of reach or a step failed
    (the report, printed first, lists which)."""
    if mode is not None:
        report = ingest_mode(es_url, mode, prefix=prefix, replicas=replicas)
    else:
        report = setup(es_url, prefix=prefix, kibana_url=kibana_url, out_dir=out_dir,
                       replicas=replicas)
    if report.unreachable:
        raise SetupError(f"cannot reach Elasticsearch at {es_url}: {report.unreachable}; "
                         f"start it, or give its URL (--es URL or ES_URL)")
    print(report.format())
    if not report.ok:
        n, first = len(report.errors), report.errors[0].splitlines()[0]
        what = first if n == 1 else f"{n} steps failed (the report lists them), first: {first}"
        todo = "" if "logml setup" in first else \
            "; fix the cause and run logml setup again (it is idempotent)"
        raise SetupError(what + todo)
    return 0
