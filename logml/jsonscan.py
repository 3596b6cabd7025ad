"""JSON events at array speed: the fields logml needs, found by one numba pass per record.

Filebeat and Logstash events are flat-ish objects; logml needs only ``message``,
``@timestamp``, the level, the service and the host. This scanner walks each record once,
skipping everything else, unescapes ``message`` into a shared buffer and reports the spans
of the other fields. A record it is not sure about (not an object, a non-string field it
needs, escapes outside ``message``, nesting deeper than the limit, anything malformed) is
marked for the general path (orjson, record by record), which is the reference the tests
compare against and which produces the precise error for a bad record.
"""
from __future__ import annotations

import numba as nb
import numpy as np

FAST, SLOW = 0, 1
# fields: message, @timestamp, timestamp, log{level}, log.level, level, loglevel, severity,
#         service{name} / service (string), service.name, host{name} / host, host.name
F_MSG, F_TS, F_TS2, F_LOGLEVEL, F_FLATLEVEL, F_LEVEL, F_LOGLEVEL2, F_SEVERITY, F_SVC, \
    F_SVCNAME, F_HOST, F_HOSTNAME, F_FIELDS, N_FIELDS = range(14)
_KEYS = ["message", "@timestamp", "timestamp", "log", "log.level", "level", "loglevel",
         "severity", "service", "service.name", "host", "host.name", "fields"]
KEY_TABLE = np.zeros((len(_KEYS), 16), dtype=np.uint8)
KEY_LEN = np.zeros(len(_KEYS), dtype=np.int64)
for _k, _w in enumerate(_KEYS):
    KEY_TABLE[_k, : len(_w)] = np.frombuffer(_w.encode(), dtype=np.uint8)
    KEY_LEN[_k] = len(_w)
SUB_LEVEL = np.frombuffer(b"level", dtype=np.uint8).copy()
SUB_NAME = np.frombuffer(b"name", dtype=np.uint8).copy()


@nb.njit(cache=True, inline="always")
def _ws(c):
    return c == 32 or c == 9 or c == 10 or c == 13


@nb.njit(cache=True)
def _skip_ws(b, p, e):
    while p < e and _ws(b[p]):
        p += 1
    return p


@nb.njit(cache=True)
def _string_end(b, p, e):
    """p at the opening quote: (index after the closing quote, has escapes) or (-1, _)."""
    q = p + 1
    esc = False
    while q < e:
        c = b[q]
        if c == 34:
            return q + 1, esc
        if c == 92:
            esc = True
            q += 2
            continue
        if c < 32:
            return -1, esc
        q += 1
    return -1, esc


@nb.njit(cache=True)
def _value_end(b, p, e, max_depth):
    """p at a value: index after it, or -1 when malformed or nested deeper than max_depth."""
    c = b[p]
    if c == 34:
        q, _ = _string_end(b, p, e)
        return q
    if c == 123 or c == 91:
        depth = 0
        q = p
        while q < e:
            c = b[q]
            if c == 34:
                q, _ = _string_end(b, q, e)
                if q < 0:
                    return -1
                continue
            if c == 123 or c == 91:
                depth += 1
                if depth > max_depth:
                    return -1
            elif c == 125 or c == 93:
                depth -= 1
                if depth == 0:
                    return q + 1
            q += 1
        return -1
    # number or literal: validated loosely, the strict parser sees anything odd
    q = p
    while q < e and not (_ws(b[q]) or b[q] == 44 or b[q] == 125 or b[q] == 93):
        d = b[q]
        if not ((48 <= d <= 57) or d == 45 or d == 43 or d == 46 or d == 101 or d == 69
                or (97 <= d <= 122)):
            return -1
        q += 1
    n = q - p
    if n == 0:
        return -1
    if 97 <= c <= 122:  # true false null only
        if n == 4 and b[p] == 116 and b[p + 1] == 114 and b[p + 2] == 117 and b[p + 3] == 101:
            return q
        if n == 4 and b[p] == 110 and b[p + 1] == 117 and b[p + 2] == 108 and b[p + 3] == 108:
            return q
        if (n == 5 and b[p] == 102 and b[p + 1] == 97 and b[p + 2] == 108 and b[p + 3] == 115
                and b[p + 4] == 101):
            return q
        return -1
    return q


@nb.njit(cache=True)
def _key_is(b, k0, k1, word):
    n = k1 - k0
    if n != word.shape[0]:
        return False
    for i in range(n):
        if b[k0 + i] != word[i]:
            return False
    return True


@nb.njit(cache=True)
def _which_key(b, k0, k1, table, lens):
    n = k1 - k0
    for k in range(table.shape[0]):
        if lens[k] != n:
            continue
        ok = True
        for i in range(n):
            if b[k0 + i] != table[k, i]:
                ok = False
                break
        if ok:
            return k
    return -1


@nb.njit(cache=True)
def _sub_string(b, p, e, sub, max_depth):
    """p at '{': (status, start, end) of the string member ``sub`` of this object.
    status 0 absent, 1 found, -1 the general path must decide."""
    found = 0
    s0 = 0
    s1 = 0
    q = _skip_ws(b, p + 1, e)
    if q < e and b[q] == 125:
        return 0, 0, 0
    while q < e:
        if b[q] != 34:
            return -1, 0, 0
        k1, esc = _string_end(b, q, e)
        if k1 < 0 or esc:
            return -1, 0, 0
        is_sub = _key_is(b, q + 1, k1 - 1, sub)
        q = _skip_ws(b, k1, e)
        if q >= e or b[q] != 58:
            return -1, 0, 0
        q = _skip_ws(b, q + 1, e)
        if q >= e:
            return -1, 0, 0
        if is_sub:
            if b[q] != 34:
                return -1, 0, 0
            v1, esc = _string_end(b, q, e)
            if v1 < 0 or esc:
                return -1, 0, 0
            found, s0, s1 = 1, q + 1, v1 - 1
            q = v1
        else:
            q = _value_end(b, q, e, max_depth)
            if q < 0:
                return -1, 0, 0
        q = _skip_ws(b, q, e)
        if q < e and b[q] == 44:
            q = _skip_ws(b, q + 1, e)
            continue
        if q < e and b[q] == 125:
            return found, s0, s1
        return -1, 0, 0
    return -1, 0, 0


@nb.njit(cache=True)
def _put_utf8(out, o, cp):
    if cp < 0x80:
        out[o] = cp
        return o + 1
    if cp < 0x800:
        out[o] = 0xC0 | (cp >> 6)
        out[o + 1] = 0x80 | (cp & 0x3F)
        return o + 2
    if cp < 0x10000:
        out[o] = 0xE0 | (cp >> 12)
        out[o + 1] = 0x80 | ((cp >> 6) & 0x3F)
        out[o + 2] = 0x80 | (cp & 0x3F)
        return o + 3
    out[o] = 0xF0 | (cp >> 18)
    out[o + 1] = 0x80 | ((cp >> 12) & 0x3F)
    out[o + 2] = 0x80 | ((cp >> 6) & 0x3F)
    out[o + 3] = 0x80 | (cp & 0x3F)
    return o + 4


@nb.njit(cache=True)
def _hex4(b, p):
    v = 0
    for i in range(4):
        c = b[p + i]
        if 48 <= c <= 57:
            d = c - 48
        elif 97 <= c <= 102:
            d = c - 87
        elif 65 <= c <= 70:
            d = c - 55
        else:
            return -1
        v = v * 16 + d
    return v


@nb.njit(cache=True)
def _unescape(b, p, e, out, o):
    """JSON string body b[p:e] (without quotes) unescaped into out at o: new o, or -1."""
    q = p
    while q < e:
        c = b[q]
        if c != 92:
            out[o] = c
            o += 1
            q += 1
            continue
        if q + 1 >= e:
            return -1
        c = b[q + 1]
        q += 2
        if c == 110:
            out[o] = 10
        elif c == 116:
            out[o] = 9
        elif c == 114:
            out[o] = 13
        elif c == 98:
            out[o] = 8
        elif c == 102:
            out[o] = 12
        elif c == 34 or c == 92 or c == 47:
            out[o] = c
        elif c == 117:
            if q + 4 > e:
                return -1
            cp = _hex4(b, q)
            q += 4
            if cp < 0:
                return -1
            if 0xD800 <= cp <= 0xDBFF:
                if q + 6 > e or b[q] != 92 or b[q + 1] != 117:
                    return -1
                lo = _hex4(b, q + 2)
                if not (0xDC00 <= lo <= 0xDFFF):
                    return -1
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                q += 6
            elif 0xDC00 <= cp <= 0xDFFF or cp == 0:
                return -1  # a lone surrogate, or NUL (dead-lettered by the general path)
            o = _put_utf8(out, o, cp)
            continue
        else:
            return -1
        o += 1
    return o


@nb.njit(cache=True)
def scan_events(buf, starts, ends, max_depth, table, lens, sub_level, sub_name):
    """Per record: FAST or SLOW, the unescaped message in ``out`` (msg bounds), and the
    spans (start, end) in ``buf`` of every field of interest (-1 when absent)."""
    n = starts.shape[0]
    status = np.zeros(n, dtype=np.int8)
    spans = np.full((n, N_FIELDS, 2), -1, dtype=np.int64)
    out = np.empty(buf.shape[0] + 1, dtype=np.uint8)
    msg = np.zeros((n, 2), dtype=np.int64)
    o = 0
    for i in range(n):
        e = ends[i]
        p = _skip_ws(buf, starts[i], e)
        if p >= e or buf[p] != 123:
            status[i] = SLOW
            continue
        q = _skip_ws(buf, p + 1, e)
        slow = False
        if q < e and buf[q] == 125:
            q += 1
        else:
            while True:
                if q >= e or buf[q] != 34:
                    slow = True
                    break
                k1, esc = _string_end(buf, q, e)
                if k1 < 0 or esc:
                    slow = True
                    break
                field = _which_key(buf, q + 1, k1 - 1, table, lens)
                q = _skip_ws(buf, k1, e)
                if q >= e or buf[q] != 58:
                    slow = True
                    break
                q = _skip_ws(buf, q + 1, e)
                if q >= e:
                    slow = True
                    break
                v = q
                q = _value_end(buf, v, e, max_depth - 1)  # the event itself is one level
                if q < 0:
                    slow = True
                    break
                if field == F_FIELDS:
                    spans[i, field, 0] = v
                    spans[i, field, 1] = q
                elif field >= 0:
                    nested = field == F_LOGLEVEL or field == F_SVC or field == F_HOST
                    if buf[v] == 123 and nested:
                        st, s0, s1 = _sub_string(buf, v, q, sub_level if field == F_LOGLEVEL
                                                 else sub_name, max_depth)
                        if st < 0:
                            slow = True
                            break
                        spans[i, field, 0] = s0 if st == 1 else -2  # -2: object, no member
                        spans[i, field, 1] = s1
                    elif buf[v] == 34 and field != F_LOGLEVEL:
                        # only message is unescaped; other escaped text takes the general path
                        if field != F_MSG and _string_end(buf, v, q)[1]:
                            slow = True
                            break
                        spans[i, field, 0] = v + 1
                        spans[i, field, 1] = q - 1
                    else:
                        slow = True  # numbers, nulls and objects where text is expected
                        break
                q = _skip_ws(buf, q, e)
                if q < e and buf[q] == 44:
                    q = _skip_ws(buf, q + 1, e)
                    continue
                if q < e and buf[q] == 125:
                    q += 1
                    break
                slow = True
                break
        if not slow and _skip_ws(buf, q, e) != e:
            slow = True  # something after the object
        # fields that only the general path reads the same way
        if not slow and (spans[i, F_MSG, 0] < 0 or spans[i, F_TS, 0] == -1 and
                         spans[i, F_TS2, 0] >= 0 or spans[i, F_LOGLEVEL, 0] != -1 and
                         spans[i, F_FLATLEVEL, 0] >= 0 or spans[i, F_FIELDS, 0] >= 0 and
                         spans[i, F_SVC, 0] == -1 and spans[i, F_SVCNAME, 0] < 0):
            slow = True
        if slow:
            status[i] = SLOW
            continue
        m = _unescape(buf, spans[i, F_MSG, 0], spans[i, F_MSG, 1], out, o)
        if m < 0:
            status[i] = SLOW
            continue
        msg[i, 0] = o
        msg[i, 1] = m
        o = m
    return status, spans, out[:o], msg


@nb.njit(cache=True)
def span_hashes(buf, spans, field):
    """64-bit hash of one field's bytes per record (0 when absent)."""
    n = spans.shape[0]
    out = np.zeros(n, dtype=np.uint64)
    for i in range(n):
        s = spans[i, field, 0]
        if s < 0:
            continue
        h = np.uint64(0xCBF29CE484222325)
        for k in range(s, spans[i, field, 1]):
            h = (h ^ np.uint64(buf[k])) * np.uint64(0x100000001B3)
        out[i] = h | np.uint64(1)
    return out


@nb.njit(cache=True)
def span_levels(buf, spans, table, codes):
    """Level code per record as the general path reads it: log.level (nested or flat),
    else level, loglevel, severity; 0 for an unknown word, -1 when there is none."""
    n = spans.shape[0]
    out = np.full(n, -1, dtype=np.int8)
    for i in range(n):
        f = -1
        if spans[i, F_LOGLEVEL, 0] >= 0:
            f = F_LOGLEVEL
        elif spans[i, F_LOGLEVEL, 0] == -1 and spans[i, F_FLATLEVEL, 0] >= 0:
            f = F_FLATLEVEL
        elif spans[i, F_LEVEL, 0] >= 0:
            f = F_LEVEL
        elif spans[i, F_LOGLEVEL2, 0] >= 0:
            f = F_LOGLEVEL2
        elif spans[i, F_SEVERITY, 0] >= 0:
            f = F_SEVERITY
        if f < 0:
            continue
        s = spans[i, f, 0]
        m = spans[i, f, 1] - s
        out[i] = 0
        for k in range(table.shape[0]):
            ln = 0
            while ln < 8 and table[k, ln] != 0:
                ln += 1
            if ln != m:
                continue
            ok = True
            for j in range(m):
                c = buf[s + j]
                if 97 <= c <= 122:
                    c -= 32
                if c != table[k, j]:
                    ok = False
                    break
            if ok:
                out[i] = codes[k]
                break
    return out


def scan(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, max_depth: int):
    return scan_events(buf, starts, ends, max_depth, KEY_TABLE, KEY_LEN, SUB_LEVEL, SUB_NAME)
