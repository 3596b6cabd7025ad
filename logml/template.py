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
from drain3.drain import Drain

from .config import TemplateConfig
from .masking import PLACEHOLDERS, Masker, mask_flags, pack_lines
from .shapecache import ShapeCache

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
        return {
            "masks": list(self.config.masks),
            "services": [(s.name, s.drain, s.by_cluster, s.overflow) for s in self.services],
            "templates": [(t.service, t.template_id, t.cluster_id, t.first_seen_line)
                          for t in self.templates],
            "cache": self.cache.state(),
            "lines_seen": self.lines_seen,
        }

    @classmethod
    def from_state(cls, state: dict, config: TemplateConfig | None = None) -> "TemplateEngine":
        engine = cls(config)
        if list(engine.config.masks) != state["masks"]:
            # cached shapes were hashed under another mask set; start the cache afresh
            state = {**state, "cache": ShapeCache(engine.config.shape_cache_entries).state()}
        for name, drain, by_cluster, overflow in state["services"]:
            engine.service_index[name] = len(engine.services)
            engine.services.append(ServiceTree(name, np.uint64(_hash64(name)), drain,
                                               dict(by_cluster), overflow))
        for service, tid, cluster_id, line_no in state["templates"]:
            engine.templates.append(Template(service, tid, cluster_id, line_no))
            engine.template_index[tid] = len(engine.templates) - 1
        engine.cache = ShapeCache.from_state(state["cache"])
        engine.lines_seen = state["lines_seen"]
        return engine
