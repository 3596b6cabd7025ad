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
  e.g. ``blk_-1608``, ``container_1445_01_000003``, ``node-12``);
* ``KV``: in ``key=value`` the value is masked as ``<*>`` when it holds a digit; values of
  letters only (``status=failed``) are kept, because they name a different event;
* inside a token: numbers bounded by non-alphanumerics, signed or decimal, with a unit of
  up to three letters or ``%`` (``-3``, ``12ms``, ``3.5MB``) become ``NUM``; ``0x1f`` and
  runs of six or more hex digits holding a digit become ``HEX``.

The mask set is a bit field (``MASK_BITS``), so a pipeline file can switch classes off.
``mask_reference`` is the same specification written with Python's ``re``; the tests
compare the two.
"""
from __future__ import annotations

import re

import numba as nb
import numpy as np

# class codes (also the order of PLACEHOLDERS)
URL, EMAIL, PATH, UUID, IP, TS, ID, KV, NUM, HEX = range(1, 11)
MASK_BITS = {
    "url": 1 << URL, "email": 1 << EMAIL, "path": 1 << PATH, "uuid": 1 << UUID,
    "ip": 1 << IP, "timestamp": 1 << TS, "id": 1 << ID, "kv": 1 << KV,
    "number": 1 << NUM, "hex": 1 << HEX,
}
ALL_MASKS = sum(MASK_BITS.values())
PLACEHOLDERS = ["", "<URL>", "<EMAIL>", "<PATH>", "<UUID>", "<IP>", "<TS>", "<ID>",
                "<*>", "<NUM>", "<HEX>"]
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
@nb.njit(cache=True, inline="always")
def _is_ws(c):
    return c == 32 or (9 <= c <= 13)


@nb.njit(cache=True, inline="always")
def _is_digit(c):
    return 48 <= c <= 57


@nb.njit(cache=True, inline="always")
def _is_alpha(c):
    return (65 <= c <= 90) or (97 <= c <= 122) or c >= 128


@nb.njit(cache=True, inline="always")
def _is_alnum(c):
    return _is_digit(c) or _is_alpha(c)


@nb.njit(cache=True, inline="always")
def _is_hex(c):
    return _is_digit(c) or (65 <= c <= 70) or (97 <= c <= 102)


@nb.njit(cache=True, inline="always")
def _is_open(c):  # ( [ { < " '
    return c == 40 or c == 91 or c == 123 or c == 60 or c == 34 or c == 39


@nb.njit(cache=True, inline="always")
def _is_close(c):  # ) ] } > " ' , ; : . !
    return (c == 41 or c == 93 or c == 125 or c == 62 or c == 34 or c == 39 or c == 44
            or c == 59 or c == 58 or c == 46 or c == 33)


# ---------------------------------------------------------------- whole-token classes
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
    """IPv6 and MAC-like: colon-separated hex groups of at most 4, some non-decimal."""
    colons = 0
    run = 0
    decimal_only = True
    has_hex = False
    double = False
    for k in range(a, e):
        c = b[k]
        if c == 58:
            colons += 1
            if run == 0 and k > a:
                if double:
                    return False
                double = True
            run = 0
        elif _is_hex(c):
            run += 1
            if run > 4:
                return False
            has_hex = True
            if not _is_digit(c):
                decimal_only = False
        elif c == 46:  # embedded IPv4 tail
            run = 0
        else:
            return False
    if not has_hex:
        return False
    if double:
        return colons >= 2
    return colons >= 5 or (colons >= 2 and not decimal_only)


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
def _whole_class(b, a, e, flags):
    if a >= e:
        return 0
    # one pass of cheap counts decides which checks can match at all
    digits = 0
    colons = 0
    dots = 0
    dashes = 0
    slashes = 0
    ats = 0
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
    if slashes and colons and flags & (1 << URL) and _is_url(b, a, e):
        return URL
    if ats == 1 and dots and flags & (1 << EMAIL) and _is_email(b, a, e):
        return EMAIL
    if slashes and flags & (1 << PATH) and _is_path(b, a, e):
        return PATH
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
    if flags & (1 << URL) and _is_url(b, a, e):
        return URL
    if flags & (1 << EMAIL) and _is_email(b, a, e):
        return EMAIL
    if flags & (1 << PATH) and _is_path(b, a, e):
        return PATH
    if flags & (1 << UUID) and _is_uuid(b, a, e):
        return UUID
    if flags & (1 << IP) and (_is_ipv4(b, a, e) or _is_colon_hex(b, a, e)):
        return IP
    if flags & (1 << TS) and _is_ts(b, a, e):
        return TS
    if flags & (1 << ID) and _is_id(b, a, e):
        return ID
    return 0


@nb.njit(cache=True)
def _is_date_word(b, a, e, words):
    """Month or weekday name (Jun, June, Fri, ...), case-insensitive."""
    n = e - a
    if n < 3 or n > 9:
        return False
    for w in range(words.shape[0]):
        ok = True
        for k in range(10):
            c = b[a + k] | 32 if k < n else 0
            if k < n and not (97 <= c <= 122):
                return False
            if c != words[w, k]:
                ok = False
                break
        if ok:
            return True
    return False


# ---------------------------------------------------------------- writing
@nb.njit(cache=True, inline="always")
def _put_ph(out, o, cls, ph, ph_len):
    for m in range(ph_len[cls]):
        out[o + m] = ph[cls, m]
    return o + ph_len[cls]


@nb.njit(cache=True, inline="always")
def _copy(b, a, e, out, o):
    for k in range(a, e):
        out[o] = b[k]
        o += 1
    return o


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
    a = i
    e = j
    while a < e and _is_open(b[a]):
        a += 1
    while e > a and _is_close(b[e - 1]):
        e -= 1
    cls = _whole_class(b, a, e, flags)
    if cls != 0:
        o = _copy(b, i, a, out, o)
        o = _put_ph(out, o, cls, ph, ph_len)
        return _copy(b, e, j, out, o)
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
            if digit:
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
        if not date_word:
            o = _mask_token(b, i, j, out, o, flags, ph, ph_len)
        # "12:00, May I" is no date: punctuation ends the run
        prev_digit = (_is_digit(b[i]) or date_word) and not (b[j - 1] == 44 or b[j - 1] == 59)
        ntok += 1
        i = j
    return o, ntok


@nb.njit(cache=True)
def _fnv(out, n, seed):
    h = FNV_OFFSET ^ seed
    for k in range(n):
        h = (h ^ np.uint64(out[k])) * FNV_PRIME
    return h


@nb.njit(cache=True)
def shape_hashes(buf, starts, ends, seeds, flags, ph, ph_len, words):
    """Shape hash and token count of every line buf[starts[k]:ends[k]], one pass each.

    seeds[k] is mixed into the hash so equal text in two services has two shapes.
    """
    n = starts.shape[0]
    hashes = np.empty(n, dtype=np.uint64)
    ntoks = np.empty(n, dtype=np.int32)
    longest = 0
    for k in range(n):
        if ends[k] - starts[k] > longest:
            longest = ends[k] - starts[k]
    # a placeholder is at most 7 bytes and replaces at least one byte
    out = np.empty(longest * 7 + 8, dtype=np.uint8)
    for k in range(n):
        m, t = _mask_line(buf, starts[k], ends[k], out, flags, ph, ph_len, words)
        hashes[k] = _fnv(out, m, seeds[k])
        ntoks[k] = t
    return hashes, ntoks


@nb.njit(cache=True)
def masked_line(buf, start, end, flags, ph, ph_len, words):
    out = np.empty((end - start) * 7 + 8, dtype=np.uint8)
    m, _ = _mask_line(buf, start, end, out, flags, ph, ph_len, words)
    return out[:m]


# ---------------------------------------------------------------- Python face
class Masker:
    """Batch front end of the scanner for one mask set."""

    def __init__(self, flags: int = ALL_MASKS):
        self.flags = flags

    def hashes(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
               seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return shape_hashes(buf, starts, ends, seeds, self.flags, _PH_BYTES, _PH_LEN, _DW_BYTES)

    def mask_bytes(self, buf: np.ndarray, start: int, end: int) -> str:
        return masked_line(buf, start, end, self.flags, _PH_BYTES, _PH_LEN, _DW_BYTES).tobytes().decode(
            "utf-8", "replace")

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
_REF_OPEN = "([{<\"'"
_REF_CLOSE = ")]}>\"',;:.!"
_REF_WHOLE = [
    (URL, re.compile(r"[A-Za-z]+://.+")),
    (EMAIL, re.compile(r"[\w.%+\-]+@(?=[\w.%+\-]*\.[\w.%+\-]*[A-Za-z])[\w%+\-][\w.%+\-]*\.?[\w.%+\-]*",
                       re.ASCII)),
    (PATH, re.compile(r"/[^/].*|//.+|\.{1,2}/.+|~/.+|[A-Za-z]:\\.+", re.S)),
    (UUID, re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")),
    (IP, re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?:[:/]\d+)?")),
    (TS, re.compile(r"(?=(?:[^\d]*\d+){3})(?=(?:[^:/\-]*[:/\-]){2})"
                    r"\d{1,4}(?:(?:[.,]\d+)|[:/\-TZ+]|\d{1,4}(?![\d]))*")),
    (ID, re.compile(r"[^\W\d_](?:[^\W\d_]|[_-](?=[^\W\d_]))*[_-]-?\d[\w\-.:]*")),
]


def _ref_colon_hex(tok: str) -> bool:
    if not re.fullmatch(r"[0-9A-Fa-f:.]+", tok) or not re.search(r"[0-9A-Fa-f]", tok):
        return False
    groups = tok.split(":")
    if any(len(re.sub(r".*\.", "", g)) > 4 for g in groups):
        return False
    if tok.count("::") > 1 or ":::" in tok:
        return False
    if "::" in tok[1:] or (tok.startswith("::")):
        return tok.count(":") >= 2
    decimal_only = re.fullmatch(r"[\d:.]+", tok) is not None
    return tok.count(":") >= 5 or (tok.count(":") >= 2 and not decimal_only)


def _ref_whole(core: str, flags: int) -> int:
    for cls, rx in _REF_WHOLE:
        if flags & (1 << cls) and rx.fullmatch(core):
            return cls
        if cls == IP and flags & (1 << IP) and _ref_colon_hex(core):
            return IP
    return 0


_REF_WORD = re.compile(r"[+-]?\d[\dA-Za-z\x80-\U0010ffff]*(?:[.,]\d[\dA-Za-z\x80-\U0010ffff]*)*"
                       r"|[A-Za-z\x80-\U0010ffff][\dA-Za-z\x80-\U0010ffff]*"
                       r"(?:[.,]\d[\dA-Za-z\x80-\U0010ffff]*)*")


def mask_reference(text: str, flags: int = ALL_MASKS) -> str:
    """The masking specification in plain Python regexes (slow; for tests)."""
    return " ".join(_ref_token(tok, flags) for tok in text.split())


def _ref_token(tok: str, flags: int) -> str:
    core = tok.lstrip(_REF_OPEN)
    lead = tok[: len(tok) - len(core)]
    stripped = core.rstrip(_REF_CLOSE)
    trail = core[len(stripped):]
    cls = _ref_whole(stripped, flags)
    if cls:
        return lead + PLACEHOLDERS[cls] + trail
    if flags & (1 << KV):
        m = re.match(r"([\w.\-]+)=", stripped)
        if m and (m.end() - 1) > 0 and not re.search(r"[^\w.\-]", m.group(1), re.ASCII) \
                and m.group(1).isascii() or (m and m.group(1).isalnum()):
            key_end = len(lead) + m.end()
            rest = tok[key_end:]
            value = re.match(r"[^,;&]*", rest[: len(rest) - len(trail)] if trail else rest)
            v = value.group(0)
            if re.search(r"\d", v):
                tail = tok[key_end + len(v):]
                return tok[:key_end] + PLACEHOLDERS[KV] + (_ref_token(tail, flags) if tail else "")
    return _ref_words(tok, flags)


def _ref_words(tok: str, flags: int) -> str:
    out = []
    pos = 0
    for m in _REF_WORD.finditer(tok):
        w = m.group(0)
        start = m.start()
        out.append(tok[pos:start])
        pos = m.end()
        sign = w[0] in "+-"
        body = w[1:] if sign else w
        if sign and not (flags & (1 << NUM)) or sign and start > 0 and tok[start - 1].isalnum():
            out.append(w[0])
            body_start = start + 1
            sign = False
        else:
            body_start = start + (1 if sign else 0)
        bounded = body_start == 0 or sign or not tok[body_start - 1].isalnum()
        cls = 0
        suffix = ""
        if bounded and body[0].isdigit() and body[0].isascii():
            if flags & (1 << HEX) and re.fullmatch(r"0[xX][0-9A-Fa-f]+", body):
                cls = HEX
            elif flags & (1 << NUM):
                num = re.match(r"[\d.,]*", body).group(0)
                unit = body[len(num):]
                if len(unit) <= 3 and re.fullmatch(r"[A-Za-z]*", unit):
                    cls = NUM
                    if tok[pos:pos + 1] == "%":
                        pos += 1
        if not cls and flags & (1 << HEX) and len(body) >= 6 and \
                re.fullmatch(r"[0-9A-Fa-f]+", body) and re.search(r"\d", body):
            cls = HEX
        if cls:
            out.append(PLACEHOLDERS[cls] + suffix)
        else:
            out.append(w if not sign else w)
    out.append(tok[pos:])
    return "".join(out)
