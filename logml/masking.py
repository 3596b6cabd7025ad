"""Variable-token masking: one numba pass over a batch of UTF-8 lines.

The scanner turns each line into its *masked form* (variable tokens replaced by
placeholders such as ``<NUM>``, whitespace folded to single spaces) and a 64-bit hash of
that form, the line's *shape*. Two lines with the same shape are the same to Drain, so
the template stage only has to cluster each shape once.

Rules, applied to each whitespace-separated token (surrounding brackets, quotes and
trailing ``,;:.!`` are kept around the placeholder):

* whole token: ``URL`` (scheme://...), ``EMAIL``, ``PATH`` (/a/b, ./a, ~/a, C:\\a),
  ``UUID``, ``IP`` (IPv4 with optional port, IPv6, MAC-like colon groups),
  ``TS`` (dates and times: 2024-01-31, 12:30:01.5, 2024-01-31T12:30:01Z, 31/01/2024),
  ``ID`` (block/job/container style ids: a word, ``_`` or ``-``, then a digit-bearing tail,
  e.g. ``blk_-1608``, ``container_1445_01_000003``, ``node-12``),
  ``NAME`` (dotted names: host names, Java classes, bundle ids; three or more parts, the
  last starting with a letter, an optional ``:line`` or ``:port``, e.g.
  ``mail.example.com``, ``com.apple.xpc.launchd``, ``org.x.Foo.bar:120``): names by shape,
  which a line carries as a variable far more often than as its event's wording;
* a request path (after ``GET``, ``POST``, ... ; with ``ROUTES``): masked by its route, not
  whole: path segments that hold a digit (but API versions, ``v1``) and every query value
  become ``<*>`` (``GET /api/v1/users/<*>/cart``, ``/search?q=<*>&page=<*>``): the route
  names the event (a spike of one endpoint must not drown in all of them), its ids and
  query values are variables;
* ``KV``: in ``key=value`` the value is masked as ``<*>`` when it holds a digit or is a
  name; values of letters only (``status=failed``) are kept: they name a different event;
* inside a token: numbers bounded by non-alphanumerics, signed or decimal, with a unit of
  up to three letters or ``%`` (``-3``, ``12ms``, ``3.5MB``) become ``NUM``; ``0x1f`` and
  runs of six or more hex digits holding a digit become ``HEX``.

The mask set is a bit field (``MASK_BITS``), so a pipeline file can switch classes off.
``mask_reference`` is the same specification written with Python's ``re``; the tests
compare the two.
"""
from __future__ import annotations

import functools
import re
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

from .jit import compiling

# class codes (also the order of PLACEHOLDERS)
URL, EMAIL, PATH, UUID, IP, TS, ID, KV, NUM, HEX, NAME = range(1, 12)
MASK_BITS = {
    "url": 1 << URL, "email": 1 << EMAIL, "path": 1 << PATH, "uuid": 1 << UUID,
    "ip": 1 << IP, "timestamp": 1 << TS, "id": 1 << ID, "kv": 1 << KV,
    "number": 1 << NUM, "hex": 1 << HEX, "name": 1 << NAME,
}
ALL_MASKS = sum(MASK_BITS.values())
# not a mask of its own but a rule of PATH (template rules 2, template.MASK_RULES): a path
# after a request method keeps its route (_route); without it, it is <PATH> as any path
ROUTES = 1 << 12
PLACEHOLDERS = ["", "<URL>", "<EMAIL>", "<PATH>", "<UUID>", "<IP>", "<TS>", "<ID>",
                "<*>", "<NUM>", "<HEX>", "<NAME>"]
_PH_BYTES = np.zeros((len(PLACEHOLDERS), 8), dtype=np.uint8)
_PH_LEN = np.zeros(len(PLACEHOLDERS), dtype=np.int64)
for _k, _p in enumerate(PLACEHOLDERS):
    _PH_BYTES[_k, : len(_p)] = np.frombuffer(_p.encode(), dtype=np.uint8)
    _PH_LEN[_k] = len(_p)

_DATE_WORDS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "sept", "oct",
               "nov", "dec", "january", "february", "march", "april", "june", "july",
               "august", "september", "october", "november", "december", "mon", "tue",
               "wed", "thu", "fri", "sat", "sun", "monday", "tuesday", "wednesday",
               "thursday", "friday", "saturday", "sunday"]
_DW_BYTES = np.zeros((len(_DATE_WORDS), 10), dtype=np.uint8)
for _k, _w in enumerate(_DATE_WORDS):
    _DW_BYTES[_k, : len(_w)] = np.frombuffer(_w.encode(), dtype=np.uint8)
HTTP_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
_METHODS = np.zeros((len(HTTP_METHODS), 8), dtype=np.uint8)  # numba freezes it
for _k, _w in enumerate(HTTP_METHODS):
    _METHODS[_k, : len(_w)] = np.frombuffer(_w.encode(), dtype=np.uint8)

# One explicit signature per entry point: compiled once (or loaded from the cache) at import,
# never re-specialised for a caller's array flavour, so two first runs at once write the same
# cache entries. Arrays are typed read-only, which writable ones convert to for free.
_BYTES = nb.types.Array(nb.types.uint8, 1, "C", readonly=True)
_TABLE = nb.types.Array(nb.types.uint8, 2, "C", readonly=True)
_I64 = nb.types.Array(nb.types.int64, 1, "A", readonly=True)
_U64 = nb.types.Array(nb.types.uint64, 1, "A", readonly=True)
_TABLE_ARGS = (_TABLE, _I64, _TABLE)
_SIG_HASHES = nb.types.Tuple((nb.types.uint64[::1], nb.types.int32[::1], nb.types.uint8[::1],
                               nb.types.int64[::1]))(
    _BYTES, _I64, _I64, _U64, nb.types.int64, *_TABLE_ARGS)

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)


def mask_flags(names) -> int:
    """Bit field for a list of mask names; unknown names are a configuration error."""
    flags = 0
    for name in names:
        if name not in MASK_BITS:
            raise ValueError(f"unknown mask {name!r}; known masks: {', '.join(MASK_BITS)}")
        flags |= MASK_BITS[name]
    return flags


# ---------------------------------------------------------------- byte classes
@nb.njit(cache=True)
def _is_ws(c):
    return c == 32 or (9 <= c <= 13)


@nb.njit(cache=True)
def _is_digit(c):
    return 48 <= c <= 57


@nb.njit(cache=True)
def _is_alpha(c):
    return (65 <= c <= 90) or (97 <= c <= 122) or c >= 128


@nb.njit(cache=True)
def _is_alnum(c):
    return _is_digit(c) or _is_alpha(c)


@nb.njit(cache=True)
def _is_hex(c):
    return _is_digit(c) or (65 <= c <= 70) or (97 <= c <= 102)


@nb.njit(cache=True)
def _is_open(c):  # ( [ { < " '
    return c == 40 or c == 91 or c == 123 or c == 60 or c == 34 or c == 39


@nb.njit(cache=True)
def _is_close(c):  # ) ] } > " ' , ; : . !
    return (c == 41 or c == 93 or c == 125 or c == 62 or c == 34 or c == 39 or c == 44
            or c == 59 or c == 58 or c == 46 or c == 33)


# ---------------------------------------------------------------- whole-token classes
# (_counts, _whole_class and _copy are inlined where called: as calls they cost a fifth of
# the scan, for well under a second of compiling)
@nb.njit(cache=True)
def _is_url(b, a, e):
    # letters then "://" then something
    k = a
    while k < e and _is_alpha(b[k]):
        k += 1
    return k > a and k + 3 < e and b[k] == 58 and b[k + 1] == 47 and b[k + 2] == 47


@nb.njit(cache=True)
def _is_email(b, a, e):
    at = -1
    for k in range(a, e):
        c = b[k]
        if c == 64:
            if at >= 0:
                return False
            at = k
        elif not (_is_alnum(c) or c == 46 or c == 95 or c == 45 or c == 43 or c == 37):
            return False
    if at <= a or at >= e - 3:
        return False
    dot = False
    alpha_after = False
    for k in range(at + 1, e):
        if b[k] == 46 and k > at + 1:
            dot = True
        elif _is_alpha(b[k]) and dot:
            alpha_after = True
    return dot and alpha_after


@nb.njit(cache=True)
def _is_path(b, a, e):
    n = e - a
    if n >= 2 and b[a] == 47:  # /x
        return b[a + 1] != 47 or n > 2
    if n >= 3 and (b[a] == 46 or b[a] == 126) and b[a + 1] == 47:  # ./x ~/x
        return True
    if n >= 4 and b[a] == 46 and b[a + 1] == 46 and b[a + 2] == 47:  # ../x
        return True
    if n >= 4 and _is_alpha(b[a]) and b[a] < 128 and b[a + 1] == 58 and b[a + 2] == 92:
        return True  # C:\x
    return False


@nb.njit(cache=True, inline="always")
def _is_method(b, a, e):
    """An HTTP request method: GET POST PUT DELETE PATCH HEAD OPTIONS (upper case).
    Inlined: its callers pass read-only and writable arrays, and a second compiled
    specialisation is what two first runs compiling at once can lose from numba's cache
    index (its read-modify-write is not locked), leaving the next run to compile."""
    n = e - a
    if n < 3 or n > 7 or not (65 <= b[a] <= 90):
        return False
    for w in range(_METHODS.shape[0]):
        if _METHODS[w, n - 1] == 0 or (n < 7 and _METHODS[w, n] != 0):
            continue
        ok = True
        for k in range(n):
            if b[a + k] != _METHODS[w, k]:
                ok = False
                break
        if ok:
            return True
    return False


@nb.njit(cache=True, inline="always")
def _core(b, i, j):
    """b[i:j] without the brackets and quotes around it (and trailing ,;:.!)."""
    a = i
    while a < j and _is_open(b[a]):
        a += 1
    while j > a and _is_close(b[j - 1]):
        j -= 1
    return a, j


@nb.njit(cache=True)
def _route(b, a, e, out, o, ph, ph_len):
    """A request path by its route: segments holding a digit (but API versions: v1, v12)
    and every query value become <*>; words, separators and query keys stay, so each
    endpoint keeps a template of its own."""
    k = a
    while k < e and b[k] != 63:  # path, to the first ?
        if b[k] == 47:
            out[o] = 47
            o += 1
            k += 1
            continue
        z = k
        digits = 0
        while z < e and b[z] != 47 and b[z] != 63:
            digits += _is_digit(b[z])
            z += 1
        version = (z - k == digits + 1 and digits <= 2 and (b[k] == 118 or b[k] == 86))
        if digits and not version:
            o = _put_ph(out, o, KV, ph, ph_len)
        else:
            o = _copy(b, k, z, out, o)
        k = z
    if k < e:
        out[o] = 63
        o += 1
        k += 1
    while k < e:  # query parameters, split at & and ;
        z = k
        eq = -1
        digits = 0
        while z < e and b[z] != 38 and b[z] != 59:
            if b[z] == 61 and eq < 0:
                eq = z
            digits += _is_digit(b[z])
            z += 1
        if eq >= 0:
            o = _copy(b, k, eq + 1, out, o)
            if z > eq + 1:
                o = _put_ph(out, o, KV, ph, ph_len)
        elif digits:
            o = _put_ph(out, o, KV, ph, ph_len)
        else:
            o = _copy(b, k, z, out, o)
        if z < e:
            out[o] = b[z]
            o += 1
            z += 1
        k = z
    return o


@nb.njit(cache=True)
def _is_uuid(b, a, e):
    if e - a != 36:
        return False
    for k in range(36):
        c = b[a + k]
        if k == 8 or k == 13 or k == 18 or k == 23:
            if c != 45:
                return False
        elif not _is_hex(c):
            return False
    return True


@nb.njit(cache=True)
def _is_ipv4(b, a, e):
    groups = 0
    k = a
    while k < e:
        d = 0
        while k < e and _is_digit(b[k]) and d < 4:
            k += 1
            d += 1
        if d == 0 or d > 3:
            return False
        groups += 1
        if groups == 4:
            break
        if k >= e or b[k] != 46:
            return False
        k += 1
    if groups != 4:
        return False
    if k == e:
        return True
    if b[k] == 58 and k + 1 < e:  # :port
        for m in range(k + 1, e):
            if not _is_digit(b[m]):
                return False
        return True
    if b[k] == 47 and k + 1 < e:  # /prefix
        for m in range(k + 1, e):
            if not _is_digit(b[m]):
                return False
        return True
    return False


@nb.njit(cache=True)
def _is_colon_hex(b, a, e):
    """IPv6 and MAC-like: colon-separated groups of at most 4 hex digits, at most one
    "::", an optional dotted tail; plain h:m:s (no hex letter, under 5 colons) is a time."""
    colons = 0
    doubles = 0
    run = 0
    dots = 0
    has_hex = False
    has_letter = False
    for k in range(a, e):
        c = b[k]
        if c == 58:
            if dots:
                return False
            colons += 1
            if k + 1 < e and b[k + 1] == 58:
                doubles += 1
            elif run == 0 and not (k > a and b[k - 1] == 58):
                return False
            run = 0
        elif _is_hex(c):
            run += 1
            if run > 4:
                return False
            has_hex = True
            if not _is_digit(c):
                has_letter = True
        elif c == 46:
            dots += 1
            run = 0
        else:
            return False
    if doubles > 1 or not has_hex or colons < 2:
        return False
    return doubles == 1 or colons >= 5 or has_letter


@nb.njit(cache=True)
def _is_ts(b, a, e):
    """Dates and times: digit groups joined by - / : with optional T, Z, fraction, offset."""
    groups = 0
    seps = 0
    k = a
    if k < e and (b[k] == 43 or b[k] == 45):
        return False
    while k < e:
        c = b[k]
        if _is_digit(c):
            d = 0
            while k < e and _is_digit(b[k]):
                k += 1
                d += 1
            if d > 4:
                return False
            groups += 1
            continue
        if c == 58 or c == 45 or c == 47:
            seps += 1
        elif c == 46 or c == 44:  # fraction: digits must follow
            if k + 1 >= e or not _is_digit(b[k + 1]):
                return False
            k += 1
            while k < e and _is_digit(b[k]):
                k += 1
            continue
        elif c == 84 or c == 90 or c == 43:  # T Z +
            pass
        else:
            return False
        k += 1
    return groups >= 3 and seps >= 2


@nb.njit(cache=True)
def _is_id(b, a, e):
    """word[_-]tail where tail holds a digit: blk_-1608, job_14_0020, node-12, rdd_42_20."""
    k = a
    if k >= e or not _is_alpha(b[k]):
        return False
    while k < e and (_is_alpha(b[k]) or ((b[k] == 95 or b[k] == 45) and k + 1 < e
                                         and _is_alpha(b[k + 1]))):
        k += 1
    if k >= e or not (b[k] == 95 or b[k] == 45):
        return False
    k += 1
    if k < e and b[k] == 45:
        k += 1
    if k >= e or not _is_digit(b[k]):
        return False
    for m in range(k, e):
        c = b[m]
        if not (_is_alnum(c) or c == 95 or c == 45 or c == 46 or c == 58):
            return False
    return True


@nb.njit(cache=True)
def _is_name(b, a, e):
    """Dotted name: three or more parts of letters, digits, _ $ - joined by single dots, the
    last starting with a letter, _ or $; then optionally :digits (a line or a port)."""
    z = e
    k = e - 1
    while k > a and _is_digit(b[k]):
        k -= 1
    if k < e - 1 and b[k] == 58:
        z = k
    dots = 0
    part = 0
    last = a
    for k in range(a, z):
        c = b[k]
        if c == 46:
            if part == 0:
                return False
            dots += 1
            part = 0
            last = k + 1
        elif _is_alnum(c) or c == 95 or c == 36 or c == 45:
            part += 1
        else:
            return False
    return dots >= 2 and part > 0 and (_is_alpha(b[last]) or b[last] == 95 or b[last] == 36)


@nb.njit(cache=True, inline="always")
def _counts(b, a, e):
    """Digits, colons, dots, dashes (and _), slashes, @ and = of b[a:e]: one pass of cheap
    counts decides which checks can match at all."""
    digits = 0
    colons = 0
    dots = 0
    dashes = 0
    slashes = 0
    ats = 0
    equals = 0
    for k in range(a, e):
        c = b[k]
        if _is_digit(c):
            digits += 1
        elif c == 58:
            colons += 1
        elif c == 46:
            dots += 1
        elif c == 45 or c == 95:
            dashes += 1
        elif c == 47 or c == 92:
            slashes += 1
        elif c == 64:
            ats += 1
        elif c == 61:
            equals += 1
    return digits, colons, dots, dashes, slashes, ats, equals


@nb.njit(cache=True, inline="always")
def _whole_class(b, a, e, flags, digits, colons, dots, dashes, slashes, ats):
    if a >= e:
        return 0
    if slashes and colons and flags & (1 << URL) and _is_url(b, a, e):
        return URL
    if ats == 1 and dots and flags & (1 << EMAIL) and _is_email(b, a, e):
        return EMAIL
    if slashes and flags & (1 << PATH) and _is_path(b, a, e):
        return PATH
    if dots >= 2 and flags & (1 << NAME) and _is_name(b, a, e):
        return NAME
    if digits == 0:
        return 0
    if e - a == 36 and dashes == 4 and flags & (1 << UUID) and _is_uuid(b, a, e):
        return UUID
    if flags & (1 << IP) and ((dots == 3 and _is_ipv4(b, a, e))
                              or (colons >= 2 and _is_colon_hex(b, a, e))):
        return IP
    if colons + dashes + slashes >= 2 and flags & (1 << TS) and _is_ts(b, a, e):
        return TS
    if dashes and flags & (1 << ID) and _is_id(b, a, e):
        return ID
    return 0


@nb.njit(cache=True)
def _is_date_word(b, a, e, words):
    """Month or weekday name (Jun, June, Fri, ...), case-insensitive."""
    n = e - a
    if n < 3 or n > 9:
        return False
    c0 = b[a] | 32
    c1 = b[a + 1] | 32
    # the first two letters of month and weekday names: most words fail here
    if not ((c0 == 106 and (c1 == 97 or c1 == 117)) or (c0 == 102 and (c1 == 101 or c1 == 114))
            or (c0 == 109 and (c1 == 97 or c1 == 111)) or (c0 == 97 and (c1 == 112 or c1 == 117))
            or (c0 == 115 and (c1 == 101 or c1 == 97 or c1 == 117))
            or (c0 == 111 and c1 == 99) or (c0 == 110 and c1 == 111) or (c0 == 100 and c1 == 101)
            or (c0 == 116 and (c1 == 117 or c1 == 104)) or (c0 == 119 and c1 == 101)):
        return False
    for w in range(words.shape[0]):
        if words[w, 0] != c0 or (n < 10 and words[w, n] != 0) or words[w, n - 1] == 0:
            continue
        ok = True
        for k in range(1, n):
            c = b[a + k] | 32
            if not (97 <= c <= 122) or c != words[w, k]:
                ok = False
                break
        if ok:
            return True
    return False


# ---------------------------------------------------------------- writing
@nb.njit(nb.types.int64(nb.types.uint8[::1], nb.types.int64, nb.types.int64, *_TABLE_ARGS[:2]),
         cache=True)
def _put_ph(out, o, cls, ph, ph_len):
    """Placeholder cls at out[o:]; the end (one signature: callers pass literal classes)."""
    for m in range(ph_len[cls]):
        out[o + m] = ph[cls, m]
    return o + ph_len[cls]


@nb.njit(cache=True, inline="always")
def _copy(b, a, e, out, o):
    # a loop, as a slice copy compiles its error message (seconds); unsigned indices, as
    # signed ones are checked for negative (wraparound) on every byte
    ou = np.uint64(o)
    au = np.uint64(a)
    for k in range(np.uint64(e - a)):
        out[ou + k] = b[au + k]
    return o + e - a


@nb.njit(cache=True)
def _mask_words(b, a, e, out, o, flags, ph, ph_len):
    """Inside a token: numbers (with sign, fraction, unit) and hex runs."""
    k = a
    while k < e:
        c = b[k]
        if not _is_alnum(c):
            # a sign belongs to the number that follows when it starts a word
            if ((c == 45 or c == 43) and k + 1 < e and _is_digit(b[k + 1])
                    and (k == a or not _is_alnum(b[k - 1])) and flags & (1 << NUM)):
                w = k + 1
            else:
                out[o] = c
                o += 1
                k += 1
                continue
        else:
            w = k
        # word [w, z): alphanumerics, plus '.' or ',' between digits
        z = w
        while z < e:
            if _is_alnum(b[z]):
                z += 1
            elif ((b[z] == 46 or b[z] == 44) and z + 1 < e and _is_digit(b[z + 1])
                  and z > w and _is_digit(b[z - 1])):
                z += 1
            else:
                break
        bounded = w == a or not _is_alnum(b[w - 1]) or w > k
        cls = 0
        if bounded and _is_digit(b[w]):
            if (flags & (1 << HEX) and b[w] == 48 and z - w > 2
                    and (b[w + 1] == 120 or b[w + 1] == 88)):
                cls = HEX
                for m in range(w + 2, z):
                    if not _is_hex(b[m]):
                        cls = 0
                        break
            if cls == 0 and flags & (1 << NUM):
                m = w
                while m < z and (_is_digit(b[m]) or b[m] == 46 or b[m] == 44):
                    m += 1
                if z - m <= 3:
                    cls = NUM
                    for q in range(m, z):
                        if not _is_alpha(b[q]) or b[q] >= 128:
                            cls = 0
                            break
                    if cls == NUM and z < e and b[z] == 37:  # 12%
                        z += 1
        if cls == 0 and flags & (1 << HEX) and z - w >= 6:
            digit = False
            cls = HEX
            for m in range(w, z):
                if _is_digit(b[m]):
                    digit = True
                elif not _is_hex(b[m]):
                    cls = 0
                    break
            if not digit:
                cls = 0
        if cls == 0:
            o = _copy(b, k, z, out, o)
        else:
            o = _put_ph(out, o, cls, ph, ph_len)
        k = z
    return o


@nb.njit(cache=True)
def _mask_token(b, i, j, out, o, flags, ph, ph_len):
    a, e = _core(b, i, j)
    digits, colons, dots, dashes, slashes, ats, equals = _counts(b, a, e)
    cls = _whole_class(b, a, e, flags, digits, colons, dots, dashes, slashes, ats)
    if cls != 0:
        o = _copy(b, i, a, out, o)
        o = _put_ph(out, o, cls, ph, ph_len)
        return _copy(b, e, j, out, o)
    if digits == 0 and (equals == 0 or not flags & (1 << KV)):
        return _copy(b, i, j, out, o)  # no number, no hex run, no key=value: as it is
    if flags & (1 << KV):
        # key=value: key is word characters; the value runs to the next , ; & or the end
        k = a
        while k < e and (_is_alnum(b[k]) or b[k] == 95 or b[k] == 46 or b[k] == 45):
            k += 1
        if k > a and k < e and b[k] == 61:
            v = k + 1
            z = v
            digit = False
            while z < e and b[z] != 44 and b[z] != 59 and b[z] != 38:
                if _is_digit(b[z]):
                    digit = True
                z += 1
            if digit or (flags & (1 << NAME) and _is_name(b, v, z)):
                o = _copy(b, i, v, out, o)
                o = _put_ph(out, o, KV, ph, ph_len)
                return _mask_words(b, z, j, out, o, flags, ph, ph_len)
    return _mask_words(b, i, j, out, o, flags, ph, ph_len)


@nb.njit(cache=True)
def _mask_line(b, s, e, out, flags, ph, ph_len, words):
    """Masked form of b[s:e] into out; returns its length and the token count."""
    o = 0
    ntok = 0
    i = s
    prev_digit = False
    prev_method = False
    while i < e:
        while i < e and _is_ws(b[i]):
            i += 1
        if i >= e:
            break
        j = i
        while j < e and not _is_ws(b[j]):
            j += 1
        if ntok > 0:
            out[o] = 32
            o += 1
        # a month or weekday name beside a number is part of a date: "Fri Jun 17 07:07:00"
        date_word = False
        if flags & (1 << TS):
            z = j
            while z > i and _is_close(b[z - 1]):
                z -= 1
            if _is_date_word(b, i, z, words):
                nxt = j
                while nxt < e and _is_ws(b[nxt]):
                    nxt += 1
                nz = nxt
                while nz < e and not _is_ws(b[nz]):
                    nz += 1
                date_word = prev_digit or (nxt < e and (
                    _is_digit(b[nxt]) or _is_date_word(b, nxt, nz, words)))
            if date_word:
                o = _put_ph(out, o, TS, ph, ph_len)
                o = _copy(b, z, j, out, o)
        # a request method, then its path: "GET /api/v1/users/42/cart HTTP/1.1" (the cheap
        # tests first: most tokens are not a method's path nor could be a method)
        routed = False
        if prev_method and not date_word and flags & ROUTES and flags & (1 << PATH):
            a, z = _core(b, i, j)
            if z - a >= 2 and b[a] == 47 and b[a + 1] != 47:
                o = _copy(b, i, a, out, o)
                o = _route(b, a, z, out, o, ph, ph_len)
                o = _copy(b, z, j, out, o)
                routed = True
        if not (date_word or routed):
            o = _mask_token(b, i, j, out, o, flags, ph, ph_len)
        # "12:00, May I" is no date: punctuation ends the run
        prev_digit = (_is_digit(b[i]) or date_word) and not (b[j - 1] == 44 or b[j - 1] == 59)
        prev_method = False
        if flags & ROUTES and (65 <= b[i] <= 90 or _is_open(b[i])):
            a, z = _core(b, i, j)
            prev_method = _is_method(b, a, z)
        ntok += 1
        i = j
    return o, ntok


@nb.njit(cache=True)
def _fnv(out, n, seed):
    """FNV-1a over 8-byte words (the buffer is zero-padded), then a final avalanche."""
    for k in range(n, (n + 7) & ~7):
        out[k] = 0
    words = out[: (n + 7) & ~7].view(np.uint64)
    h = FNV_OFFSET ^ seed ^ np.uint64(n)
    for k in range(words.shape[0]):
        h = (h ^ words[k]) * FNV_PRIME
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    return h


def _shape_hashes(buf, starts, ends, seeds, flags, ph, ph_len, words):
    """Shape hash, token count and masked form of every line buf[starts[k]:ends[k]], one
    pass each: line k's masked form is masked[mends[k - 1]:mends[k]] (from 0 for k = 0),
    kept so that a new shape is tokenised without masking its line again.

    seeds[k] is mixed into the hash so equal text in two services has two shapes. One core:
    the scan runs at over a million lines a second, and a parallel loop cost more in
    compile time (seconds on every fresh install) than it saved.
    """
    n = starts.shape[0]
    hashes = np.empty(n, dtype=np.uint64)
    ntoks = np.empty(n, dtype=np.int32)
    mends = np.empty(n, dtype=np.int64)
    longest = 0
    total = 0
    for k in range(n):
        longest = max(longest, ends[k] - starts[k])
        total += ends[k] - starts[k]
    # a placeholder is at most 7 bytes and replaces at least one byte
    out = np.empty(longest * 7 + 16, dtype=np.uint8)
    masked = np.empty(total + total // 4 + 64, dtype=np.uint8)
    o = 0
    for k in range(n):
        m, t = _mask_line(buf, starts[k], ends[k], out, flags, ph, ph_len, words)
        if o + m > masked.shape[0]:
            grown = np.empty(2 * masked.shape[0] + m, dtype=np.uint8)
            for q in range(np.uint64(o)):  # loops, not slice copies (see _copy)
                grown[q] = masked[q]
            masked = grown
        ou = np.uint64(o)
        for q in range(np.uint64(m)):
            masked[ou + q] = out[q]
        o += m
        mends[k] = o
        hashes[k] = _fnv(out, m, seeds[k])
        ntoks[k] = t
    return hashes, ntoks, masked[:o], mends


with compiling():  # the entry point, compiled at import (from the cache after the first run)
    # nogil: Masker.hashes runs chunks of a large batch in threads, without numba's
    # parallel loops (which cost seconds of compiling on every fresh install)
    shape_hashes = nb.njit(_SIG_HASHES, cache=True, nogil=True)(_shape_hashes)


# ---------------------------------------------------------------- Python face
PARALLEL_MIN_LINES = 8192  # per thread: below it a thread costs more than it saves


class Masker:
    """Batch front end of the scanner for one mask set."""

    def __init__(self, flags: int = ALL_MASKS | ROUTES):
        self.flags = flags
        self._pool: ThreadPoolExecutor | None = None  # kept: starting threads per batch costs
        self._pool_size = 0

    def hashes(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
               seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shape hash and token count of each line."""
        hashes, ntoks, _, _ = self.shapes(buf, starts, ends, seeds)
        return hashes, ntoks

    def shapes(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
               seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(shape hash, token count, masked bytes, end of each line's masked form in them);
        a large batch is split over numba's thread count (NUMBA_NUM_THREADS,
        numba.set_num_threads) in threads."""
        n = len(starts)
        parts = min(nb.get_num_threads(), n // PARALLEL_MIN_LINES)
        if parts < 2:
            return shape_hashes(buf, starts, ends, seeds, self.flags, _PH_BYTES, _PH_LEN,
                                _DW_BYTES)
        cuts = np.linspace(0, n, parts + 1).astype(int)

        def part(k):
            a, b = cuts[k], cuts[k + 1]
            return shape_hashes(buf, starts[a:b], ends[a:b], seeds[a:b], self.flags,
                                _PH_BYTES, _PH_LEN, _DW_BYTES)
        if self._pool is None or self._pool_size < parts - 1:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            self._pool, self._pool_size = ThreadPoolExecutor(parts - 1), parts - 1
        others = [self._pool.submit(part, k) for k in range(1, parts)]
        done = [part(0)] + [f.result() for f in others]  # this thread takes the first part
        shift = np.cumsum([0] + [len(d[2]) for d in done[:-1]])
        return (np.concatenate([d[0] for d in done]), np.concatenate([d[1] for d in done]),
                np.concatenate([d[2] for d in done]),
                np.concatenate([d[3] + s for d, s in zip(done, shift.tolist())]))

    def mask_bytes(self, buf: np.ndarray, start: int, end: int) -> str:
        """The masked form of buf[start:end] (the shape pass on one line)."""
        one = np.array([start], dtype=np.int64), np.array([end], dtype=np.int64)
        _, _, masked, _ = shape_hashes(buf, *one, np.zeros(1, dtype=np.uint64), self.flags,
                                       _PH_BYTES, _PH_LEN, _DW_BYTES)
        return masked.tobytes().decode("utf-8", "replace")

    def mask(self, text: str) -> str:
        buf = np.frombuffer(text.encode("utf-8", "replace"), dtype=np.uint8)
        return self.mask_bytes(buf, 0, len(buf))


def pack_lines(lines: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """UTF-8 buffer of all lines plus start/end offsets, built at C speed.

    Lines are joined with NUL; decode strips NUL from messages, so the split is exact. A
    line that still holds NUL falls back to per-line lengths.
    """
    data = "\x00".join(lines).encode("utf-8", "replace")
    buf = np.frombuffer(data, dtype=np.uint8)
    seps = np.flatnonzero(buf == 0)
    if len(seps) == len(lines) - 1:
        starts = np.empty(len(lines), dtype=np.int64)
        ends = np.empty(len(lines), dtype=np.int64)
        starts[0:1] = 0
        starts[1:] = seps + 1
        ends[:-1] = seps
        ends[-1:] = len(buf)
        return buf, starts, ends
    lens = np.fromiter((len(s.encode("utf-8", "replace")) for s in lines), dtype=np.int64,
                       count=len(lines))
    ends = np.cumsum(lens + 1) - 1
    starts = ends - lens
    return buf, starts, ends


# ---------------------------------------------------------------- reference
_AL = "A-Za-z\x80-\U0010ffff"
_ALNUM = "0-9" + _AL
# compiled on first use: only the tests run the reference, and compiling these character
# classes costs a tenth of a second at every import
_REF_PATTERNS = {
    "URL": (f"[{_AL}]+://.+", re.S),
    "PATH": (r"/[^/].*|//.+|\.{1,2}/.+|~/.+|[A-Za-z]:\\.+", re.S),
    "UUID": (r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", 0),
    "IPV4": (r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?:[:/][0-9]+)?", 0),
    "TS": (r"(?:[0-9]{1,4}|[.,][0-9]+|[:/\-TZ+])+", 0),
    "NAME": (f"(?:[{_ALNUM}_$-]+\\.){{2,}}[{_AL}_$][{_ALNUM}_$-]*(?::[0-9]+)?", 0),
    "ID": (f"[{_AL}](?:[{_AL}]|[_-](?=[{_AL}]))*[_-]-?[0-9][{_ALNUM}_\\-.:]*", 0),
    "WORD": (f"(?:(?<![{_ALNUM}])[+-](?=[0-9]))?(?:[{_ALNUM}]|(?<=[0-9])[.,](?=[0-9]))+", 0),
}


@functools.cache
def _rx(name: str) -> re.Pattern:
    pattern, flags = _REF_PATTERNS[name]
    return re.compile(pattern, flags)


_REF_DATE_WORDS = frozenset(_DATE_WORDS)


def _ref_email(t: str) -> bool:
    if t.count("@") != 1 or not re.fullmatch(f"[{_ALNUM}._+%@-]+", t):
        return False
    local, dom = t.split("@")
    m = re.search(r"\.", dom[1:])
    return bool(local) and len(dom) >= 3 and m is not None and \
        re.search(f"[{_AL}]", dom[m.end() + 1:]) is not None


def _ref_colon_hex(t: str) -> bool:
    if not re.fullmatch(r"[0-9A-Fa-f:.]+", t) or not re.search("[0-9A-Fa-f]", t):
        return False
    if ":::" in t or t.count("::") > 1 or ("." in t and ":" in t[t.index("."):]):
        return False
    if any(len(g) > 4 for g in re.split("[:.]", t)):
        return False
    if any(part and "" in part.split(":") for part in t.split("::")):
        return False
    if t.count(":") < 2:
        return False
    return "::" in t or t.count(":") >= 5 or re.search("[A-Fa-f]", t) is not None


def _ref_ts(t: str) -> bool:
    if t[:1] in "+-" or not _rx("TS").fullmatch(t):
        return False
    if re.search(r"[0-9]{5}", t.replace(".", " ").replace(",", " ")) and \
            re.search(r"(?:^|[^.,0-9])[0-9]{5}", t):
        return False
    groups = len(re.findall(r"(?:^|[^.,0-9])([0-9]+)", t))
    return groups >= 3 and len(re.findall(r"[:/\-]", t)) >= 2


def _ref_whole(t: str, flags: int) -> int:
    if not t:
        return 0
    on = lambda cls: flags & (1 << cls)  # noqa: E731
    if on(URL) and _rx("URL").fullmatch(t):
        return URL
    if on(EMAIL) and _ref_email(t):
        return EMAIL
    if on(PATH) and _rx("PATH").fullmatch(t):
        return PATH
    if on(NAME) and _rx("NAME").fullmatch(t):
        return NAME
    if not re.search("[0-9]", t):
        return 0
    if on(UUID) and _rx("UUID").fullmatch(t):
        return UUID
    if on(IP) and (_rx("IPV4").fullmatch(t) or _ref_colon_hex(t)):
        return IP
    if on(TS) and _ref_ts(t):
        return TS
    if on(ID) and _rx("ID").fullmatch(t):
        return ID
    return 0


def mask_reference(text: str, flags: int = ALL_MASKS | ROUTES) -> str:
    """The masking specification in plain Python and ``re`` (slow; the tests compare the
    numba scanner against it)."""
    tokens = text.split()
    out = []
    prev_digit = prev_method = False
    for n, tok in enumerate(tokens):
        route = tok.lstrip(_REF_OPEN).rstrip(_REF_CLOSE)
        method, prev_method = prev_method, route in HTTP_METHODS
        if (method and flags & ROUTES and flags & (1 << PATH)
                and re.fullmatch("/[^/].*", route, re.S)):
            lead = tok[: len(tok) - len(tok.lstrip(_REF_OPEN))]
            out.append(lead + _ref_route(route) + tok[len(lead) + len(route):])
            prev_digit = False
            continue
        core = tok.rstrip(_REF_CLOSE)
        if flags & (1 << TS) and core.lower() in _REF_DATE_WORDS and 3 <= len(core) <= 9 \
                and core.isascii() and core.isalpha():
            nxt = tokens[n + 1] if n + 1 < len(tokens) else ""
            if prev_digit or nxt[:1].isdigit() and nxt[:1].isascii() or (
                    nxt.lower() in _REF_DATE_WORDS and nxt.isascii() and nxt.isalpha()):
                out.append("<TS>" + tok[len(core):])
                prev_digit = tok[-1] not in ",;"
                continue
        out.append(_ref_token(tok, flags))
        prev_digit = tok[0] in "0123456789" and tok[-1] not in ",;"
    return " ".join(out)


def _ref_route(path: str) -> str:
    path, question, query = path.partition("?")
    out = "/".join("<*>" if re.search("[0-9]", seg) and not re.fullmatch("[vV][0-9]{1,2}", seg)
                   else seg for seg in path.split("/"))
    if not question:
        return out
    params = re.split("([&;])", query)
    for k in range(0, len(params), 2):
        key, eq, value = params[k].partition("=")
        params[k] = (key + eq + ("<*>" if value else "") if eq
                     else "<*>" if re.search("[0-9]", key) else key)
    return out + "?" + "".join(params)


_REF_OPEN = "([{<\"'"
_REF_CLOSE = ")]}>\"',;:.!"


def _ref_token(tok: str, flags: int) -> str:
    core = tok.lstrip(_REF_OPEN)
    lead = tok[: len(tok) - len(core)]
    stripped = core.rstrip(_REF_CLOSE)
    cls = _ref_whole(stripped, flags)
    if cls:
        return lead + PLACEHOLDERS[cls] + core[len(stripped):]
    if flags & (1 << KV):
        m = re.match(f"[{_ALNUM}_.\\-]+=", stripped)
        if m:
            value = re.match(r"[^,;&]*", stripped[m.end():]).group(0)
            if re.search("[0-9]", value) or (flags & (1 << NAME)
                                             and _rx("NAME").fullmatch(value)):
                cut = len(lead) + m.end()
                return tok[:cut] + PLACEHOLDERS[KV] + _ref_words(tok[cut + len(value):], flags)
    return _ref_words(tok, flags)


def _ref_words(tok: str, flags: int) -> str:
    out = []
    pos = 0
    for m in _rx("WORD").finditer(tok):
        if m.start() < pos:
            continue
        word = m.group(0)
        signed = word[0] in "+-"
        if signed and not flags & (1 << NUM):
            out.append(tok[pos:m.start() + 1])
            pos = m.start() + 1
            word = word[1:]
            start = m.start() + 1
            signed = False
        else:
            out.append(tok[pos:m.start()])
            start = m.start()
        body = word[1:] if signed else word
        end = start + len(word)
        cls = 0
        if body[0] in "0123456789":  # words start after a non-alphanumeric, so bounded
            if flags & (1 << HEX) and re.fullmatch(r"0[xX][0-9A-Fa-f]+", body):
                cls = HEX
            elif flags & (1 << NUM):
                unit = re.sub(r"^[0-9.,]*", "", body)
                if len(unit) <= 3 and re.fullmatch("[A-Za-z]*", unit):
                    cls = NUM
                    if tok[end:end + 1] == "%":
                        end += 1
        if not cls and flags & (1 << HEX) and len(body) >= 6 and \
                re.fullmatch("[0-9A-Fa-f]+", body) and re.search("[0-9]", body):
            cls = HEX
        out.append(PLACEHOLDERS[cls] if cls else word)
        pos = end
    out.append(tok[pos:])
    return "".join(out)
