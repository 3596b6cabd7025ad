"""Template stage: every message to a stable template, online (a line gets its template
when it arrives).

The fast path is in front of the clustering: one numba pass masks each line and hashes its
shape; a shape cache answers every shape seen before for the whole batch at once. Only new
shapes are clustered, one service at a time, against the templates of their length (in
compiled code, ``matcher.py``, while no template has to change; here when one does):

* the best template is the one whose constant tokens the line repeats most (at least
  ``similarity`` of them);
* where line and template differ, a token pair that is variable by shape (two masked
  values, ``key=<*>`` against ``key=word``, a value against an empty one, a unit after a
  number, a masked value against a word with digits) makes the template generalise there
  (``<*>``), keeping its id;
* any other difference is a constant of another event when the template has held its
  wording for ``STABLE_LINES`` lines, or at the first word, as Drain's first-token tree
  has it: the line starts a sibling template instead of blurring ``GET``/``POST`` or
  ``Paused``/``Resumed`` into one;
* siblings that differ only at the same positions are a variable after all once
  ``SIBLING_VALUES`` values are seen (user names, hosts): they merge into one template
  with ``<*>`` there. The merged template has a new id and lists its parents; the
  parents' ids resolve to it (``successor``), and lines that arrive later get it;
* a line that fits no template of its length joins one of another length it repeats but
  for optional variable tokens (``1190 bytes (1.16 KB) sent`` against ``0 bytes sent``,
  a longer stack of masked frames);
* a line that differs from a template in several words (not the first) and shares at
  least ``LOW_SIMILARITY_SHARED`` with it, above ``LOW_SIMILARITY``, is its sibling: a
  user, an order and a host in one line merge as above.

* a request method or route (``GET /api/v1/users/<*>/cart``: masking keeps routes) names
  its event: it matches only itself, never a variable, so each endpoint has a template
  of its own; but once ``ROUTE_VALUES`` routes of a service differ in one path segment
  (slugs, user names), a new one joins its family's template (``/products/<*>``).

Template ids are 16 hex digits of a hash of the service and the masked form that created
the template: unique across services, the same for the same input, and kept when the
template generalises or the state is restored from a snapshot.
"""
from __future__ import annotations

import bisect
import hashlib
import math
import re
import sys
from dataclasses import dataclass, field

import numpy as np

from .config import TemplateConfig
from .masking import HTTP_METHODS, PLACEHOLDERS, ROUTES, Masker, mask_flags, pack_lines
from .matcher import UNITS, Index
from .shapecache import ShapeCache
from .snapshot import SnapshotError

OVERFLOW_TEMPLATE = "<overflow: template cap reached>"
# the rules lines are masked and matched by, saved with the templates: a restored engine
# keeps the rules its templates were made under, so an upgrade changes no template.
# 1: paths masked whole; 2: request routes (masking.ROUTES) that match only themselves
MASK_RULES = 2
# a route family with this many routes (differing in one path segment) has a variable
# there: slugs, names (/products/red-shoes): a new route of it joins the family's template
# (/products/<*>); its first routes keep theirs. Few APIs have this many resources at one
# position, most slug families far more
ROUTE_VALUES = 32
WILD = "<*>"
# a template that has held a word this many lines takes a different word there as another
# event; younger templates generalise, as Drain does
STABLE_LINES = 3
# siblings differing only at the same positions merge into one variable at this many values
SIBLING_VALUES = 4
# lines this similar but not enough to join are siblings (several words may be variables)
LOW_SIMILARITY = 0.4
LOW_SIMILARITY_SHARED = 3

_PLACEHOLDER_RX = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS if p))
_PUNCT = "[](){}\"',;:.!?"
_UNITS = frozenset(UNITS)
_METHODS = frozenset(HTTP_METHODS)


def _skeleton(token: str) -> str:
    """The token with every placeholder made one: [<NUM>] and [<HEX>] are alike."""
    return _PLACEHOLDER_RX.sub(WILD, token) if "<" in token else token


def _is_value(token: str) -> bool:
    """A masked value with at most punctuation around it: <NUM>, (<IP>), <*>,"""
    return "<" in token and _skeleton(token).strip(_PUNCT) == WILD


def _route_span(token: str) -> tuple[int, int] | None:
    """(start, end) of the token's core (no punctuation around) when it is a request route
    (with paths masked, the only paths masking leaves: /api/users/<*>/cart)."""
    a, e = len(token) - len(token.lstrip(_PUNCT)), len(token.rstrip(_PUNCT))
    return (a, e) if e - a >= 2 and token[a] == "/" and token[a + 1] != "/" else None


def _is_key(token: str) -> bool:
    """A request method or route: it names the event, so it matches only itself, never a
    variable (matcher._is_key)."""
    return _route_span(token) is not None or token.strip(_PUNCT) in _METHODS


def _route_at(tokens: list[str]) -> tuple[int, int, int]:
    """(position, start, end) of the first request route in tokens and of its core;
    position -1 if none."""
    for p, t in enumerate(tokens):
        span = _route_span(t) if "/" in t else None
        if span:
            return p, *span
    return -1, 0, 0


def _route_families(route: str) -> list[str]:
    """The route with each of its path segments (not already <*>) made <*> in turn."""
    path, question, query = route.partition("?")
    segs = path.split("/")
    return ["/".join(segs[:i] + [WILD] + segs[i + 1:]) + question + query
            for i in range(1, len(segs)) if segs[i] and segs[i] != WILD]


def _kv(token: str) -> tuple[str, str] | None:
    key, eq, value = token.strip(_PUNCT).partition("=")
    return (key, value) if eq and key else None


_DIGIT_RX = re.compile("[0-9]")
_LETTER_RX = re.compile("[A-Za-z\x80-\U0010ffff]")


def _has_digit_and_letter(token: str) -> bool:
    """An ASCII digit and a letter (any non-ASCII character counts as one, as in masking)."""
    return _DIGIT_RX.search(token) is not None and _LETTER_RX.search(token) is not None


def _variable_pair(a: str, b: str, before: str) -> bool:
    """Tokens a (template) and b (line) at one position differ as two values of a variable:
    the shapes say so, whatever the wording."""
    if "<" in a or "<" in b:
        sa, sb = _skeleton(a), _skeleton(b)
        if sa == sb:
            return True
        va, vb = sa.strip(_PUNCT) == WILD, sb.strip(_PUNCT) == WILD
        if (va and (vb or _has_digit_and_letter(b))) or (vb and _has_digit_and_letter(a)):
            return True
        if ((WILD in sb and sb.replace(WILD, "") == sa)
                or (WILD in sa and sa.replace(WILD, "") == sb)):
            return True  # the value is empty in one of them: "()" and "(<IP>)"
        ka, kb = _kv(a), _kv(b)
        if ka and kb and ka[0] == kb[0] and (_skeleton(ka[1]).strip(_PUNCT) == WILD
                                             or _skeleton(kb[1]).strip(_PUNCT) == WILD):
            return True  # key=<*> and key=word: the key's value is a variable
    return "<" in before and a.strip(_PUNCT) in _UNITS and b.strip(_PUNCT) in _UNITS


def _optional(tokens: list[str], i: int) -> bool:
    """A token a template may have or lack: a masked value, a unit after one, punctuation."""
    t = tokens[i]
    if t == WILD or _is_value(t):
        return True
    kv = _kv(t)
    if kv and _skeleton(kv[1]).strip(_PUNCT) == WILD:
        return True
    core = t.strip(_PUNCT)
    return not core or (core in _UNITS and i > 0 and "<" in tokens[i - 1])


def _aligns(template: list[str], tokens: list[str]) -> bool:
    """Template and line agree, in order, on every token but optional ones (skipped on
    either side, greedily); a wildcard stands for one token."""
    i = j = constants = 0
    n, m = len(template), len(tokens)
    while i < n and j < m:
        a, b = template[i], tokens[j]
        if a == b or a == WILD or ("<" in a and "<" in b and _skeleton(a) == _skeleton(b)):
            constants += not _optional(template, i)
            i += 1
            j += 1
        elif _optional(tokens, j):
            j += 1
        elif _optional(template, i):
            i += 1
        else:
            return False
    return constants > 0 and all(_optional(template, k) for k in range(i, n)) and \
        all(_optional(tokens, k) for k in range(j, m))


def _drop(lists: dict, key, k: int) -> None:
    """Remove k from a candidate list, and the list once empty."""
    lists[key].remove(k)
    if not lists[key]:
        del lists[key]


def _word_key(tokens: list[str]) -> str:
    return "" if not tokens else WILD if _is_value(tokens[0]) else tokens[0]


def _first_key(tokens: list[str]) -> tuple[int, str]:
    return len(tokens), (WILD if tokens and "<" in tokens[0] else tokens[0] if tokens else "")


def _alignment_counts(tokens: list[str]) -> tuple[int, int, int]:
    """(required tokens, tokens that can equal a required one, <*> tokens) for _aligns:
    only a unit is optional or not by its neighbour."""
    required = sum(not _optional(tokens, i) for i in range(len(tokens)))
    units = sum(_optional(tokens, i) and t.strip(_PUNCT) in _UNITS for i, t in enumerate(tokens))
    return required, required + units, sum(t == WILD for t in tokens)


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


@dataclass(slots=True)
class Template:
    service: int
    template_id: str
    cluster_id: int  # index in the service's clusters; -1 for overflow
    first_seen_line: int  # engine-wide line counter when created
    parents: tuple[str, ...] = ()  # ids of the templates merged into this one
    # start of its service's first window still open at the line that made it (set by the
    # pipeline; NaN when unknown): a merge holds for that window and later ones only
    first_open_window: float = math.nan


@dataclass(slots=True)
class Cluster:
    tokens: list[str]
    template: int  # engine template index
    slot: int  # in the compiled matcher's arrays
    alive: bool = True  # False once merged into a successor
    counts: tuple | None = None  # _alignment_counts of its tokens (None: to count again)


@dataclass
class ServiceTree:
    name: str
    seed: np.uint64
    clusters: list[Cluster] = field(default_factory=list)
    by_len: dict[int, list[int]] = field(default_factory=dict)  # alive clusters by length
    # alive clusters by (length, first word); a first token holding a value is filed as <*>
    by_first: dict[tuple[int, str], list[int]] = field(default_factory=dict)
    # alive clusters by first token, any length; a value there is filed as <*>
    by_word: dict[str, list[int]] = field(default_factory=dict)
    # sibling groups: (differing positions, template with <*> there) -> cluster indices
    groups: dict[tuple, list[int]] = field(default_factory=dict)
    overflow: int = -1
    alive: int = 0
    # request routes of its templates, and each route family (a route with one path
    # segment made <*>) -> the routes in it
    routes: set[str] = field(default_factory=set)
    families: dict[str, set[str]] = field(default_factory=dict)


class TemplateEngine:
    """Batch API: ``template_batch(messages, services)`` gives an int32 template index per
    message; ``template_id``, ``template_text``, ``params`` and ``lineage`` describe an
    index; ``successor(template_id)`` follows merges."""

    def __init__(self, config: TemplateConfig | None = None):
        self.config = config or TemplateConfig()
        self._use_rules(MASK_RULES)
        self.cache = ShapeCache(self.config.shape_cache_entries)
        self.services: list[ServiceTree] = []
        self.service_index: dict[str, int] = {}
        self.templates: list[Template] = []
        self.template_index: dict[str, int] = {}
        self.lines_seen = 0
        self.shape_hits = 0  # lines the shape cache answered
        self.new_shapes = 0  # shapes clustered (each once, on its first line)
        # per template index: lines it got, and the template it resolves to (itself or the
        # template it was merged into)
        self._lines = np.zeros(64, dtype=np.int64)
        self._final = np.arange(64, dtype=np.int32)
        self._pairs: dict[tuple, bool] = {}  # memo of _variable_pair
        self._slot_cluster: list[int] = []  # matcher slot -> index in its service's clusters
        self.compiled = True  # False: every new shape takes the Python path (tests)

    def _use_rules(self, rules: int) -> None:
        """Mask and match by template rules `rules` (MASK_RULES); an empty engine only."""
        self.rules = rules
        flags = mask_flags(self.config.masks)
        self.masker = Masker(flags | ROUTES if rules >= 2 else flags)
        # with paths masked, the only paths left are request routes: a route and its
        # method name the event and are never generalised (a template per endpoint)
        self.route_keys = rules >= 2 and "path" in self.config.masks
        self.index = Index(self.route_keys)  # the alive clusters, for the compiled matcher

    # ---------------------------------------------------------------- services
    def service(self, name: str) -> int:
        """Dense index of a service, creating its tree on first sight."""
        idx = self.service_index.get(name)
        if idx is None:
            idx = len(self.services)
            self.services.append(ServiceTree(name, np.uint64(_hash64(name))))
            self.service_index[name] = idx
        return idx

    def templates_of(self, service: int) -> int:
        """Templates of a service in use (merged ones excluded)."""
        tree = self.services[service]
        return tree.alive + (tree.overflow >= 0)

    # ---------------------------------------------------------------- batch
    def template_batch(self, messages: list[str], services: np.ndarray | int = 0) -> np.ndarray:
        """Template index (int32) of each message; services is one index or one per message."""
        if len(messages) == 0:
            return np.empty(0, dtype=np.int32)
        buf, starts, ends = pack_lines(messages)
        return self.template_packed(buf, starts, ends, services)

    def template_packed(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                        services: np.ndarray | int = 0) -> np.ndarray:
        """Template index of each line buf[starts[k]:ends[k]] (UTF-8), as of its arrival."""
        n = len(starts)
        if not self.services:
            self.service("default")
        svc = np.broadcast_to(np.asarray(services, dtype=np.int32), (n,))
        seeds = np.fromiter((s.seed for s in self.services), dtype=np.uint64,
                            count=len(self.services))[svc]
        keys, _, masked, mends = self.masker.shapes(buf, starts, ends, seeds)
        idx = self.cache.lookup(keys)
        misses = int(np.count_nonzero(idx < 0))
        self.shape_hits += n - misses
        # room in the cache for every new shape of the batch, cleared first when it would
        # not fit (it is only a cache)
        room = self.cache.reserve(misses)
        stats = np.zeros(2, dtype=np.int64)  # shapes matched in compiled code, cached there
        longest = int(np.max(np.diff(mends, prepend=0))) if n else 0
        k = 0
        while True:
            # in order of arrival (clustering is order-bound): the compiled run templates
            # and counts lines until a new shape changes a template; that one goes to Python
            k = self.index.run(masked, mends, longest, keys, idx, svc, k, self.config.similarity,
                               self.compiled, self.cache, room, self._lines, self._final,
                               stats)
            self.cache.size += int(stats[1])
            room -= int(stats[1])
            self.new_shapes += int(stats[0])
            stats[:] = 0
            if k == n:
                break
            text = masked[mends[k - 1] if k else 0:mends[k]].tobytes().decode("utf-8",
                                                                              "replace")
            t = self._cluster(int(svc[k]), text, self.lines_seen + k)
            self.new_shapes += 1
            if room > 0:
                self.cache.insert(int(keys[k]), t)
                room -= 1
            idx[k] = t  # resolved and counted by the next run
        self.lines_seen += n
        return idx

    def template_events(self, events) -> tuple[np.ndarray, np.ndarray]:
        """(template index, engine service index) of each event of a decoded EventBatch,
        straight from its byte buffer."""
        if len(events) == 0:
            return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int32)
        mapping = np.array([self.service(n) for n in events.services], dtype=np.int32)
        svc = mapping[events.service]
        return self.template_packed(events.buf, events.text_start, events.end, svc), svc

    # ---------------------------------------------------------------- clustering
    def _cluster(self, service: int, masked: str, line_no: int) -> int:
        """Template index of a new shape (its masked text) of a service."""
        tree = self.services[service]
        tokens = [sys.intern(t) for t in masked.split()]
        if self.route_keys:
            tokens = _in_route_family(tree, tokens)
        best, values, words = self._find(service, tokens, self.config.similarity)
        if best is not None:
            cluster = tree.clusters[best]
            if words and (words[0] == 0
                          or self._lines[cluster.template] >= STABLE_LINES):
                return self._sibling(tree, service, best, tokens, words, line_no)
            # candidate lists stay in creation order (a restored engine rebuilds them so)
            if 0 in values + words and "<" not in cluster.tokens[0]:
                _drop(tree.by_first, _first_key(cluster.tokens), best)
                bisect.insort(tree.by_first.setdefault((len(tokens), WILD), []), best)
                self.index.move_first(service, cluster.slot, len(tokens))
            if 0 in values + words and not _is_value(cluster.tokens[0]):
                _drop(tree.by_word, _word_key(cluster.tokens), best)
                bisect.insort(tree.by_word.setdefault(WILD, []), best)
            for p in values + words:
                cluster.tokens[p] = WILD
            cluster.counts = None
            self.index.wild(cluster.slot, values + words)
            return cluster.template
        other = self._optional_match(tree, tokens)
        if other is not None:
            return tree.clusters[other].template
        # too different to join for differing in several words, which may all be variables
        # (a user, an order, a host): a sibling, and SIBLING_VALUES such lines differing at
        # the same positions merge into one template. Not for one word (a short line's other
        # event), nor the first word, nor with fewer than LOW_SIMILARITY_SHARED words shared.
        near, _, words = self._find(service, tokens, LOW_SIMILARITY)
        if near is not None and len(words) > 1 and words[0] != 0 and sum(
                a == b and not _is_value(a)
                for a, b in zip(tree.clusters[near].tokens, tokens)) >= LOW_SIMILARITY_SHARED:
            return self._sibling(tree, service, near, tokens, words, line_no)
        return self._add(tree, service, tokens, line_no)

    def _find(self, service: int, tokens: list[str], threshold: float):
        """_best, compiled unless the engine is told not to (the tests compare the two)."""
        if self.compiled:
            slot, values, words = self.index.best(service, tokens, threshold)
            return (self._slot_cluster[slot] if slot >= 0 else None), values, words
        return self._best(self.services[service], tokens, threshold)

    def _best(self, tree: ServiceTree, tokens: list[str],
              threshold: float) -> tuple[int | None, list, list]:
        """The template of this length whose constant tokens the line repeats most, if
        enough, with the positions where they differ: as two values of a variable, and
        in wording. Values (masked or by shape) are no evidence either way."""
        n = len(tokens)
        if n and "<" not in tokens[0]:
            # templates with the same first word (or a value there) first, as in Drain's
            # tree; all of this length only when none of them is close enough
            near = tree.by_first.get((n, tokens[0]), []) + tree.by_first.get((n, WILD), [])
            found = self._best_of(tree, tokens, near, threshold)
            if found[0] is not None:
                return found
        return self._best_of(tree, tokens, tree.by_len.get(n, ()), threshold)

    def _best_of(self, tree: ServiceTree, tokens: list[str], candidates,
                 threshold: float) -> tuple:
        best, best_sim, best_values, best_words = None, -1.0, [], []
        for k in candidates:
            template = tree.clusters[k].tokens
            same = constants = 0
            values, words = [], []
            for p, (a, b) in enumerate(zip(template, tokens)):
                if a == b:
                    if "<" not in a or not _is_value(a):
                        same += 1
                        constants += 1
                elif self.route_keys and (_is_key(a) or _is_key(b)):
                    break  # another method or route: another event
                elif a == WILD:
                    continue
                elif self._pair(a, b, p > 0 and "<" in template[p - 1]):
                    if _skeleton(a) != _skeleton(b):
                        values.append(p)
                else:
                    constants += 1
                    words.append(p)
            else:
                sim = same / constants if constants else 1.0
                if sim > best_sim:
                    best, best_sim, best_values, best_words = k, sim, values, words
        if best is None or best_sim < threshold:
            return None, [], []
        return best, best_values, best_words

    def _pair(self, a: str, b: str, after_value: bool) -> bool:
        """_variable_pair, remembered: the same token pairs meet again and again."""
        key = (a, b, after_value)
        known = self._pairs.get(key)
        if known is None:
            if len(self._pairs) >= 1 << 16:
                self._pairs.clear()
            known = self._pairs[key] = _variable_pair(a, b, "<" if after_value else "")
        return known

    def _sibling(self, tree: ServiceTree, service: int, best: int, tokens: list[str],
                 diff: list[int], line_no: int) -> int:
        """A template for another event beside `best`, or, when the siblings at these
        positions reach SIBLING_VALUES, one template with <*> there for all of them."""
        generic = list(tree.clusters[best].tokens)
        for p in diff:
            generic[p] = WILD
        key = (tuple(diff), tuple(generic))
        members = tree.groups.setdefault(key, [best])
        members[:] = [k for k in members if tree.clusters[k].alive]
        if len(members) + 1 < SIBLING_VALUES:
            before = len(tree.clusters)
            t = self._add(tree, service, tokens, line_no)
            if len(tree.clusters) > before:
                members.append(before)
            return t
        del tree.groups[key]
        merged = self._add(tree, service, generic, line_no,
                           parents=tuple(self.templates[tree.clusters[k].template].template_id
                                         for k in members), force=True)
        for k in members:
            c = tree.clusters[k]
            c.alive = False
            self.index.kill(c.slot)
            tree.alive -= 1
            _drop(tree.by_len, len(c.tokens), k)
            _drop(tree.by_first, _first_key(c.tokens), k)
            _drop(tree.by_word, _word_key(c.tokens), k)
            self._final[self._final == c.template] = merged
        return merged

    def _optional_match(self, tree: ServiceTree, tokens: list[str]) -> int | None:
        """The most used template of another length that the line repeats but for
        optional tokens, on either side (both start alike: the same word or a value)."""
        best, best_lines = None, -1
        n = len(tokens)
        mine = None
        for k in tree.by_word.get(_word_key(tokens), ()):
            c = tree.clusters[k]
            t = c.tokens
            if len(t) == n or abs(len(t) - n) * 2 > max(len(t), n):
                continue
            mine = mine or _alignment_counts(tokens)
            c.counts = c.counts or _alignment_counts(t)
            # every required token of one side needs an equal token (or a template <*>)
            # on the other: too few there and no alignment can succeed
            if c.counts[0] > mine[1] or mine[0] > c.counts[1] + c.counts[2]:
                continue
            lines = int(self._lines[tree.clusters[k].template])
            if lines > best_lines and _aligns(t, tokens):
                best, best_lines = k, lines
        return best

    def _add(self, tree: ServiceTree, service: int, tokens: list[str], line_no: int,
             parents: tuple[str, ...] = (), force: bool = False) -> int:
        """A new cluster and its template; the overflow template past the cap."""
        if tree.alive >= self.config.max_templates_per_service and not force:
            if tree.overflow < 0:
                tree.overflow = self._new_template(service, -1, OVERFLOW_TEMPLATE, line_no)
            return tree.overflow
        t = self._new_template(service, len(tree.clusters), " ".join(tokens), line_no, parents)
        tree.by_len.setdefault(len(tokens), []).append(len(tree.clusters))
        tree.by_first.setdefault(_first_key(tokens), []).append(len(tree.clusters))
        tree.by_word.setdefault(_word_key(tokens), []).append(len(tree.clusters))
        tree.clusters.append(Cluster(list(tokens), t, self.index.add(service, tokens, t)))
        if self.route_keys:
            _add_route(tree, tokens)
        self._slot_cluster.append(len(tree.clusters) - 1)
        tree.alive += 1
        return t

    def _new_template(self, service: int, cluster_id: int, text: str, line_no: int,
                      parents: tuple[str, ...] = ()) -> int:
        name = self.services[service].name
        base = f"{name}\x00{text}"
        tid = f"{_hash64(base):016x}"
        salt = 0
        while tid in self.template_index:  # two clusters born from one text: keep ids unique
            salt += 1
            salted = f"{base}\x00{salt}"
            tid = f"{_hash64(salted):016x}"
        idx = len(self.templates)
        self.templates.append(Template(service, tid, cluster_id, line_no, parents))
        self.template_index[tid] = idx
        if idx >= len(self._lines):
            grow = len(self._lines)
            self._lines = np.concatenate((self._lines, np.zeros(grow, dtype=np.int64)))
            self._final = np.concatenate((self._final,
                                          np.arange(grow, 2 * grow, dtype=np.int32)))
        return idx

    # ---------------------------------------------------------------- describing
    def template_id(self, idx: int) -> str:
        return self.templates[idx].template_id

    def template_text(self, idx: int) -> str:
        t = self.templates[idx]
        if t.cluster_id < 0:
            return OVERFLOW_TEMPLATE
        return " ".join(self.services[t.service].clusters[t.cluster_id].tokens)

    def service_name(self, idx: int) -> str:
        return self.services[self.templates[idx].service].name

    def successor(self, template_id: str) -> str:
        """The id a template resolves to now: itself, or the template it was merged into
        (through every later merge)."""
        return self.templates[int(self._final[self.template_index[template_id]])].template_id

    def lineage(self, idx: int) -> dict:
        """Where a template came from and where it went: ``parents`` (ids merged into it)
        and ``successor`` (the id it resolves to; its own while in use)."""
        t = self.templates[idx]
        return {"parents": list(t.parents),
                "successor": self.templates[int(self._final[idx])].template_id}

    def params(self, message: str, idx: int) -> list[str]:
        """Values of the template's variable parts in message (template and line align
        token by token, since masking and clustering both split on whitespace)."""
        tokens = message.split()
        tmpl = self.template_text(idx).split()
        if len(tokens) != len(tmpl):
            return []
        out = []
        for tok, pat in zip(tokens, tmpl):
            if tok == pat or "<" not in pat:
                continue
            p = 0
            while p < min(len(tok), len(pat)) and tok[p] == pat[p] and pat[p] != "<":
                p += 1
            s = 0
            while (s < min(len(tok), len(pat)) - p and tok[-1 - s] == pat[-1 - s]
                   and pat[-1 - s] != ">"):
                s += 1
            out.append(tok[p:len(tok) - s])
        return out

    # ---------------------------------------------------------------- state
    def state(self) -> dict:
        """Plain data (PLAN contract 1), no config: each service's clusters in creation
        order (template index, alive, tokens), the sibling groups, the templates (id,
        cluster row, first line, parents, lines, resolved index, first open window) and the
        shape cache. The matcher's arrays and the candidate lists are rebuilt from the
        clusters."""
        clusters = [(k, c) for k, tree in enumerate(self.services) for c in tree.clusters]
        groups = [(k, key, members) for k, tree in enumerate(self.services)
                  for key, members in tree.groups.items()]
        ts, n = self.templates, len(self.templates)
        first_row = np.cumsum([0] + [len(tree.clusters) for tree in self.services]).tolist()
        return {
            "rules": self.rules,
            "masks": list(self.config.masks),
            "services": [s.name for s in self.services],
            "overflow": np.array([s.overflow for s in self.services], dtype=np.int64),
            "clusters": {"service": np.array([k for k, _ in clusters], dtype=np.int32),
                         "template": np.array([c.template for _, c in clusters], np.int64),
                         "alive": np.array([c.alive for _, c in clusters], dtype=bool),
                         "text": [" ".join(c.tokens) for _, c in clusters]},
            "groups": {"service": np.array([k for k, _, _ in groups], dtype=np.int32),
                       "positions": [np.array(key[0], dtype=np.int64) for _, key, _ in groups],
                       "text": [" ".join(key[1]) for _, key, _ in groups],
                       "members": [np.array(m, dtype=np.int64) for _, _, m in groups]},
            "templates": {"service": np.array([t.service for t in ts], dtype=np.int32),
                          "id": np.array([int(t.template_id, 16) for t in ts], dtype=np.uint64),
                          # the row of its cluster in "clusters", -1 for an overflow one
                          "cluster": np.array([first_row[t.service] + t.cluster_id
                                               if t.cluster_id >= 0 else -1 for t in ts],
                                              dtype=np.int64),
                          "first_seen_line": np.array([t.first_seen_line for t in ts],
                                                      dtype=np.int64),
                          "first_open_window": np.array([t.first_open_window for t in ts],
                                                        dtype=np.float64),
                          "parents": [np.array([int(p, 16) for p in t.parents], dtype=np.uint64)
                                      for t in ts],
                          "lines": self._lines[:n].copy(),
                          "final": self._final[:n].astype(np.int64)},
            "cache": self.cache.state(),
            "lines_seen": self.lines_seen,
        }

    @classmethod
    def from_state(cls, state: dict, config: TemplateConfig | None = None) -> "TemplateEngine":
        """The engine of a saved state under the current config: similarity and the
        template cap apply to what comes next; a changed mask set starts the shape cache
        afresh (its hashes were taken under the old masks)."""
        engine = cls(config)
        try:
            _restore(engine, state)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise SnapshotError(f"templates state is malformed: {type(e).__name__}: {e}") \
                from None
        return engine


def _restore(engine: TemplateEngine, state: dict) -> None:
    names, overflow = state["services"], state["overflow"]
    cl, gr, ts = state["clusters"], state["groups"], state["templates"]
    c_svc, c_t, c_alive, c_text = (cl[k] for k in ("service", "template", "alive", "text"))
    g_svc, g_pos, g_text, g_mem = (gr[k] for k in ("service", "positions", "text", "members"))
    t_svc, t_id, t_cl, t_line, t_par, t_lines, t_final, t_open = (ts[k] for k in (
        "service", "id", "cluster", "first_seen_line", "parents", "lines", "final",
        "first_open_window"))
    n, m, g = len(c_t), len(t_id), len(g_svc)
    _need(isinstance(names, list) and all(isinstance(x, str) for x in names)
          and len(set(names)) == len(names), "service names must be distinct strings")
    _need(all(isinstance(x, list) and all(isinstance(y, str) for y in x)
              for x in (c_text, g_text)), "cluster and group texts must be strings")
    _need(all(isinstance(x, list) for x in (g_pos, g_mem, t_par)), "list columns")
    _need(len(c_svc) == n and len(c_alive) == n and len(c_text) == n, "cluster columns differ")
    _need(len(g_pos) == g and len(g_text) == g and len(g_mem) == g, "group columns differ")
    _need(all(len(a) == m for a in (t_svc, t_cl, t_line, t_par, t_lines, t_final, t_open)),
          "template columns differ")
    _need(isinstance(t_open, np.ndarray) and t_open.dtype == np.float64,
          "first_open_window must be float64")
    _need(all(_int_array(a) for a in (overflow, c_svc, c_t, g_svc, t_svc, t_id, t_cl, t_line,
                                      t_lines, t_final, *g_pos, *g_mem, *t_par)),
          "columns must be integer arrays")
    _need(isinstance(c_alive, np.ndarray) and c_alive.dtype == bool, "alive must be bool")
    _need(len(overflow) == len(names) and bool(np.all((overflow >= -1) & (overflow < m))),
          "overflow out of range")

    def in_range(a, hi) -> bool:
        return bool(np.all((a >= 0) & (a < hi)))

    _need(in_range(c_svc, len(names)) and in_range(c_t, m) and in_range(g_svc, len(names))
          and in_range(t_svc, len(names)) and in_range(t_final, m)
          and bool(np.all((t_cl >= -1) & (t_cl < n))), "service or cluster index out of range")
    rows = t_cl[t_cl >= 0]
    _need(len(np.unique(rows)) == len(rows), "two templates for one cluster")
    _need(len(set(t_id.tolist())) == m, "template ids are not unique")
    lines_seen = state["lines_seen"]
    _need(type(lines_seen) is int and lines_seen >= 0, "lines_seen")
    rules = state["rules"]
    _need(type(rules) is int and 1 <= rules <= MASK_RULES,
          f"rules must be 1..{MASK_RULES} (a newer logml's templates?)")

    engine._use_rules(rules)
    for name in names:
        engine.service(name)
    local = []  # each cluster row's index within its service
    for k, t, alive, text in zip(c_svc.tolist(), c_t.tolist(), c_alive.tolist(), c_text):
        tree = engine.services[k]
        tokens = [sys.intern(x) for x in text.split(" ")] if text else []
        slot = engine.index.add(k, tokens, t)
        engine._slot_cluster.append(len(tree.clusters))
        local.append(len(tree.clusters))
        if alive:
            tree.by_len.setdefault(len(tokens), []).append(len(tree.clusters))
            tree.by_first.setdefault(_first_key(tokens), []).append(len(tree.clusters))
            tree.by_word.setdefault(_word_key(tokens), []).append(len(tree.clusters))
            tree.alive += 1
        else:
            engine.index.kill(slot)
        tree.clusters.append(Cluster(tokens, t, slot, alive))
        if engine.route_keys:
            _add_route(tree, tokens)
    for tree, o in zip(engine.services, overflow.tolist()):
        tree.overflow = o
    for k, pos, text, members in zip(g_svc.tolist(), g_pos, g_text, g_mem):
        tree = engine.services[k]
        _need(in_range(members, len(tree.clusters)) and in_range(pos, text.count(" ") + 1),
              "a sibling group out of range")
        tree.groups[(tuple(pos.tolist()), tuple(text.split(" ")))] = members.tolist()
    for k, (svc, tid, row, line, parents, open_) in enumerate(zip(
            t_svc.tolist(), t_id.tolist(), t_cl.tolist(), t_line.tolist(), t_par,
            t_open.tolist())):
        _need(row < 0 or (c_svc[row] == svc and c_t[row] == k),
              "clusters and templates do not match")
        tid = f"{tid:016x}"
        engine.templates.append(Template(svc, tid, local[row] if row >= 0 else -1, line,
                                         tuple(f"{p:016x}" for p in parents.tolist()),
                                         open_))
        engine.template_index[tid] = k
    _need(all(c_t[r] == k for k, r in enumerate(t_cl.tolist()) if r >= 0)
          and len(rows) == n, "clusters and templates do not match")
    size = max(64, 1 << int(m).bit_length())
    engine._lines = np.zeros(size, dtype=np.int64)
    engine._lines[:m] = t_lines
    engine._final = np.arange(size, dtype=np.int32)
    engine._final[:m] = t_final
    if list(engine.config.masks) == state["masks"]:
        cache = ShapeCache.from_state(state["cache"], engine.config.shape_cache_entries)
        _need(bool(np.all(cache.values[cache.keys != 0] < m)), "cache points past the templates")
        engine.cache = cache
    engine.lines_seen = lines_seen


def _add_route(tree: ServiceTree, tokens: list[str]) -> None:
    """File the route of a new cluster (if any) in the tree's routes and families."""
    p, a, e = _route_at(tokens)
    if p >= 0 and tokens[p][a:e] not in tree.routes:
        route = tokens[p][a:e]
        tree.routes.add(route)
        for family in _route_families(route):
            tree.families.setdefault(family, set()).add(route)


def _in_route_family(tree: ServiceTree, tokens: list[str]) -> list[str]:
    """The tokens with a route new to the tree replaced by its family's (<*> at one path
    segment) when that family has ROUTE_VALUES routes already: a variable there."""
    p, a, e = _route_at(tokens)
    if p < 0 or tokens[p][a:e] in tree.routes:
        return tokens
    for family in _route_families(tokens[p][a:e]):
        if len(tree.families.get(family, ())) >= ROUTE_VALUES:
            t = tokens[p]
            return tokens[:p] + [sys.intern(t[:a] + family + t[e:])] + tokens[p + 1:]
    return tokens


def _int_array(a) -> bool:
    return isinstance(a, np.ndarray) and a.ndim == 1 and a.dtype.kind in "iu"


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise SnapshotError(f"templates state is malformed: {what}")
