"""Documents as Elasticsearch stores them and JSONL outputs repeat them (DESIGN.md fields).

Ids are deterministic (source and offset for lines; service, window and type for windows
and anomalies), so a replay overwrites instead of doubling.
"""
from __future__ import annotations

import hashlib
import re
import time
import weakref

import numba as nb
import numpy as np
import orjson

from .decode import LEVELS
from .jsonscan import is_ws, key_index, skip_ws

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
        "logml": {"window": {"end": iso(w.end), "seconds": w.end - w.start,
                             **({"covered": round(w.covered, 4)} if w.covered < 1 else {})},
                  "lines": w.lines, "expected_lines": round(w.expected_lines, 2),
                  "errors": w.errors, "error_ratio": round(w.error_ratio, 6),
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
    host = events.host[i] if events.host else None
    if ev is None and events.raw_span is not None and events.raw_span[i, 0] >= 0:
        s, e = events.raw_span[i].tolist()  # the fast path kept the bytes, not the dict
        ev = orjson.loads(events.raw[s:e].tobytes())
        host = event_host(ev)
    doc = dict(ev) if ev else {}
    doc.pop("_id", None)
    if "message" not in doc and isinstance(doc.get("log"), str):
        del doc["log"]  # Docker's line, now the message (ECS: an object)
    doc["@timestamp"] = iso(float(events.ts[i]))
    doc["message"] = events.message(i)
    doc["service"] = {**(doc.get("service") if isinstance(doc.get("service"), dict) else {}),
                      "name": events.service_name(i)}
    level = LEVELS[int(events.level[i])]
    if level != "unknown":
        log = doc.get("log") if isinstance(doc.get("log"), dict) else {}
        doc["log"] = {**log, "level": level}
    if host is not None and not isinstance(doc.get("host"), dict):
        doc["host"] = {"name": host}
    doc["logml"] = {"template_id": template_id, "template": template, "params": params}
    if template_parents:
        doc["logml"]["template_parents"] = list(template_parents)
    if bool(events.truncated[i]):
        doc["logml"]["truncated"] = True
    return _id("log", source, int(events.offset[i])), doc


def event_host(ev: dict) -> str | None:
    """The host name of a JSON event, as the decoder's general path reads it."""
    host = ev.get("host")
    if isinstance(host, dict):
        host = host.get("name")
    elif host is None:
        host = ev.get("host.name")
    return str(host) if host is not None else None


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
    text, days = _iso_array(ts)
    return text.tolist(), days


def _iso_array(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``iso_batch`` as an S24 array."""
    ts = np.asarray(ts, dtype=np.float64)
    secs = np.floor(ts)
    ms = np.round((ts - secs) * 1000.0)  # the fraction is exact; round half even like iso
    total = secs.astype(np.int64) * 1000 + ms.astype(np.int64)
    text = np.datetime_as_string(total.astype("datetime64[ms]"), unit="ms")
    return np.char.add(text, "Z").astype("S24"), total // _MS_PER_DAY


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
        if not self.slots:
            return []
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
    ``log_doc``'s. Keeps the prepared template parts between batches.

    Three kinds of lines: JSON events the decoder's fast path read (their bytes kept,
    ``EventBatch.raw``) are spliced by one numba pass (``_event_docs``): the event's
    members copied as they came, logml's fields written around them, only the params per
    line in Python; JSON events of the general path (a dict) are re-serialised; plain lines
    are formatted from the batch's columns."""

    def __init__(self):
        # per template engine: in Kafka mode one sink serves every partition's pipeline,
        # each with its own engine whose indices start at 0 (keyed by index alone, a line
        # got the template id of another partition's service with the same text there)
        self._plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def build(self, events, idx: np.ndarray, engine, source: str
              ) -> tuple[np.ndarray, list[str], list[bytes]]:
        """(UTC day number, _id, document) of every event; idx = its template index."""
        n = len(events)
        if n == 0:
            return np.zeros(0, np.int64), [], []
        plans = self._plans.setdefault(engine, {})
        used = np.unique(idx)
        for t in used.tolist():
            text = engine.template_text(t)
            plan = plans.get(t)
            if plan is None or plan.text != text:  # new, or generalised since
                plans[t] = _TemplatePlan(engine.template_id(t), text,
                                         engine.lineage(t)["parents"])
        stamp_arr, days = _iso_array(events.ts)
        base = hashlib.blake2b(f"log\x1f{source}\x1f".encode(), digest_size=12)
        ids = []
        append_id = ids.append
        for off in events.offset.tolist():
            h = base.copy()
            h.update(b"%d" % off)
            append_id(h.hexdigest())
        raw = events.buf.tobytes()
        truncated = events.truncated
        truncated = set(np.flatnonzero(truncated).tolist()) if truncated.any() else ()
        dumps = orjson.dumps
        out: list = [None] * n
        rest = np.arange(n)
        if events.raw_span is not None:
            spliced = np.flatnonzero(events.raw_span[:, 0] >= 0)
            if len(spliced):
                declined = self._splice(events, idx, used, plans, stamp_arr, spliced, raw,
                                        truncated, out)
                rest = np.union1d(np.flatnonzero(events.raw_span[:, 0] < 0), declined)
        if len(rest):
            stamps = stamp_arr[rest].tolist()
            services = [b'","service":{"name":' + dumps(s) + b"}," for s in events.services]
            hosts = events.host
            originals = events.event
            names = events.services
            evbytes = events.raw
            for i, stamp in zip(rest.tolist(), stamps):
                t = int(idx[i])
                t0, t1 = int(events.text_start[i]), int(events.end[i])
                plan = plans[t]
                ours = plan.head + dumps(plan.params(raw[t0:t1].decode("utf-8", "replace"))) \
                    + (b',"truncated":true}' if i in truncated else b"}")
                ev = originals[i] if originals else None
                host = hosts[i] if hosts else None
                level, s = int(events.level[i]), int(events.service[i])
                if ev is None and evbytes is not None and events.raw_span[i, 0] >= 0:
                    a, z = events.raw_span[i].tolist()  # the splice declined it
                    ev = orjson.loads(evbytes[a:z].tobytes())
                    host = event_host(ev)
                if ev:
                    text = None if "message" in ev else \
                        raw[int(events.msg_start[i]):t1].decode("utf-8", "replace")
                    out[i] = _with_event(ev, stamp, names[s], level, host, ours, text)
                    continue
                m0 = int(events.msg_start[i])
                message = dumps(raw[m0:t1].decode("utf-8", "replace"))[:-1]
                if host is None:
                    out[i] = (b'{"@timestamp":"' + stamp + b'","message":' + message +
                              services[s] + _LEVEL_PART[level] + b'"logml":' + ours + b"}")
                else:
                    out[i] = (b'{"@timestamp":"' + stamp + b'","message":' + message +
                              services[s] + _LEVEL_PART[level] + b'"host":{"name":' +
                              dumps(host) + b'},"logml":' + ours + b"}")
        return days, ids, out

    def _splice(self, events, idx, used, plans, stamp_arr, rows, raw, truncated, out
                ) -> np.ndarray:
        """Documents of the fast-path JSON events at ``rows`` into ``out``; the rows the
        splice declined (returned) take the dict path."""
        heads = [plans[t].head for t in used.tolist()]
        head_off = np.zeros(len(heads) + 1, np.int64)
        np.cumsum([len(h) for h in heads], out=head_off[1:])
        svc = [orjson.dumps(x) for x in events.services]
        svc_off = np.zeros(len(svc) + 1, np.int64)
        np.cumsum([len(x) for x in svc], out=svc_off[1:])
        tmpl = np.searchsorted(used, idx[rows])
        pre, a, z, ok = _event_docs(
            events.raw, events.raw_span[rows], stamp_arr[rows].view(np.uint8).reshape(-1, 24),
            _bytes(b"".join(svc)), svc_off, events.service[rows].astype(np.int64),
            events.level[rows].astype(np.int64), _LEVEL_BUF, _LEVEL_OFF,
            _bytes(b"".join(heads)), head_off, tmpl, _KEY_TABLE, _KEY_LEN)
        pre = pre.tobytes()
        dumps = orjson.dumps
        take = np.flatnonzero(ok)
        pre = memoryview(pre)
        # ASCII messages (the common case) are decoded once, then sliced
        text = raw.decode("ascii") if raw.isascii() else None
        join = b"".join
        keep = rows[take]
        for i, t, t0, t1, p0, p1 in zip(keep.tolist(), idx[keep].tolist(),
                                        events.text_start[keep].tolist(),
                                        events.end[keep].tolist(), a[take].tolist(),
                                        z[take].tolist()):
            line = text[t0:t1] if text is not None else raw[t0:t1].decode("utf-8", "replace")
            out[i] = join((pre[p0:p1], dumps(plans[t].params(line)),
                           b',"truncated":true}}' if i in truncated else b"}}"))
        return rows[~ok]


def _bytes(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype=np.uint8)


_LEVEL_JSON = [orjson.dumps(x) for x in LEVELS]
_LEVEL_BUF = _bytes(b"".join(_LEVEL_JSON))
_LEVEL_OFF = np.cumsum([0] + [len(x) for x in _LEVEL_JSON]).astype(np.int64)
# top-level keys logml rewrites, and the members it sets in service and log
_DOC_KEYS = ["_id", "@timestamp", "service", "log", "host", "logml", "host.name", "name",
             "level"]
_K_ID, _K_TS, _K_SVC, _K_LOG, _K_HOST, _K_LOGML, _K_HOSTNAME, _K_NAME, _K_LEVEL = range(9)
_KEY_TABLE = np.zeros((len(_DOC_KEYS), 16), dtype=np.uint8)
_KEY_LEN = np.array([len(k) for k in _DOC_KEYS], dtype=np.int64)
for _k, _w in enumerate(_DOC_KEYS):
    _KEY_TABLE[_k, :len(_w)] = np.frombuffer(_w.encode(), dtype=np.uint8)
_L_TS = _bytes(b'"@timestamp":"')
_L_SVC = _bytes(b'","service":{')
_L_NAME = _bytes(b'"name":')
_L_LOG = _bytes(b',"log":{')
_L_LEVEL = _bytes(b'"level":')
_L_HOST = _bytes(b',"host":{"name":')
_L_LOGML = _bytes(b',"logml":')
_MAX_MEMBERS = 512


@nb.njit(cache=True)
def _str_end(b, p, e):
    """After the closing quote of the string at b[p]; -1 when it does not end."""
    p += 1
    while p < e:
        c = b[p]
        if c == 92:
            p += 2
        elif c == 34:
            return p + 1
        else:
            p += 1
    return -1


@nb.njit(cache=True)
def _value_end(b, p, e):
    """After the JSON value at b[p] (valid JSON: the decoder's scanner checked it)."""
    c = b[p]
    if c == 34:
        return _str_end(b, p, e)
    if c == 123 or c == 91:
        depth = 0
        while p < e:
            c = b[p]
            if c == 34:
                p = _str_end(b, p, e)
                if p < 0:
                    return -1
                continue
            if c == 123 or c == 91:
                depth += 1
            elif c == 125 or c == 93:
                depth -= 1
                if depth == 0:
                    return p + 1
            p += 1
        return -1
    while p < e:
        c = b[p]
        if c == 44 or c == 125 or c == 93 or is_ws(c):
            return p
        p += 1
    return p


@nb.njit(cache=True)
def _members(b, p, e, ks, ke, vs, ve, kid, table, lens):
    """Members of the object at b[p]: key spans (with quotes), value spans, key ids; -1
    when the splice must decline (an escaped or repeated key: a dict keeps the last of
    equal keys, Elasticsearch refuses repeated ones; more members than room)."""
    q = skip_ws(b, p + 1, e)
    if q < e and b[q] == 125:
        return 0
    n = 0
    while True:
        if q >= e or b[q] != 34 or n >= ks.shape[0]:
            return -1
        k1 = _str_end(b, q, e)
        if k1 < 0:
            return -1
        for j in range(q + 1, k1 - 1):
            if b[j] == 92:
                return -1
        for m in range(n):
            if ke[m] - ks[m] == k1 - q:
                same = True
                for j in range(k1 - q):
                    if b[ks[m] + j] != b[q + j]:
                        same = False
                        break
                if same:
                    return -1
        ks[n], ke[n] = q, k1
        kid[n] = key_index(b, q + 1, k1 - 1, table, lens)
        c = skip_ws(b, k1, e)
        if c >= e or b[c] != 58:
            return -1
        v = skip_ws(b, c + 1, e)
        if v >= e:
            return -1
        v1 = _value_end(b, v, e)
        if v1 < 0:
            return -1
        vs[n], ve[n] = v, v1
        n += 1
        q = skip_ws(b, v1, e)
        if q < e and b[q] == 44:
            q = skip_ws(b, q + 1, e)
            continue
        if q < e and b[q] == 125:
            return n
        return -1


@nb.njit(cache=True, inline="always")
def _put(out, o, src, s, e):
    for j in range(s, e):
        out[o] = src[j]
        o += 1
    return o


@nb.njit(cache=True, inline="always")
def _lit(out, o, lit):
    return _put(out, o, lit, 0, lit.shape[0])


@nb.njit(cache=True)
def _other_members(out, o, raw, p, e, skip, ks, ke, vs, ve, kid, table, lens):
    """Copy the members of the object at raw[p:e] except key `skip` (logml writes that one
    itself), each followed by a comma; True when the splice must decline."""
    mm = _members(raw, p, e, ks, ke, vs, ve, kid, table, lens)
    for j in range(max(mm, 0)):
        if kid[j] != skip:
            o = _put(out, o, raw, ks[j], ve[j])
            out[o] = 44
            o += 1
    return o, mm < 0


@nb.njit(cache=True)
def _event_docs(raw, spans, stamps, svc_buf, svc_off, service, level, level_buf, level_off,
                head_buf, head_off, tmpl, table, lens):
    """Per event: its document up to and including ``"params":`` (the caller appends the
    params and ``}}``) in ``pre[a:z]``, as ``_with_event`` makes it: the event's members as
    they came except ``_id``, ``@timestamp``, ``service``, ``logml`` (and ``log`` when a
    level is known, a string ``host``), which are written anew. ok False: declined (the
    dict path takes it)."""
    n = spans.shape[0]
    cap = 0
    for i in range(n):
        cap += (2 * (spans[i, 1] - spans[i, 0]) + svc_off[service[i] + 1] - svc_off[service[i]]
                + head_off[tmpl[i] + 1] - head_off[tmpl[i]] + 128)
    out = np.empty(cap, dtype=np.uint8)
    a = np.zeros(n, dtype=np.int64)
    z = np.zeros(n, dtype=np.int64)
    ok = np.ones(n, dtype=np.bool_)
    m_ = _MAX_MEMBERS
    ks, ke, vs, ve = (np.empty(m_, np.int64), np.empty(m_, np.int64), np.empty(m_, np.int64),
                      np.empty(m_, np.int64))
    kid = np.empty(m_, np.int64)
    nks, nke, nvs, nve = (np.empty(m_, np.int64), np.empty(m_, np.int64),
                          np.empty(m_, np.int64), np.empty(m_, np.int64))
    nkid = np.empty(m_, np.int64)
    o = 0
    for i in range(n):
        s, e = spans[i, 0], spans[i, 1]
        p = skip_ws(raw, s, e)
        m = -1
        if p < e and raw[p] == 123:
            m = _members(raw, p, e, ks, ke, vs, ve, kid, table, lens)
        if m < 0:
            ok[i] = False
            continue
        lv = level[i]
        svc, log, host, hostname = -1, -1, -1, -1
        for j in range(m):
            k = kid[j]
            if k == 2:
                svc = j
            elif k == 3:
                log = j
            elif k == 4:
                host = j
            elif k == 6:
                hostname = j
        # the host the decoder read: an object's is kept as it is; a string's, or a flat
        # host.name's (no host), becomes {"name": ...}; anything else: the dict path
        host_str = -1
        if host >= 0:
            c = raw[vs[host]]
            if c == 34:
                host_str = host
            elif c != 123:
                ok[i] = False
                continue
        elif hostname >= 0:
            if raw[vs[hostname]] != 34:
                ok[i] = False
                continue
            host_str = hostname
        o0 = o
        out[o] = 123
        o += 1
        first = True
        for j in range(m):
            k = kid[j]
            if k == 0 or k == 1 or k == 2 or k == 5 or (k == 3 and lv != 0) or \
                    (k == 4 and host_str == j):
                continue
            if not first:
                out[o] = 44
                o += 1
            o = _put(out, o, raw, ks[j], ve[j])
            first = False
        if not first:
            out[o] = 44
            o += 1
        o = _lit(out, o, _L_TS)
        for j in range(24):
            out[o] = stamps[i, j]
            o += 1
        o = _lit(out, o, _L_SVC)
        bad = False
        if svc >= 0 and raw[vs[svc]] == 123:
            o, bad = _other_members(out, o, raw, vs[svc], ve[svc], 7, nks, nke, nvs, nve,
                                    nkid, table, lens)
        o = _lit(out, o, _L_NAME)
        o = _put(out, o, svc_buf, svc_off[service[i]], svc_off[service[i] + 1])
        out[o] = 125
        o += 1
        if lv != 0:
            o = _lit(out, o, _L_LOG)
            if log >= 0 and raw[vs[log]] == 123:
                o, worse = _other_members(out, o, raw, vs[log], ve[log], 8, nks, nke, nvs,
                                          nve, nkid, table, lens)
                bad = bad or worse
            o = _lit(out, o, _L_LEVEL)
            o = _put(out, o, level_buf, level_off[lv], level_off[lv + 1])
            out[o] = 125
            o += 1
        if host_str >= 0:
            o = _lit(out, o, _L_HOST)
            o = _put(out, o, raw, vs[host_str], ve[host_str])
            out[o] = 125
            o += 1
        if bad:
            ok[i] = False
            o = o0
            continue
        o = _lit(out, o, _L_LOGML)
        o = _put(out, o, head_buf, head_off[tmpl[i]], head_off[tmpl[i] + 1])
        a[i], z[i] = o0, o
    return out[:o], a, z, ok


def _with_event(ev: dict, stamp: bytes, service: str, level: int, host, ours: bytes,
                message: str | None = None) -> bytes:
    """A document that keeps the original event's other fields (as ``log_doc``); ``ours``
    is the ``logml`` object, already JSON; ``message`` for an event whose text was under
    another name (journald's MESSAGE)."""
    d = ev.copy()
    d.pop("_id", None)
    d["@timestamp"] = stamp.decode()
    if message is not None:
        d["message"] = message
        if isinstance(d.get("log"), str):  # Docker's line, now the message (ECS: an object)
            del d["log"]
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
