"""Documents as Elasticsearch stores them and JSONL outputs repeat them (DESIGN.md fields).

Ids are deterministic (source and offset for lines; service, window and type for windows
and anomalies), so a replay overwrites instead of doubling.
"""
from __future__ import annotations

import hashlib
import re
import time

import numpy as np
import orjson

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


def anomaly_doc(a, service: str, template_id: str | None, template: str | None,
                template_parents: list[str] | None = None) -> tuple[str, dict]:
    """template_parents: ids of the templates this one was merged from (lineage), if any."""
    doc_id, doc = _id("anomaly", service, a.start, a.type, template_id or ""), {
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
    if template_parents:
        doc["logml"]["template_parents"] = list(template_parents)
    return doc_id, doc


def log_doc(events, i: int, template_id: str, template: str, params: list[str],
            source: str, template_parents: list[str] | None = None) -> tuple[str, dict]:
    """The event's own ECS fields, normalised, plus logml's (template_parents: the ids the
    template was merged from, only when there are any)."""
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
    if template_parents:
        doc["logml"]["template_parents"] = list(template_parents)
    if bool(events.truncated[i]):
        doc["logml"]["truncated"] = True
    return _id("log", source, int(events.offset[i])), doc


def dlq_doc(err) -> tuple[str, dict]:
    d = err.doc()
    d["@timestamp"] = iso(time.time())
    return _id("dlq", err.source, err.offset, err.reason), d


# ------------------------------------------------------------------ per-line documents as bytes
# ``log_doc`` above is the reference (one dict per line); ``LogDocs`` writes the same
# documents straight as JSON bytes for the bulk body: the columns of the batch formatted
# for the whole batch at once, the template part prepared once per template, only the
# params (and the original event's extra fields, when there is one) per line.

_LEVEL_PART = [b"" if name == "unknown" else b'"log":{"level":"' + name.encode() + b'"},'
               for name in LEVELS]
_MS_PER_DAY = 86_400_000


def iso_batch(ts: np.ndarray) -> tuple[list[bytes], np.ndarray]:
    """(``iso(t)`` as bytes, UTC day number) for every t; same rounding as ``iso``."""
    ts = np.asarray(ts, dtype=np.float64)
    secs = np.floor(ts)
    ms = np.round((ts - secs) * 1000.0)  # the fraction is exact; round half even like iso
    total = secs.astype(np.int64) * 1000 + ms.astype(np.int64)
    text = np.datetime_as_string(total.astype("datetime64[ms]"), unit="ms")
    return np.char.add(text, "Z").astype("S24").tolist(), total // _MS_PER_DAY


def day_name(day: int) -> str:
    """``YYYY.MM.DD`` of a UTC day number (days since 1970-01-01)."""
    return str(np.datetime64(int(day), "D")).replace("-", ".")


class _TemplatePlan:
    """What a template contributes to each of its lines, prepared once."""
    __slots__ = ("text", "head", "match", "slots")

    def __init__(self, template_id: str, text: str, parents: list[str] = ()):
        self.text = text
        # the lineage (ids merged into this template: fixed at its birth) only when it has one
        self.head = (b'{"template_id":' + orjson.dumps(template_id) +
                     b',"template":' + orjson.dumps(text) +
                     (b',"template_parents":' + orjson.dumps(list(parents)) if parents else b"")
                     + b',"params":')
        pat = text.split()
        # One regex match cuts the params out of a line: tokens are maximal runs of \S
        # (str.split's whitespace) and each variable position tries, in the order of
        # TemplateEngine.params: the pattern token itself (no param), the literal prefix
        # and suffix around a middle (the param: group 2k+1), any token (cut in Python:
        # group 2k+2). No match: the token counts differ.
        parts, self.slots = [], []
        for p in pat:
            if "<" not in p:
                parts.append(r"\S+")
                continue
            k, r = p.index("<"), p.rfind(">")
            fast = (re.escape(p[:k]) + r"(\S*)" + re.escape(p[r + 1:]) + r"(?!\S)") \
                if r > k else r"(?!)()"
            parts.append(r"(?=\S)(?:" + re.escape(p) + r"(?!\S)|" + fast + r"|(\S+))")
            self.slots.append(p)
        self.match = re.compile(r"\s*" + r"\s+".join(parts) + r"\s*").fullmatch

    def params(self, text: str) -> list[str]:
        """``TemplateEngine.params`` of a line of this template."""
        m = self.match(text)
        if m is None:
            return []
        g = m.groups()
        if not any(g[1::2]):
            return [x for x in g[0::2] if x is not None]
        out = []
        for pat, mid, tok in zip(self.slots, g[0::2], g[1::2]):
            if mid is not None:
                out.append(mid)
            elif tok is not None:
                out.append(_cut(tok, pat))
        return out


def _cut(tok: str, pat: str) -> str:
    """The variable part of one token (TemplateEngine.params, token by token)."""
    p = 0
    while p < min(len(tok), len(pat)) and tok[p] == pat[p] and pat[p] != "<":
        p += 1
    s = 0
    while s < min(len(tok), len(pat)) - p and tok[-1 - s] == pat[-1 - s] and pat[-1 - s] != ">":
        s += 1
    return tok[p:len(tok) - s]


class LogDocs:
    """Per-line documents of a batch as bulk-ready JSON bytes, equal (as JSON) to
    ``log_doc``'s. Keeps the prepared template parts between batches."""

    def __init__(self):
        self._plans: dict[int, _TemplatePlan] = {}

    def build(self, events, idx: np.ndarray, engine, source: str
              ) -> tuple[np.ndarray, list[str], list[bytes]]:
        """(UTC day number, _id, document) of every event; idx = its template index."""
        n = len(events)
        if n == 0:
            return np.zeros(0, np.int64), [], []
        plans = self._plans
        for t in np.unique(idx).tolist():
            text = engine.template_text(t)
            plan = plans.get(t)
            if plan is None or plan.text != text:  # new, or generalised since
                plans[t] = _TemplatePlan(engine.template_id(t), text,
                                         engine.lineage(t)["parents"])
        stamps, days = iso_batch(events.ts)
        base = hashlib.blake2b(f"log\x1f{source}\x1f".encode(), digest_size=12)
        services = [b'","service":{"name":' + orjson.dumps(s) + b"}," for s in events.services]
        raw = events.buf.tobytes()
        hosts = events.host
        originals = events.event
        names = events.services
        truncated = events.truncated
        truncated = set(np.flatnonzero(truncated).tolist()) if truncated.any() else ()
        dumps = orjson.dumps
        ids, out = [], []
        append_id, append = ids.append, out.append
        rows = zip(idx.tolist(), events.offset.tolist(), events.msg_start.tolist(),
                   events.text_start.tolist(), events.end.tolist(), events.level.tolist(),
                   events.service.tolist(), stamps)
        for i, (t, off, m0, t0, t1, level, s, stamp) in enumerate(rows):
            h = base.copy()
            h.update(b"%d" % off)
            append_id(h.hexdigest())
            plan = plans[t]
            ours = plan.head + dumps(plan.params(raw[t0:t1].decode("utf-8", "replace"))) + \
                (b',"truncated":true}' if i in truncated else b"}")
            ev = originals[i] if originals else None
            host = hosts[i] if hosts else None
            if ev:
                append(_with_event(ev, stamp, names[s], level, host, ours))
            elif host is None:
                append(b'{"@timestamp":"' + stamp + b'","message":' +
                       dumps(raw[m0:t1].decode("utf-8", "replace"))[:-1] + services[s] +
                       _LEVEL_PART[level] + b'"logml":' + ours + b"}")
            else:
                append(b'{"@timestamp":"' + stamp + b'","message":' +
                       dumps(raw[m0:t1].decode("utf-8", "replace"))[:-1] + services[s] +
                       _LEVEL_PART[level] + b'"host":{"name":' + dumps(host) + b'},"logml":' +
                       ours + b"}")
        return days, ids, out


def _with_event(ev: dict, stamp: bytes, service: str, level: int, host, ours: bytes) -> bytes:
    """A document that keeps the original event's other fields (as ``log_doc``); ``ours``
    is the ``logml`` object, already JSON."""
    d = ev.copy()
    d.pop("_id", None)
    d["@timestamp"] = stamp.decode()
    svc = d.get("service")
    d["service"] = {**svc, "name": service} if isinstance(svc, dict) else {"name": service}
    if level:
        log = d.get("log")
        d["log"] = {**log, "level": LEVELS[level]} if isinstance(log, dict) else \
            {"level": LEVELS[level]}
    if host is not None and not isinstance(d.get("host"), dict):
        d["host"] = {"name": host}
    d["logml"] = orjson.Fragment(ours)
    return orjson.dumps(d)
