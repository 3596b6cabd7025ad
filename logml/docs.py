"""Documents as Elasticsearch stores them and JSONL outputs repeat them (DESIGN.md fields).

Ids are deterministic (source and offset for lines; service, window and type for windows
and anomalies), so a replay overwrites instead of doubling.
"""
from __future__ import annotations

import hashlib
import time

from .decode import LEVELS

SEVERITY_NUMBER = {"warning": 2, "critical": 3}  # event.severity: higher is worse


def iso(t: float) -> str:
    ms = int(round((t - int(t)) * 1000))
    if ms == 1000:
        t, ms = int(t) + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(t))) + f".{ms:03d}Z"


def _id(*parts) -> str:
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=12).hexdigest()


def window_doc(w, service: str) -> tuple[str, dict]:
    return _id("window", service, w.start), {
        "@timestamp": iso(w.start),
        "service": {"name": service},
        "event": {"kind": "metric", "dataset": "logml.windows"},
        "logml": {"window": {"end": iso(w.end), "seconds": w.end - w.start},
                  "lines": w.lines, "errors": w.errors, "error_ratio": round(w.error_ratio, 6),
                  "error_ratio_zscore": round(w.error_ratio_z, 4),
                  "anomaly_score": round(w.anomaly_score, 2),
                  "outage_probability": round(w.outage_probability, 4)}}


def anomaly_doc(a, service: str, template_id: str | None, template: str | None) -> tuple[str, dict]:
    return _id("anomaly", service, a.start, a.type, template_id or ""), {
        "@timestamp": iso(a.start),
        "service": {"name": service},
        "event": {"kind": "alert", "dataset": "logml.anomalies",
                  "severity": SEVERITY_NUMBER[a.severity]},
        "message": f"{a.type} in {service}: {a.actual:g} vs expected {a.expected:.3g}"
                   + (f" ({template})" if template else ""),
        "logml": {"anomaly": {"type": a.type}, "template_id": template_id, "template": template,
                  "actual": round(a.actual, 6), "expected": round(a.expected, 6),
                  "lower": round(a.lower, 6), "upper": round(a.upper, 6),
                  "zscore": round(a.zscore, 4), "anomaly_score": round(a.score, 2),
                  "probability": float(f"{a.probability:.4g}"),
                  "severity": a.severity, "samples": a.samples,
                  "incident_id": f"{service}-{a.incident_id}",
                  "window": {"end": iso(a.end)}}}


def log_doc(events, i: int, template_id: str, template: str, params: list[str],
            source: str) -> tuple[str, dict]:
    """The event's own ECS fields, normalised, plus logml's."""
    ev = events.event[i] if events.event else None
    doc = dict(ev) if ev else {}
    doc.pop("_id", None)
    doc["@timestamp"] = iso(float(events.ts[i]))
    doc["message"] = events.message(i)
    doc["service"] = {**(doc.get("service") if isinstance(doc.get("service"), dict) else {}),
                      "name": events.service_name(i)}
    level = LEVELS[int(events.level[i])]
    if level != "unknown":
        log = doc.get("log") if isinstance(doc.get("log"), dict) else {}
        doc["log"] = {**log, "level": level}
    if events.host and events.host[i] is not None and not isinstance(doc.get("host"), dict):
        doc["host"] = {"name": events.host[i]}
    doc["logml"] = {"template_id": template_id, "template": template, "params": params}
    if bool(events.truncated[i]):
        doc["logml"]["truncated"] = True
    return _id("log", source, int(events.offset[i])), doc


def dlq_doc(err) -> tuple[str, dict]:
    d = err.doc()
    d["@timestamp"] = iso(time.time())
    return _id("dlq", err.source, err.offset, err.reason), d
