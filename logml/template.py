"""Template stage: every message to a stable template, with drain3's Drain as the core.

The fast path is in front of the tree: one numba pass masks each line and hashes its
shape; a shape cache answers every shape seen before for the whole batch at once. Only
new shapes are masked again in Python and clustered by drain3 (one tree per service).

Template ids are 16 hex digits of a hash of the service and the masked form that created
the template: unique across services, the same for the same input, and kept when the
template generalises or the state is restored from a snapshot.
"""
from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass, field

import numpy as np
from drain3.drain import Drain, LogCluster

from .config import TemplateConfig
from .masking import PLACEHOLDERS, Masker, mask_flags, pack_lines
from .shapecache import ShapeCache
from .snapshot import SnapshotError

OVERFLOW_TEMPLATE = "<overflow: template cap reached>"
_PLACEHOLDERS = frozenset(p for p in PLACEHOLDERS if p)


_PLACEHOLDER_RX = re.compile("|".join(re.escape(p) for p in _PLACEHOLDERS))


def _has_placeholder(token: str) -> bool:
    return "<" in token and any(p in token for p in _PLACEHOLDERS)


def _variable_shape(token: str) -> str:
    """The token with every placeholder made one: [<NUM>] and [<HEX>] are alike."""
    return _PLACEHOLDER_RX.sub("<*>", token) if "<" in token else token


class MaskAwareDrain(Drain):
    """drain3's Drain, told what the masks mean: a token holding a placeholder is a
    variable, so it takes the tree's wildcard branch, and two variables at the same
    position count as alike whatever their mask class."""

    def get_content_as_tokens(self, content):
        # templates share their words: one string object per distinct token, not per cluster
        return [sys.intern(t) for t in super().get_content_as_tokens(content)]

    @staticmethod
    def has_numbers(s):
        return any(c.isdigit() for c in s) or _has_placeholder(s)

    def get_seq_distance(self, seq1, seq2, include_params: bool):
        """Share of the template's constant tokens the line repeats; wildcards and
        placeholder pairs are variables and count on neither side."""
        if len(seq1) == 0:
            return 1.0, 0
        same = 0
        param_count = 0
        constants = 0
        for token1, token2 in zip(seq1, seq2):
            if token1 == self.param_str:
                param_count += 1
            elif token1 == token2:
                if "<" in token1 and _variable_shape(token1) == "<*>":
                    continue
                same += 1
                constants += 1
            elif ("<" in token1 and "<" in token2
                  and _variable_shape(token1) == _variable_shape(token2)):
                pass
            else:
                constants += 1
        if include_params:
            return (same + param_count) / len(seq1), param_count
        return (same / constants if constants else 1.0), param_count


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


@dataclass(slots=True)
class Template:
    service: int
    template_id: str
    cluster_id: int  # drain3 cluster id within the service's tree; -1 for overflow
    first_seen_line: int  # engine-wide line counter when created


@dataclass
class ServiceTree:
    name: str
    seed: np.uint64
    drain: Drain
    by_cluster: dict[int, int] = field(default_factory=dict)
    overflow: int = -1


class TemplateEngine:
    """Batch API: ``template_batch(messages, services)`` gives an int32 template index per
    message; ``template_id``, ``template_text`` and ``params`` describe an index."""

    def __init__(self, config: TemplateConfig | None = None):
        self.config = config or TemplateConfig()
        self.masker = Masker(mask_flags(self.config.masks))
        self.cache = ShapeCache(self.config.shape_cache_entries)
        self.services: list[ServiceTree] = []
        self.service_index: dict[str, int] = {}
        self.templates: list[Template] = []
        self.template_index: dict[str, int] = {}
        self.lines_seen = 0

    # ---------------------------------------------------------------- services
    def service(self, name: str) -> int:
        """Dense index of a service, creating its tree on first sight."""
        idx = self.service_index.get(name)
        if idx is None:
            c = self.config
            drain = MaskAwareDrain(depth=c.depth, sim_th=c.similarity, max_children=c.max_children,
                          max_clusters=None, parametrize_numeric_tokens=True)
            idx = len(self.services)
            self.services.append(ServiceTree(name, np.uint64(_hash64(name)), drain))
            self.service_index[name] = idx
        return idx

    def templates_of(self, service: int) -> int:
        return len(self.services[service].by_cluster) + (self.services[service].overflow >= 0)

    # ---------------------------------------------------------------- batch
    def template_batch(self, messages: list[str], services: np.ndarray | int = 0) -> np.ndarray:
        """Template index (int32) of each message; services is one index or one per message."""
        if len(messages) == 0:
            return np.empty(0, dtype=np.int32)
        buf, starts, ends = pack_lines(messages)
        return self.template_packed(buf, starts, ends, services)

    def template_packed(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                        services: np.ndarray | int = 0) -> np.ndarray:
        """Template index of each line buf[starts[k]:ends[k]] (UTF-8)."""
        n = len(starts)
        if not self.services:
            self.service("default")
        svc = np.broadcast_to(np.asarray(services, dtype=np.int32), (n,))
        seeds = np.fromiter((s.seed for s in self.services), dtype=np.uint64,
                            count=len(self.services))[svc]
        keys, _ = self.masker.hashes(buf, starts, ends, seeds)
        idx = self.cache.lookup(keys)
        miss = np.flatnonzero(idx < 0)
        if len(miss):
            # cluster each new shape once, in order of first appearance (Drain is order-bound)
            _, first = np.unique(keys[miss], return_index=True)
            for pos in miss[np.sort(first)]:
                masked = self.masker.mask_bytes(buf, starts[pos], ends[pos])
                t = self._cluster(int(svc[pos]), masked, self.lines_seen + int(pos))
                self.cache.insert(int(keys[pos]), t)
            idx[miss] = self.cache.lookup(keys[miss])
            still = idx[miss] < 0  # the cache was cleared mid-batch (it was full)
            if still.any():
                for pos in miss[still]:
                    masked = self.masker.mask_bytes(buf, starts[pos], ends[pos])
                    idx[pos] = self._cluster(int(svc[pos]), masked, self.lines_seen + int(pos))
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

    def _cluster(self, service: int, masked: str, line_no: int) -> int:
        tree = self.services[service]
        drain = tree.drain
        if len(tree.by_cluster) >= self.config.max_templates_per_service:
            tokens = drain.get_content_as_tokens(masked)
            cluster = drain.tree_search(drain.root_node, tokens, drain.sim_th, False)
            if cluster is not None:
                return tree.by_cluster[cluster.cluster_id]
            if tree.overflow < 0:
                tree.overflow = self._new_template(service, -1, OVERFLOW_TEMPLATE, line_no)
            return tree.overflow
        cluster, change = drain.add_log_message(masked)
        known = tree.by_cluster.get(cluster.cluster_id)
        if known is not None:
            return known
        t = self._new_template(service, cluster.cluster_id, masked, line_no)
        tree.by_cluster[cluster.cluster_id] = t
        return t

    def _new_template(self, service: int, cluster_id: int, text: str, line_no: int) -> int:
        name = self.services[service].name
        base = f"{name}\x00{text}"
        tid = f"{_hash64(base):016x}"
        salt = 0
        while tid in self.template_index:  # two clusters born from one text: keep ids unique
            salt += 1
            salted = f"{base}\x00{salt}"
            tid = f"{_hash64(salted):016x}"
        self.templates.append(Template(service, tid, cluster_id, line_no))
        self.template_index[tid] = len(self.templates) - 1
        return len(self.templates) - 1

    # ---------------------------------------------------------------- describing
    def template_id(self, idx: int) -> str:
        return self.templates[idx].template_id

    def template_text(self, idx: int) -> str:
        t = self.templates[idx]
        if t.cluster_id < 0:
            return OVERFLOW_TEMPLATE
        return self.services[t.service].drain.id_to_cluster[t.cluster_id].get_template()

    def service_name(self, idx: int) -> str:
        return self.services[self.templates[idx].service].name

    def params(self, message: str, idx: int) -> list[str]:
        """Values of the template's variable parts in message (template and line align
        token by token, since masking and Drain both split on whitespace)."""
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
        """Plain data (PLAN contract 1): each service's clusters (id, size, template) in id
        order, the templates and the shape cache. No drain3 objects and no config: the
        prefix trees are rebuilt from the clusters under the config given to from_state."""
        svc, cid, size, text = [], [], [], []
        for k, tree in enumerate(self.services):
            for c in sorted(tree.drain.id_to_cluster.values(), key=lambda c: c.cluster_id):
                svc.append(k)
                cid.append(c.cluster_id)
                size.append(c.size)
                text.append(c.get_template())
        ts = self.templates
        return {
            "masks": list(self.config.masks),
            "services": [s.name for s in self.services],
            "clusters": {"service": np.array(svc, dtype=np.int32),
                         "id": np.array(cid, dtype=np.int64),
                         "size": np.array(size, dtype=np.int64),
                         "template": text},
            "templates": {"service": np.array([t.service for t in ts], dtype=np.int32),
                          "id": np.array([int(t.template_id, 16) for t in ts], dtype=np.uint64),
                          "cluster": np.array([t.cluster_id for t in ts], dtype=np.int64),
                          "first_seen_line": np.array([t.first_seen_line for t in ts],
                                                      dtype=np.int64)},
            "cache": self.cache.state(),
            "lines_seen": self.lines_seen,
        }

    @classmethod
    def from_state(cls, state: dict, config: TemplateConfig | None = None) -> "TemplateEngine":
        """The engine of a saved state under the current config: similarity, depth,
        max_children and the template cap apply to what comes next; a changed mask set
        starts the shape cache afresh (its hashes were taken under the old masks)."""
        engine = cls(config)
        try:
            _restore(engine, state)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise SnapshotError(f"templates state is malformed: {type(e).__name__}: {e}") \
                from None
        return engine


def _restore(engine: TemplateEngine, state: dict) -> None:
    names = state["services"]
    clusters, templates = state["clusters"], state["templates"]
    c_svc, c_id, c_size, c_text = (clusters[k] for k in ("service", "id", "size", "template"))
    t_svc, t_id, t_cluster, t_line = (templates[k] for k in ("service", "id", "cluster",
                                                            "first_seen_line"))
    n, m = len(c_id), len(t_id)
    _need(isinstance(names, list) and all(isinstance(x, str) for x in names)
          and len(set(names)) == len(names), "service names must be distinct strings")
    _need(isinstance(c_text, list) and all(isinstance(x, str) for x in c_text),
          "cluster templates must be strings")
    _need(len(c_svc) == n and len(c_size) == n and len(c_text) == n, "cluster columns differ")
    _need(len(t_svc) == m and len(t_cluster) == m and len(t_line) == m,
          "template columns differ")
    _need(all(_int_array(a) for a in (c_svc, c_id, c_size, t_svc, t_id, t_cluster, t_line)),
          "columns must be integer arrays")
    _need(bool(np.all((c_svc >= 0) & (c_svc < len(names))) and np.all(c_id >= 1))
          and bool(np.all((t_svc >= 0) & (t_svc < len(names))) and np.all(t_cluster >= -1)),
          "service or cluster index out of range")
    cluster_keys = set(zip(c_svc.tolist(), c_id.tolist()))
    template_keys = list(zip(t_svc.tolist(), t_cluster.tolist()))
    _need(len(cluster_keys) == n, "a cluster is listed twice")
    _need(len(set(template_keys)) == m, "two templates for one cluster")
    _need({k for k in template_keys if k[1] >= 0} == cluster_keys,
          "clusters and templates do not match")
    _need(len(set(t_id.tolist())) == m, "template ids are not unique")
    lines_seen = state["lines_seen"]
    _need(type(lines_seen) is int and lines_seen >= 0, "lines_seen")

    for name in names:
        engine.service(name)
    order = np.lexsort((c_id, c_svc))  # creation order within each tree
    trees = [s.drain for s in engine.services]
    for svc, cid, size, k in zip(c_svc[order].tolist(), c_id[order].tolist(),
                                 c_size[order].tolist(), order.tolist()):
        drain = trees[svc]
        cluster = LogCluster(drain.get_content_as_tokens(c_text[k]), cid)
        cluster.size = size
        drain.id_to_cluster[cid] = cluster
        drain.add_seq_to_prefix_tree(drain.root_node, cluster)
        drain.clusters_counter = max(drain.clusters_counter, cid)
    for k, ((service, cluster_id), tid, line) in enumerate(zip(
            template_keys, t_id.tolist(), t_line.tolist())):
        tid = f"{tid:016x}"
        engine.templates.append(Template(service, tid, cluster_id, line))
        engine.template_index[tid] = k
        tree = engine.services[service]
        if cluster_id < 0:
            tree.overflow = k
        else:
            tree.by_cluster[cluster_id] = k
    if list(engine.config.masks) == state["masks"]:
        cache = ShapeCache.from_state(state["cache"], engine.config.shape_cache_entries)
        _need(bool(np.all(cache.values[cache.keys != 0] < m)), "cache points past the templates")
        engine.cache = cache
    engine.lines_seen = lines_seen


def _int_array(a) -> bool:
    return isinstance(a, np.ndarray) and a.ndim == 1 and a.dtype.kind in "iu"


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise SnapshotError(f"templates state is malformed: {what}")
