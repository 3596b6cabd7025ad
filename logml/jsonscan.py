"""JSON events at array speed: the fields logml needs, found by one numba pass per record.

Filebeat and Logstash events are flat-ish objects; logml needs only ``message``,
``@timestamp``, the level, the service and the host. This scanner walks each record once,
validating all of it as strict JSON the way orjson does (so a NaN, a lone surrogate escape
or a trailing comma anywhere sends the record to the general path, never into an event),
unescapes ``message`` into a shared buffer and reports the spans of the other fields. A
record it is not sure about (not an object, a non-string field it needs, escapes outside
``message``, nesting deeper than the limit, anything malformed) is marked for the general
path (orjson, record by record), which is the reference the tests compare against and
which produces the precise error for a bad record.

``scan_long`` reads an over-long record (maybe cut by the reader) in bounded memory.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .plaintext import LEVEL_CODE, LEVEL_TABLE

FAST, SLOW = 0, 1
WHOLE = 0  # scan_long: the object ended well (CUT: the record ended inside it)
# fields: message, @timestamp, timestamp, log{level}, log.level, level, loglevel, severity,
#         service{name} / service (string), service.name, host{name} / host, host.name
F_MSG, F_TS, F_TS2, F_LOGLEVEL, F_FLATLEVEL, F_LEVEL, F_LOGLEVEL2, F_SEVERITY, F_SVC, \
    F_SVCNAME, F_HOST, F_HOSTNAME, F_FIELDS, N_FIELDS = range(14)
KEYS = _KEYS = ["message", "@timestamp", "timestamp", "log", "log.level", "level", "loglevel",
         "severity", "service", "service.name", "host", "host.name", "fields"]
KEY_TABLE = np.zeros((len(_KEYS), 16), dtype=np.uint8)
KEY_LEN = np.zeros(len(_KEYS), dtype=np.int64)
for _k, _w in enumerate(_KEYS):
    KEY_TABLE[_k, : len(_w)] = np.frombuffer(_w.encode(), dtype=np.uint8)
    KEY_LEN[_k] = len(_w)
SUB_LEVEL = np.frombuffer(b"level", dtype=np.uint8).copy()
SUB_NAME = np.frombuffer(b"name", dtype=np.uint8).copy()


# why a value could not be read: malformed, nested too deep, the record ended inside it,
# NaN/Infinity or a number beyond float range, a lone surrogate escape, not an object
BAD, DEEP, CUT, NON_FINITE, SURROGATE, NOT_OBJECT = -1, -2, -3, -4, -6, -7
MAYBE_INF = -5  # 1e308 <= |number| < 1e309: only a real parser can tell
_TRUE = np.frombuffer(b"true", dtype=np.uint8).copy()
_FALSE = np.frombuffer(b"false", dtype=np.uint8).copy()
_NULL = np.frombuffer(b"null", dtype=np.uint8).copy()
_NAN = np.frombuffer(b"NaN", dtype=np.uint8).copy()
_INF = np.frombuffer(b"Infinity", dtype=np.uint8).copy()


@nb.njit(cache=True, inline="always")
def is_ws(c):
    return c == 32 or c == 9 or c == 10 or c == 13


@nb.njit(cache=True, inline="always")
def _digit(c):
    return 48 <= c <= 57


@nb.njit(cache=True)
def skip_ws(b, p, e):
    while p < e and is_ws(b[p]):
        p += 1
    return p


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
def _escape(b, q, e):
    """b[q] is a backslash: (code point, length of the escape) or (error code, 0). A high
    surrogate must be followed by a low one; a lone surrogate is SURROGATE."""
    if q + 1 >= e:
        return CUT, 0
    c = b[q + 1]
    if c == 110:
        return 10, 2
    if c == 116:
        return 9, 2
    if c == 114:
        return 13, 2
    if c == 98:
        return 8, 2
    if c == 102:
        return 12, 2
    if c == 34 or c == 92 or c == 47:
        return c, 2
    if c != 117:
        return BAD, 0
    if q + 6 > e:
        return CUT, 0
    cp = _hex4(b, q + 2)
    if cp < 0:
        return BAD, 0
    if 0xDC00 <= cp <= 0xDFFF:
        return SURROGATE, 0
    if cp < 0xD800 or cp > 0xDBFF:
        return cp, 6
    if q + 12 > e:
        if (q + 6 < e and b[q + 6] != 92) or (q + 7 < e and b[q + 7] != 117):
            return SURROGATE, 0
        return CUT, 0
    if b[q + 6] != 92 or b[q + 7] != 117:
        return SURROGATE, 0
    lo = _hex4(b, q + 8)
    if lo < 0:
        return BAD, 0
    if not (0xDC00 <= lo <= 0xDFFF):
        return SURROGATE, 0
    return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00), 12


@nb.njit(cache=True)
def _string_end(b, p, e):
    """p at the opening quote: (index after the closing quote, has escapes), or (error code,
    _) for a control character, a bad escape or a lone surrogate (strict JSON, as orjson)."""
    q = p + 1
    esc = False
    while q < e:
        c = b[q]
        if c == 34:
            return q + 1, esc
        if c == 92:
            esc = True
            cp, n = _escape(b, q, e)
            if n == 0:
                return cp, esc
            q += n
            continue
        if c < 32:
            return BAD, esc
        q += 1
    return CUT, esc


@nb.njit(cache=True)
def _word(b, q, e, word):
    """The literal ``word`` at q: its end, CUT when the record ends inside it, else BAD."""
    for i in range(word.shape[0]):
        if q + i >= e:
            return CUT
        if b[q + i] != word[i]:
            return BAD
    return q + word.shape[0]


@nb.njit(cache=True)
def _scalar_end(b, p, e, exact):
    """A number, true, false or null at p (strict JSON grammar): its end or an error code.
    NaN, Infinity, -Infinity and numbers of 1e309 or more are NON_FINITE; in [1e308, 1e309)
    MAYBE_INF when ``exact`` (a real parser decides) else accepted."""
    c = b[p]
    if c == 116:
        return _word(b, p, e, _TRUE)
    if c == 102:
        return _word(b, p, e, _FALSE)
    if c == 110:
        return _word(b, p, e, _NULL)
    if c == 78:
        q = _word(b, p, e, _NAN)
        return NON_FINITE if q >= 0 else q
    q = p
    if c == 45:
        q += 1
        if q >= e:
            return CUT
    c = b[q]
    if c == 73:
        r = _word(b, q, e, _INF)
        return NON_FINITE if r >= 0 else r
    lead = -(1 << 40)  # decimal exponent of the first significant digit; none yet
    if c == 48:
        q += 1
    elif 49 <= c <= 57:
        k = q
        while q < e and _digit(b[q]):
            q += 1
        lead = q - k - 1
    else:
        return BAD
    if q < e and b[q] == 46:
        q += 1
        k = q
        while q < e and _digit(b[q]):
            if lead == -(1 << 40) and b[q] != 48:
                lead = -(q - k + 1)
            q += 1
        if q == k:
            return CUT if q >= e else BAD
    if q < e and (b[q] == 101 or b[q] == 69):
        q += 1
        sign = 1
        if q < e and (b[q] == 43 or b[q] == 45):
            sign = -1 if b[q] == 45 else 1
            q += 1
        k = q
        x = 0
        while q < e and _digit(b[q]):
            if x < 100000:
                x = x * 10 + (b[q] - 48)
            q += 1
        if q == k:
            return CUT if q >= e else BAD
        if lead != -(1 << 40):
            lead += sign * x
    if q >= e:
        return CUT  # the record ends inside the number, or right after it: malformed either way
    if lead != -(1 << 40) and lead >= 308:
        if lead >= 309:
            return NON_FINITE
        if exact:
            return MAYBE_INF
    return q


@nb.njit(cache=True)
def _value_end(b, p, e, max_depth, stack, exact):
    """p at a value: the index after it, validated as strict JSON all the way down, or an
    error code (DEEP when nested deeper than max_depth). ``stack`` holds max_depth + 1."""
    depth = 0
    q = p
    state = 0  # 0: a value is due, 1: after a value inside a container, 2: a key is due
    while True:
        q = skip_ws(b, q, e)
        if q >= e:
            return CUT
        c = b[q]
        if state == 1:
            if c == 44:
                q += 1
                state = 2 if stack[depth] == 123 else 0
            elif c == stack[depth] + 2:  # } closes {, ] closes [
                q += 1
                depth -= 1
                if depth == 0:
                    return q
            else:
                return BAD
        elif state == 2:
            if c != 34:
                return BAD
            q, _ = _string_end(b, q, e)
            if q < 0:
                return q
            q = skip_ws(b, q, e)
            if q >= e:
                return CUT
            if b[q] != 58:
                return BAD
            q += 1
            state = 0
        else:
            if c == 34:
                q, _ = _string_end(b, q, e)
                if q < 0:
                    return q
            elif c == 123 or c == 91:
                depth += 1
                if depth > max_depth:
                    return DEEP
                stack[depth] = c
                q = skip_ws(b, q + 1, e)
                if q >= e:
                    return CUT
                if b[q] != c + 2:
                    state = 2 if c == 123 else 0
                    continue
                q += 1
                depth -= 1
            else:
                q = _scalar_end(b, q, e, exact)
                if q < 0:
                    return q
            if depth == 0:
                return q
            state = 1


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
def key_index(b, k0, k1, table, lens):
    """Row of `table` (keys, lengths `lens`) equal to b[k0:k1], or -1."""
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
def _sub_string(b, p, e, sub, max_depth, stack):
    """p at '{': (status, start, end, object end) of the string member ``sub`` of this
    object, its other members validated (nested up to max_depth). status 0 absent,
    1 found, -1 the general path must decide."""
    found = 0
    s0 = 0
    s1 = 0
    q = skip_ws(b, p + 1, e)
    if q < e and b[q] == 125:
        return 0, 0, 0, q + 1
    while q < e:
        if b[q] != 34:
            return -1, 0, 0, 0
        k1, esc = _string_end(b, q, e)
        if k1 < 0 or esc:
            return -1, 0, 0, 0
        is_sub = _key_is(b, q + 1, k1 - 1, sub)
        q = skip_ws(b, k1, e)
        if q >= e or b[q] != 58:
            return -1, 0, 0, 0
        q = skip_ws(b, q + 1, e)
        if q >= e:
            return -1, 0, 0, 0
        if is_sub:
            if b[q] != 34:
                return -1, 0, 0, 0
            v1, esc = _string_end(b, q, e)
            if v1 < 0 or esc:
                return -1, 0, 0, 0
            found, s0, s1 = 1, q + 1, v1 - 1
            q = v1
        else:
            q = _value_end(b, q, e, max_depth, stack, True)
            if q < 0:
                return -1, 0, 0, 0
        q = skip_ws(b, q, e)
        if q < e and b[q] == 44:
            q = skip_ws(b, q + 1, e)
            continue
        if q < e and b[q] == 125:
            return found, s0, s1, q + 1
        return -1, 0, 0, 0
    return -1, 0, 0, 0


@nb.njit(cache=True)
def _utf8_len(cp):
    return 1 if cp < 0x80 else (2 if cp < 0x800 else (3 if cp < 0x10000 else 4))


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
def _unescape(b, p, e, out, o):
    """Validated JSON string body b[p:e] (without quotes) unescaped into out at o: new o,
    or -1 when it holds NUL (dead-lettered by the general path)."""
    q = p
    while q < e:
        c = b[q]
        if c != 92:
            out[o] = c
            o += 1
            q += 1
            continue
        cp, n = _escape(b, q, e)
        if n == 0 or cp == 0:
            return -1
        o = _put_utf8(out, o, cp)
        q += n
    return o


@nb.njit(cache=True)
def _unescape_capped(b, p, e, out, cap):
    """p at the opening quote of a string that may be longer than ``cap`` bytes unescaped,
    or cut by the end of the record: (index after the closing quote or an error code,
    bytes written to out, whether the text was cut). Only whole characters are written."""
    q = p + 1
    o = 0
    room = True
    while q < e:
        c = b[q]
        if c == 34:
            return q + 1, o, not room
        if c == 92:
            cp, n = _escape(b, q, e)
            if n == 0:
                return cp, o, True
            if room and o + _utf8_len(cp) <= cap:
                o = _put_utf8(out, o, cp)
            else:
                room = False
            q += n
            continue
        if c < 32:
            return BAD, o, True
        if room:
            # a lead byte needs room for its whole character, or the text ends before it
            need = 1 if c < 0xC0 else (2 if c < 0xE0 else (3 if c < 0xF0 else 4))
            if o + need > cap:
                room = False
            else:
                out[o] = c
                o += 1
        q += 1
    # the record ended inside the string: drop a character it cut
    k = o
    while k > 0 and 0x80 <= out[k - 1] <= 0xBF and o - k < 3:
        k -= 1
    if k > 0 and out[k - 1] >= 0xC0:
        lead = out[k - 1]
        if o - k + 1 < (2 if lead < 0xE0 else (3 if lead < 0xF0 else 4)):
            o = k - 1
    return CUT, o, True


@nb.njit(cache=True)
def json_shaped(buf, starts, ends, max_depth):
    """Per line: is it JSON, for format ``auto``? A line that opens an object (``{`` then
    a key or ``}``) can only be a JSON event, valid or not. A line that is one whole JSON
    array (or nests deeper than max_depth) is JSON that is no event. Anything else, like
    ``[main] started`` or ``{x=1}``, can only be plain text."""
    n = starts.shape[0]
    out = np.zeros(n, dtype=np.bool_)
    stack = np.zeros(max_depth + 2, dtype=np.uint8)
    for i in range(n):
        e = ends[i]
        p = skip_ws(buf, starts[i], e)
        if p < e and buf[p] == 123:
            q = skip_ws(buf, p + 1, e)
            out[i] = q < e and (buf[q] == 34 or buf[q] == 125)
        elif p < e and buf[p] == 91:
            q = _value_end(buf, p, e, max_depth, stack, False)
            out[i] = q == DEEP or (q >= 0 and skip_ws(buf, q, e) == e)
    return out


@nb.njit(cache=True)
def scan_events(buf, starts, ends, max_depth, table, lens, sub_level, sub_name):
    """Per record: FAST or SLOW, the unescaped message in ``out`` (msg bounds), and the
    spans (start, end) in ``buf`` of every field of interest (-1 when absent)."""
    n = starts.shape[0]
    status = np.zeros(n, dtype=np.int8)
    spans = np.full((n, N_FIELDS, 2), -1, dtype=np.int64)
    out = np.empty(buf.shape[0] + 1, dtype=np.uint8)
    msg = np.zeros((n, 2), dtype=np.int64)
    stack = np.zeros(max_depth + 2, dtype=np.uint8)
    o = 0
    for i in range(n):
        e = ends[i]
        p = skip_ws(buf, starts[i], e)
        if p >= e or buf[p] != 123:
            status[i] = SLOW
            continue
        q = skip_ws(buf, p + 1, e)
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
                field = key_index(buf, q + 1, k1 - 1, table, lens)
                q = skip_ws(buf, k1, e)
                if q >= e or buf[q] != 58:
                    slow = True
                    break
                q = skip_ws(buf, q + 1, e)
                if q >= e:
                    slow = True
                    break
                v = q
                nested = field == F_LOGLEVEL or field == F_SVC or field == F_HOST
                esc = False
                if buf[v] == 34:
                    q, esc = _string_end(buf, v, e)
                    if q < 0:
                        slow = True
                        break
                elif nested and buf[v] == 123:  # validated and read in one walk
                    # the event and this object are two levels
                    st, s0, s1, q = _sub_string(buf, v, e, sub_level if field == F_LOGLEVEL
                                                else sub_name, max_depth - 2, stack)
                    if st < 0:
                        slow = True
                        break
                    spans[i, field, 0] = s0 if st == 1 else -2  # -2: object, no member
                    spans[i, field, 1] = s1
                else:
                    # the event itself is one level
                    q = _value_end(buf, v, e, max_depth - 1, stack, True)
                    if q < 0:
                        slow = True
                        break
                if field == F_FIELDS:
                    spans[i, field, 0] = v
                    spans[i, field, 1] = q
                elif field >= 0 and not (nested and buf[v] == 123):
                    if buf[v] == 34 and field != F_LOGLEVEL:
                        # only message is unescaped; other escaped text takes the general path
                        if field != F_MSG and esc:
                            slow = True
                            break
                        spans[i, field, 0] = v + 1
                        spans[i, field, 1] = q - 1
                    else:
                        slow = True  # numbers, nulls and objects where text is expected
                        break
                q = skip_ws(buf, q, e)
                if q < e and buf[q] == 44:
                    q = skip_ws(buf, q + 1, e)
                    continue
                if q < e and buf[q] == 125:
                    q += 1
                    break
                slow = True
                break
        if not slow and skip_ws(buf, q, e) != e:
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
def scan_long(buf, cap, max_depth, table, lens):
    """One record longer than max_line_bytes (maybe cut short by the reader): the top-level
    fields of interest, read in one pass with memory bounded by ``cap``.

    Returns (status, spans, message, message_state). status: WHOLE (the object ended
    well), CUT (the record ended inside it: fields after the cut are unknown) or an error
    code (BAD, DEEP, NON_FINITE, SURROGATE, NOT_OBJECT). spans: per field, the bounds of
    its raw JSON value (strings with their quotes), -1 when not seen. message: the
    unescaped ``message`` text, at most ``cap`` bytes of whole characters. message_state:
    0 not seen, 1 whole, 2 cut, 3 not a string."""
    e = buf.shape[0]
    spans = np.full((N_FIELDS, 2), -1, dtype=np.int64)
    out = np.empty(cap + 4, dtype=np.uint8)
    stack = np.zeros(max_depth + 2, dtype=np.uint8)
    mlen = 0
    mstate = 0
    p = skip_ws(buf, 0, e)
    if p >= e or buf[p] != 123:
        return NOT_OBJECT, spans, out[:0], 0
    q = skip_ws(buf, p + 1, e)
    if q < e and buf[q] == 125:
        q += 1
    else:
        while True:
            if q >= e:
                return CUT, spans, out[:mlen], mstate
            if buf[q] != 34:
                return BAD, spans, out[:mlen], mstate
            k1, esc = _string_end(buf, q, e)
            if k1 < 0:
                return k1, spans, out[:mlen], mstate
            field = -1 if esc else key_index(buf, q + 1, k1 - 1, table, lens)
            q = skip_ws(buf, k1, e)
            if q >= e:
                return CUT, spans, out[:mlen], mstate
            if buf[q] != 58:
                return BAD, spans, out[:mlen], mstate
            q = skip_ws(buf, q + 1, e)
            if q >= e:
                return CUT, spans, out[:mlen], mstate
            v = q
            if field == F_MSG and buf[v] == 34:
                q, mlen, cut = _unescape_capped(buf, v, e, out, cap)
                mstate = 2 if cut else 1
                if q < 0:
                    return q, spans, out[:mlen], mstate
                spans[field, 0] = v
                spans[field, 1] = q
            else:
                q = _value_end(buf, v, e, max_depth - 1, stack, False)
                if q < 0:
                    return q, spans, out[:mlen], mstate
                if field >= 0:
                    spans[field, 0] = v
                    spans[field, 1] = q
                    if field == F_MSG:
                        mstate = 3
                        mlen = 0
            q = skip_ws(buf, q, e)
            if q >= e:
                return CUT, spans, out[:mlen], mstate
            if buf[q] == 44:
                q = skip_ws(buf, q + 1, e)
                continue
            if buf[q] == 125:
                q += 1
                break
            return BAD, spans, out[:mlen], mstate
    if skip_ws(buf, q, e) != e:
        return BAD, spans, out[:mlen], mstate
    return WHOLE, spans, out[:mlen], mstate


@nb.njit(cache=True, inline="always")
def _level_of(buf, s, m, table, lens, codes):
    """Level code of the word buf[s:s+m] (any case); 0 when it is no level word."""
    for k in range(table.shape[0]):
        if lens[k] != m:
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
            return codes[k]
    return 0


@nb.njit(cache=True)
def event_fields(buf, spans, rows, table, codes):
    """The columns of the records ``rows`` of a scan, in one pass over their spans:
    (timestamp bounds (0, 0 when absent), level code (-1 when none; log.level nested or
    flat, else level, loglevel, severity, as the general path reads them), service id by
    first appearance, and per distinct service: the 64-bit hash of its name's bytes (0:
    absent or empty, the default service) and the row where it first appears)."""
    n = rows.shape[0]
    ts_s = np.zeros(n, dtype=np.int64)
    ts_e = np.zeros(n, dtype=np.int64)
    level = np.full(n, -1, dtype=np.int8)
    sid = np.empty(n, dtype=np.int32)
    lens = np.zeros(table.shape[0], dtype=np.int64)
    for k in range(table.shape[0]):
        while lens[k] < table.shape[1] and table[k, lens[k]] != 0:
            lens[k] += 1
    cap = 16
    while cap < 2 * n:
        cap *= 2
    slot_h = np.zeros(cap, dtype=np.uint64)
    slot_id = np.full(cap, -1, dtype=np.int32)
    uh = np.empty(n, dtype=np.uint64)
    ufirst = np.empty(n, dtype=np.int64)
    n_u = 0
    for r in range(n):
        i = rows[r]
        if spans[i, F_TS, 0] >= 0:
            ts_s[r] = spans[i, F_TS, 0]
            ts_e[r] = spans[i, F_TS, 1]
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
        if f >= 0:
            level[r] = _level_of(buf, spans[i, f, 0], spans[i, f, 1] - spans[i, f, 0],
                                 table, lens, codes)
        g = F_SVCNAME if spans[i, F_SVC, 0] == -1 else F_SVC
        s0 = spans[i, g, 0]
        s1 = spans[i, g, 1]
        h = np.uint64(0)
        if s0 >= 0 and s1 > s0:
            h = np.uint64(0xCBF29CE484222325)
            for k in range(s0, s1):
                h = (h ^ np.uint64(buf[k])) * np.uint64(0x100000001B3)
            h = h | np.uint64(1)
        j = np.int64(h ^ (h >> np.uint64(29))) & (cap - 1)
        while slot_id[j] >= 0 and slot_h[j] != h:
            j = (j + 1) & (cap - 1)
        if slot_id[j] < 0:
            slot_id[j] = n_u
            slot_h[j] = h
            uh[n_u] = h
            ufirst[n_u] = r
            n_u += 1
        sid[r] = slot_id[j]
    return ts_s, ts_e, level, sid, uh[:n_u], ufirst[:n_u]


def event_fields_reference(buf, spans, rows, table, codes):
    """Numpy/Python reference of ``event_fields``."""
    sp = spans[rows]
    has = sp[:, F_TS, 0] >= 0
    ts_s = np.where(has, sp[:, F_TS, 0], 0)
    ts_e = np.where(has, sp[:, F_TS, 1], 0)
    words = {bytes(w[w != 0]): int(c) for w, c in zip(table, codes)}
    level = np.full(len(rows), -1, dtype=np.int8)
    hashes = np.zeros(len(rows), dtype=np.uint64)
    for r, row in enumerate(sp):
        if row[F_LOGLEVEL, 0] >= 0:
            f = F_LOGLEVEL
        elif row[F_LOGLEVEL, 0] == -1 and row[F_FLATLEVEL, 0] >= 0:
            f = F_FLATLEVEL
        else:
            f = next((g for g in (F_LEVEL, F_LOGLEVEL2, F_SEVERITY) if row[g, 0] >= 0), -1)
        if f >= 0:
            level[r] = words.get(bytes(buf[row[f, 0]:row[f, 1]]).upper(), 0)
        s0, s1 = row[F_SVCNAME] if row[F_SVC, 0] == -1 else row[F_SVC]
        if s0 >= 0 and s1 > s0:
            h = 0xCBF29CE484222325
            for c in bytes(buf[s0:s1]):
                h = ((h ^ c) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
            hashes[r] = h | 1
    uh, ufirst, sid = [], [], np.empty(len(rows), dtype=np.int32)
    seen = {}
    for r, h in enumerate(hashes.tolist()):
        if h not in seen:
            seen[h] = len(uh)
            uh.append(h)
            ufirst.append(r)
        sid[r] = seen[h]
    return (ts_s, ts_e, level, sid, np.array(uh, dtype=np.uint64),
            np.array(ufirst, dtype=np.int64))


def scan(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, max_depth: int):
    return scan_events(buf, starts, ends, max_depth, KEY_TABLE, KEY_LEN, SUB_LEVEL, SUB_NAME)


def fields(buf: np.ndarray, spans: np.ndarray, rows: np.ndarray):
    """``event_fields`` with logml's level words."""
    return event_fields(buf, spans, rows, LEVEL_TABLE, LEVEL_CODE)


def read_long(raw: bytes, cap: int, max_depth: int):
    """``scan_long`` of one over-long record."""
    return scan_long(np.frombuffer(raw, dtype=np.uint8), cap, max_depth, KEY_TABLE, KEY_LEN)
