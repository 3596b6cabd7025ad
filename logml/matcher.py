"""Compiled matching of new line shapes against the templates.

Most new shapes of a long-running stream are new values in known templates (a user name,
an order id, a host). Finding their template needs no change to any template, only the
search ``TemplateEngine._best`` does in Python: masked tokens, candidates of the same
length (those with the same first word first), similarity over the template's constant
tokens, and whether each differing token pair is a variable by shape. ``cluster_run`` does
that search for a batch's lines in one numba call and stops at the first shape whose
clustering would change a template (generalise, start a sibling, merge, join another
length, create one); the engine handles that one in Python, mirrors the change here and
resumes. The Python search is the reference; the tests hold the two to the same answers.

Tokens are 64-bit hashes of their bytes plus the features the variable-pair rules read:
the hash of the skeleton (placeholders made ``<*>``) and of the skeleton without them, the
``key`` of ``key=value``, and flags.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .jit import compiling
from .masking import _PH_BYTES, _PH_LEN, _is_method
from .shapecache import ShapeCache, _slot

HAS_LT, IS_VALUE, SKEL_WILD, DIGIT_LETTER, UNIT, KV, KV_VAR, KEY = 1, 2, 4, 8, 16, 32, 64, 128
FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)

UNITS = ("B", "KB", "MB", "GB", "TB", "PB", "KiB", "MiB", "GiB", "TiB", "b", "kb", "mb", "gb",
          "ns", "us", "µs", "ms", "s", "sec", "secs", "min", "mins", "h", "hrs", "bytes")
_PUNCT = b"[](){}\"',;:.!?"
_IS_PUNCT = np.zeros(256, dtype=np.bool_)
_IS_PUNCT[np.frombuffer(_PUNCT, dtype=np.uint8)] = True


@nb.njit(nb.types.uint64(nb.types.Array(nb.types.uint8, 1, "C", readonly=True),
                         nb.types.int64, nb.types.int64, nb.types.uint64), cache=True)
def _fnv(b, a, e, h):
    """FNV-1a of b[a:e] from h (one signature: callers pass literal and int64 bounds)."""
    for k in range(a, e):
        h = (h ^ np.uint64(b[k])) * FNV_PRIME
    return h


_M64 = (1 << 64) - 1


def _hash_text(text: str) -> np.uint64:
    """_fnv of the text's UTF-8 bytes, in plain Python: it runs at import, where calling
    the kernel would load it as one more entry point."""
    h = int(FNV_OFFSET)
    for c in text.encode():
        h = ((h ^ c) * int(FNV_PRIME)) & _M64
    return np.uint64(h)


WILD_HASH = _hash_text("<*>")
_UNIT_HASHES = np.array(sorted({int(_hash_text(u)) for u in UNITS}), dtype=np.uint64)


@nb.njit(cache=True)
def _placeholder_at(b, k, e, ph, ph_len):
    """Length of the placeholder starting at b[k], 0 if none."""
    for c in range(1, ph.shape[0]):
        n = ph_len[c]
        if k + n <= e:
            ok = True
            for m in range(n):
                if b[k + m] != ph[c, m]:
                    ok = False
                    break
            if ok:
                return n
    return 0


@nb.njit(cache=True)
def _is_key(b, a, e, is_punct):
    """A token that names its event and is never a variable: a request method or, with
    paths masked, a request route (the only paths masking leaves: /api/users/<*>/cart)."""
    while a < e and is_punct[b[a]]:
        a += 1
    while e > a and is_punct[b[e - 1]]:
        e -= 1
    if e - a >= 2 and b[a] == 47:
        return b[a + 1] != 47
    return _is_method(b, a, e)


@nb.njit(cache=True)
def _features(b, a, e, ph, ph_len, is_punct, units, sk, keys):
    """(hash, skeleton hash, skeleton-without-placeholders hash, key hash, flags) of the
    token b[a:e]; sk is scratch for the skeleton; keys: flag KEY tokens."""
    h = _fnv(b, a, e, FNV_OFFSET)
    flags = 0
    digit = False
    letter = False
    n = 0
    k = a
    nowild = FNV_OFFSET
    while k < e:
        c = b[k]
        if 48 <= c <= 57:
            digit = True
        elif (65 <= c <= 90) or (97 <= c <= 122) or c >= 128:
            letter = True
        if c == 60:
            flags |= HAS_LT
            p = _placeholder_at(b, k, e, ph, ph_len)
            if p:
                sk[n] = 60
                sk[n + 1] = 42
                sk[n + 2] = 62
                n += 3
                k += p
                flags |= SKEL_WILD
                continue
        sk[n] = c
        n += 1
        nowild = (nowild ^ np.uint64(c)) * FNV_PRIME
        k += 1
    if digit and letter:
        flags |= DIGIT_LETTER
    skel = _fnv(sk, 0, n, FNV_OFFSET)
    # the skeleton without punctuation around: just <*>?
    s0 = 0
    s1 = n
    while s0 < s1 and is_punct[sk[s0]]:
        s0 += 1
    while s1 > s0 and is_punct[sk[s1 - 1]]:
        s1 -= 1
    if s1 - s0 == 3 and sk[s0] == 60 and sk[s0 + 1] == 42 and sk[s0 + 2] == 62:
        flags |= IS_VALUE
    # key=value on the token without punctuation around
    r0 = a
    r1 = e
    while r0 < r1 and is_punct[b[r0]]:
        r0 += 1
    while r1 > r0 and is_punct[b[r1 - 1]]:
        r1 -= 1
    key = np.uint64(0)
    for q in range(r0, r1):
        if b[q] == 61:
            if q > r0:
                flags |= KV
                key = _fnv(b, r0, q, FNV_OFFSET)
                # the value's skeleton: after the '=' of the stripped skeleton
                v = s0
                while v < s1 and sk[v] != 61:
                    v += 1
                v += 1
                while v < s1 and is_punct[sk[v]]:
                    v += 1
                if s1 - v == 3 and sk[v] == 60 and sk[v + 1] == 42 and sk[v + 2] == 62:
                    flags |= KV_VAR
            break
    stripped = _fnv(b, r0, r1, FNV_OFFSET)
    lo = 0
    hi = units.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if units[mid] < stripped:
            lo = mid + 1
        else:
            hi = mid
    if lo < units.shape[0] and units[lo] == stripped:
        flags |= UNIT
    if keys and _is_key(b, a, e, is_punct):
        flags |= KEY
    return h, skel, nowild, key, flags


@nb.njit(cache=True)
def _hash_tokens(b, m, th, tf, is_punct, keys):
    """Hash, HAS_LT and KEY of each space-separated token of b[:m] (the lazy first look)."""
    n = 0
    a = m - m
    while a < m:
        e = a
        lt = 0
        h = FNV_OFFSET
        while e < m and b[e] != 32:
            c = b[e]
            if c == 60:
                lt = HAS_LT
            h = (h ^ np.uint64(c)) * FNV_PRIME
            e += 1
        if e > a:
            th[n] = h
            tf[n] = lt | (KEY if keys and _is_key(b, a, e, is_punct) else 0)
            n += 1
        a = e + 1
    return n


def _tokenize_py(b, m, ph, ph_len, is_punct, units, sk, th, ts, tn, tk, tf, keys):
    """Features of each space-separated token of the masked line b[:m]; their count."""
    n = 0
    a = m - m  # an int64, not a literal 0 (one compiled _features)
    while a < m:
        e = a
        while e < m and b[e] != 32:
            e += 1
        if e > a:
            th[n], ts[n], tn[n], tk[n], tf[n] = _features(b, a, e, ph, ph_len, is_punct,
                                                          units, sk, keys)
            n += 1
        a = e + 1
    return n


_RO = dict(readonly=True)
_BYTES = nb.types.Array(nb.types.uint8, 1, "C")
_BYTES_RO = nb.types.Array(nb.types.uint8, 1, "C", readonly=True)
_TABLE = nb.types.Array(nb.types.uint8, 2, "C", readonly=True)
_I64 = nb.types.Array(nb.types.int64, 1, "A", readonly=True)
_U64 = nb.types.Array(nb.types.uint64, 1, "A", readonly=True)
_I32 = nb.types.Array(nb.types.int32, 1, "A", readonly=True)
_BOOL = nb.types.Array(nb.types.boolean, 1, "A", readonly=True)
_U64W, _I64W = nb.types.uint64[::1], nb.types.int64[::1]

with compiling():
    # one explicit signature each, compiled once; callers convert to it (compile disabled)
    _tokenize = nb.njit(nb.types.int64(_BYTES, nb.types.int64, _TABLE, _I64, _BOOL, _U64,
                                       _BYTES, _U64W, _U64W, _U64W, _U64W, _I64W,
                                       nb.types.boolean),
                        cache=True)(_tokenize_py)
    _tokenize.disable_compile()


def token_features(tokens: list[str], keys: bool = False):
    """Features of the tokens of a template (arrays: hash, skeleton, no-wild, key, flags);
    keys: flag request methods and routes (KEY)."""
    data = np.frombuffer(" ".join(tokens).encode(), dtype=np.uint8).copy()
    n = len(tokens)
    th, ts, tn, tk = (np.zeros(n, np.uint64) for _ in range(4))
    tf = np.zeros(n, np.int64)
    sk = np.empty(len(data) + 8, np.uint8)
    got = _tokenize(data, len(data), _PH_BYTES, _PH_LEN, _IS_PUNCT, _UNIT_HASHES, sk, th, ts,
                    tn, tk, tf, keys)
    assert got == n
    return th, ts, tn, tk, tf


@nb.njit(cache=True)
def _variable_pair(ha, sa, na, ka, fa, hb, sb, nb_, kb, fb, after_value):
    """The rules of template._variable_pair, on token features."""
    if (fa | fb) & HAS_LT:
        if sa == sb:
            return True
        va = fa & IS_VALUE != 0
        vb = fb & IS_VALUE != 0
        if (va and (vb or fb & DIGIT_LETTER)) or (vb and fa & DIGIT_LETTER):
            return True
        if (fb & SKEL_WILD and nb_ == sa) or (fa & SKEL_WILD and na == sb):
            return True
        if fa & KV and fb & KV and ka == kb and (fa & KV_VAR or fb & KV_VAR):
            return True
    return after_value and fa & UNIT != 0 and fb & UNIT != 0


@nb.njit(cache=True)
def _score(c, n, th, ts, tn, tk, tf, c_off, t_h, t_s, t_n, t_k, t_f, wild, beat, lazy):
    """(similarity, values, words) of cluster c against the line's n tokens; (-1, 0, 0)
    as soon as it cannot exceed `beat`; (-2, 0, 0) when lazy (the line's tokens have only
    their hash and HAS_LT) and a token pair needs the other features."""
    o = c_off[c]
    same = 0
    constants = 0
    values = 0
    words = 0
    for p in range(n):
        if words and (same + n - p) / (same + n - p + words) <= beat:
            return -1.0, 0, 0
        a = o + p
        if t_h[a] == th[p]:
            if not (t_f[a] & HAS_LT and t_f[a] & IS_VALUE):
                same += 1
                constants += 1
        elif (t_f[a] | tf[p]) & KEY:
            return -1.0, 0, 0  # another method or route: another event
        elif t_h[a] == wild:
            continue
        elif lazy:
            return -2.0, 0, 0
        elif _variable_pair(t_h[a], t_s[a], t_n[a], t_k[a], t_f[a], th[p], ts[p], tn[p],
                            tk[p], tf[p], p > 0 and t_f[a - 1] & HAS_LT != 0):
            if t_s[a] != ts[p]:
                values += 1
        else:
            constants += 1
            words += 1
    sim = same / constants if constants else 1.0
    return sim, values, words


@nb.njit(nb.types.Tuple((nb.types.int64, nb.types.float64, nb.types.int64))(
    nb.types.int64, nb.types.uint64, nb.types.int64, nb.types.uint64[::1], nb.types.uint64[::1],
    nb.types.uint64[::1], nb.types.uint64[::1], nb.types.int64[::1], _I64, _I64, _I64, _I64,
    _BOOL, _U64, _U64, _U64, _U64, _U64, _I64, nb.types.uint64, nb.types.int64,
    nb.types.float64, nb.types.int64, nb.types.boolean), cache=True)
def _best_in(bucket, first_key, n, th, ts, tn, tk, tf, head, nxt, ent, c_off, c_alive,
             c_first, t_h, t_s, t_n, t_k, t_f, wild, best, best_sim, best_vw, lazy):
    """Scan one bucket's list (skipping dead clusters and, with first_key, those moved
    to another first-word bucket) and keep the best (strictly better wins)."""
    if bucket < 0:
        return best, best_sim, best_vw
    e = head[bucket]
    while e >= 0:
        c = ent[e]
        if c_alive[c] and (first_key == 0 or c_first[c] == first_key):
            sim, values, words = _score(c, n, th, ts, tn, tk, tf, c_off, t_h, t_s, t_n, t_k,
                                        t_f, wild, best_sim, lazy)
            if sim == -2.0:
                return -2, sim, 0
            if sim > best_sim:
                best, best_sim, best_vw = c, sim, values + words
                if sim >= 1.0:
                    break  # nothing after it can be strictly better
        e = nxt[e]
    return best, best_sim, best_vw


@nb.njit(cache=True)
def bucket_key(service, n, first):
    """Table key of a bucket: a service's templates of length n (first == 0) or of length n
    with this first-token hash."""
    h = (np.uint64(service) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
    h ^= (np.uint64(n) + np.uint64(7)) * np.uint64(0xC2B2AE3D27D4EB4F)
    h ^= first * np.uint64(0x165667B19E3779F9)
    h ^= h >> np.uint64(29)
    return h | np.uint64(1)


def bucket_key_py(service: int, n: int, first) -> np.uint64:
    """bucket_key for the Index's Python side (no kernel entry point to load for it)."""
    h = ((service + 1) * 0x9E3779B97F4A7C15) & _M64
    h ^= ((n + 7) * 0xC2B2AE3D27D4EB4F) & _M64
    h ^= (int(first) * 0x165667B19E3779F9) & _M64
    h ^= h >> 29
    return np.uint64(h | 1)


@nb.njit(cache=True)
def _bucket(tab_keys, tab_vals, key):
    i = _slot(tab_keys, key)
    return tab_vals[i] if tab_keys[i] == key else -1


@nb.njit(cache=True)
def _find_best(s, n, th, ts, tn, tk, tf, threshold, tab_keys, tab_vals, head, nxt, ent, c_off,
               c_alive, c_first, t_h, t_s, t_n, t_k, t_f, wild, lazy):
    """TemplateEngine._best on features: the best cluster (-1 if none close enough) and
    how many of its differing positions are values and words (values + words); -2 when
    lazy and the line's other token features are needed after all."""
    best = -1
    best_sim = -1.0
    best_vw = 0
    if n > 0 and tf[0] & HAS_LT == 0:
        fk = bucket_key(s, n, th[0])
        wk = bucket_key(s, n, wild)
        best, best_sim, best_vw = _best_in(
            _bucket(tab_keys, tab_vals, fk), fk, n, th, ts, tn, tk, tf, head, nxt, ent,
            c_off, c_alive, c_first, t_h, t_s, t_n, t_k, t_f, wild, best, best_sim, best_vw,
            lazy)
        if best == -2:
            return -2, 0
        if best_sim < 1.0:
            best, best_sim, best_vw = _best_in(
                _bucket(tab_keys, tab_vals, wk), wk, n, th, ts, tn, tk, tf, head, nxt, ent,
                c_off, c_alive, c_first, t_h, t_s, t_n, t_k, t_f, wild, best, best_sim,
                best_vw, lazy)
            if best == -2:
                return -2, 0
        if best >= 0 and best_sim >= threshold:
            return best, best_vw
    best = -1
    best_sim = -1.0
    best, best_sim, best_vw = _best_in(
        _bucket(tab_keys, tab_vals, bucket_key(s, n, np.uint64(0))), np.uint64(0), n, th, ts,
        tn, tk,
        tf, head, nxt, ent, c_off, c_alive, c_first, t_h, t_s, t_n, t_k, t_f, wild, best,
        best_sim, best_vw, lazy)
    if best == -2:
        return -2, 0
    if best >= 0 and best_sim >= threshold:
        return best, best_vw
    return -1, 0


def _cluster_run(masked, mends, longest, keys, idx, svc, begin, threshold, match, cache_keys,
                 cache_values, cache_room, lines, final, stats, tab_keys, tab_vals, head, nxt,
                 ent, c_off, c_alive, c_first, c_template, t_h, t_s, t_n, t_k, t_f, ph, ph_len,
                 is_punct, units, wild, key_tokens):
    """Template of each line idx[begin:], in order of arrival, until a new shape needs
    Python: returns that line's index (len(idx) when none did). longest: the longest
    masked form's length.

    idx holds the shape cache's answer from before the batch (-1: not cached); each line
    gets its template resolved through ``final`` (merges so far) and is counted in
    ``lines``. A line not cached is looked up again (an earlier line of the batch may have
    brought its shape), else matched against the templates from its masked form
    (masked[mends[k - 1]:mends[k]]) and, when no template has to change, cached: at most
    cache_room shapes, stats[1] of them so far; stats[0] counts the shapes matched here.
    With match False every new shape goes to Python; with key_tokens a request method or
    route matches only itself (KEY)."""
    n = idx.shape[0]
    scratch = np.empty(longest + 16, dtype=np.uint8)
    sk = np.empty(longest + 16, dtype=np.uint8)
    cap = longest + 1
    th = np.empty(cap, np.uint64)
    ts = np.empty(cap, np.uint64)
    tn = np.empty(cap, np.uint64)
    tk = np.empty(cap, np.uint64)
    tf = np.empty(cap, np.int64)
    for k in range(begin, n):
        t = idx[k]
        if t < 0:
            q = keys[k] | np.uint64(1)
            i = _slot(cache_keys, q)
            if cache_keys[i] == q:
                t = cache_values[i]
            else:
                if not match:
                    return k
                a = mends[k - 1] if k > 0 else 0
                m = mends[k] - a
                # a loop (a slice copy compiles its error message), unsigned indices (no
                # negative-index check per byte)
                au = np.uint64(a)
                for j in range(np.uint64(m)):
                    scratch[j] = masked[au + j]
                # hashes first: a new value in a known template's <*> needs no more
                ntok = _hash_tokens(scratch, m, th, tf, is_punct, key_tokens)
                s = np.int64(svc[k])
                lazy = ntok >= 0  # True, typed as a plain bool: one compiled _find_best
                best, vw = _find_best(s, ntok, th, ts, tn, tk, tf, threshold, tab_keys,
                                      tab_vals, head, nxt, ent, c_off, c_alive, c_first, t_h,
                                      t_s, t_n, t_k, t_f, wild, lazy)
                if best == -2:
                    ntok = _tokenize(scratch, m, ph, ph_len, is_punct, units, sk, th, ts, tn,
                                     tk, tf, key_tokens)
                    best, vw = _find_best(s, ntok, th, ts, tn, tk, tf, threshold, tab_keys,
                                          tab_vals, head, nxt, ent, c_off, c_alive, c_first,
                                          t_h, t_s, t_n, t_k, t_f, wild, not lazy)
                if best < 0 or vw != 0:
                    return k
                t = c_template[best]
                stats[0] += 1
                if stats[1] < cache_room:
                    cache_keys[i] = q
                    cache_values[i] = t
                    stats[1] += 1
        t = final[t]
        idx[k] = t
        lines[t] += 1
    return n


def _best_of_tokens(s, th, ts, tn, tk, tf, threshold, tab_keys, tab_vals, head, nxt, ent,
                    c_off, c_alive, c_first, t_h, t_s, t_n, t_k, t_f, wild, values, words):
    """The best cluster of the tokens of one line (-1 if none), with its differing
    positions: values[0:nv] (variable pairs of two shapes) and words[0:nw]; (best, nv, nw)."""
    n = th.shape[0]
    lazy = n < 0  # False, typed as a plain bool (the same compiled _find_best as _cluster_run)
    best, _ = _find_best(s, n, th, ts, tn, tk, tf, threshold, tab_keys, tab_vals, head, nxt,
                         ent, c_off, c_alive, c_first, t_h, t_s, t_n, t_k, t_f, wild, lazy)
    nv = 0
    nw = 0
    if best < 0:
        return best, nv, nw
    o = c_off[best]
    for p in range(n):
        a = o + p
        if t_h[a] == th[p] or t_h[a] == wild:
            continue
        if _variable_pair(t_h[a], t_s[a], t_n[a], t_k[a], t_f[a], th[p], ts[p], tn[p], tk[p],
                          tf[p], p > 0 and t_f[a - 1] & HAS_LT != 0):
            if t_s[a] != ts[p]:
                values[nv] = p
                nv += 1
        else:
            words[nw] = p
            nw += 1
    return best, nv, nw


with compiling():
    cluster_run = nb.njit(nb.types.int64(
        _BYTES_RO, _I64, nb.types.int64, _U64, nb.types.int32[::1], _I32, nb.types.int64, nb.types.float64,
        nb.types.boolean, _U64W, nb.types.int32[::1], nb.types.int64, _I64W,
        nb.types.Array(nb.types.int32, 1, "C", readonly=True), _I64W, _U64W,
        nb.types.int32[::1], _I64, _I64,
        _I64, _I64, _BOOL, _U64, _I32, _U64, _U64, _U64, _U64, _I64, _TABLE, _I64, _BOOL,
        _U64, nb.types.uint64, nb.types.boolean), cache=True)(_cluster_run)
    best_of_tokens = nb.njit(nb.types.UniTuple(nb.types.int64, 3)(
        nb.types.int64, _U64W, _U64W, _U64W, _U64W, _I64W, nb.types.float64, _U64W,
        nb.types.int32[::1], _I64,
        _I64,
        _I64, _I64, _BOOL, _U64, _U64, _U64, _U64, _U64, _I64, nb.types.uint64, _I64W, _I64W),
        cache=True)(_best_of_tokens)


class Index:
    """The engine's alive templates as arrays for cluster_run, kept in step by the engine:
    ``add`` (a new cluster), ``wild`` (positions generalised), ``move_first`` (its first
    token became <*>), ``kill`` (merged away). Bucket lists are append-only; the scan skips
    dead and moved entries, which keeps the engine's list order."""

    def __init__(self, keys: bool = False):
        self.keys = keys  # request methods and routes must match exactly (KEY)
        self.table = ShapeCache(max_entries=1 << 62)  # bucket key -> bucket id
        self.head = np.full(16, -1, np.int64)
        self.tail = np.full(16, -1, np.int64)
        self.buckets = 0
        self.nxt = np.full(64, -1, np.int64)
        self.ent = np.zeros(64, np.int64)
        self.entries = 0
        self.c_off = np.zeros(64, np.int64)
        self.c_alive = np.zeros(64, np.bool_)
        self.c_first = np.zeros(64, np.uint64)
        self.c_template = np.zeros(64, np.int32)
        self.clusters = 0
        self.t = [np.zeros(256, np.uint64) for _ in range(4)] + [np.zeros(256, np.int64)]
        self.tokens = 0

    @staticmethod
    def _fit(arr: np.ndarray, n: int, fill=0) -> np.ndarray:
        if n <= len(arr):
            return arr
        out = np.full(max(n, 2 * len(arr)), fill, dtype=arr.dtype)
        out[:len(arr)] = arr
        return out

    def _bucket(self, key) -> int:
        found = self.table.lookup(np.array([key], dtype=np.uint64))[0]
        if found >= 0:
            return int(found)
        b = self.buckets
        self.buckets += 1
        self.head = self._fit(self.head, self.buckets, -1)
        self.tail = self._fit(self.tail, self.buckets, -1)
        self.table.insert(int(key), b)
        return b

    def _append(self, key, cluster: int) -> None:
        b = self._bucket(key)
        e = self.entries
        self.entries += 1
        self.nxt = self._fit(self.nxt, self.entries, -1)
        self.ent = self._fit(self.ent, self.entries)
        self.ent[e] = cluster
        if self.tail[b] < 0:
            self.head[b] = e
        else:
            self.nxt[self.tail[b]] = e
        self.tail[b] = e

    def add(self, service: int, tokens: list[str], template: int) -> int:
        """A new alive cluster; its slot."""
        c = self.clusters
        self.clusters += 1
        for name, fill in (("c_off", 0), ("c_alive", False), ("c_first", 0),
                           ("c_template", 0)):
            setattr(self, name, self._fit(getattr(self, name), self.clusters, fill))
        n = len(tokens)
        feats = token_features(tokens, self.keys)
        self.t = [self._fit(a, self.tokens + n) for a in self.t]
        for a, f in zip(self.t, feats):
            a[self.tokens:self.tokens + n] = f
        self.c_off[c] = self.tokens
        self.tokens += n
        self.c_alive[c] = True
        self.c_template[c] = template
        first = WILD_HASH if n and "<" in tokens[0] else (feats[0][0] if n else np.uint64(0))
        self.c_first[c] = bucket_key_py(service, n, first)
        self._append(bucket_key_py(service, n, 0), c)
        self._append(self.c_first[c], c)
        return c

    def wild(self, c: int, positions) -> None:
        wild = token_features(["<*>"])
        for p in positions:
            for a, f in zip(self.t, wild):
                a[self.c_off[c] + p] = f[0]

    def move_first(self, service: int, c: int, n: int) -> None:
        """Its first token became <*>: file it in that bucket, in slot order."""
        self.c_first[c] = bucket_key_py(service, n, WILD_HASH)
        b = self._bucket(self.c_first[c])
        e = self.entries
        self.entries += 1
        self.nxt = self._fit(self.nxt, self.entries, -1)
        self.ent = self._fit(self.ent, self.entries)
        self.ent[e] = c
        prev, at = -1, self.head[b]
        while at >= 0 and self.ent[at] < c:
            prev, at = at, self.nxt[at]
        self.nxt[e] = at
        if prev < 0:
            self.head[b] = e
        else:
            self.nxt[prev] = e
        if at < 0:
            self.tail[b] = e

    def kill(self, c: int) -> None:
        self.c_alive[c] = False

    def best(self, service: int, tokens: list[str], threshold: float):
        """(slot of the best alive cluster or -1, value positions, word positions)."""
        feats = token_features(tokens, self.keys)
        values = np.empty(len(tokens), np.int64)
        words = np.empty(len(tokens), np.int64)
        best, nv, nw = best_of_tokens(service, *feats, threshold, self.table.keys,
                                      self.table.values, self.head, self.nxt, self.ent,
                                      self.c_off, self.c_alive, self.c_first, *self.t,
                                      WILD_HASH, values, words)
        return best, values[:nv].tolist(), words[:nw].tolist()

    def run(self, masked, mends, longest, keys, idx, svc, begin, threshold, match, cache,
            room, lines, final, stats) -> int:
        return cluster_run(masked, mends, longest, keys, idx, svc, begin, threshold, match, cache.keys,
                           cache.values, room, lines, final, stats, self.table.keys,
                           self.table.values, self.head, self.nxt, self.ent, self.c_off,
                           self.c_alive, self.c_first, self.c_template, *self.t, _PH_BYTES,
                           _PH_LEN, _IS_PUNCT, _UNIT_HASHES, WILD_HASH, self.keys)
