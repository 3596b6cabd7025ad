"""Prometheus metrics of DESIGN.md, computed at scrape time from the pipeline's counters.

No default registry: each pipeline owns a ``CollectorRegistry`` with one collector that
reads plain counters and the last scores when Prometheus scrapes. Per-template series
exist only for the top K templates of each service by |z| (the rest stay unlabelled), so
label sets are bounded.
"""
from __future__ import annotations

import errno
import threading
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from .config import ConfigError, port_range

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    """A plain histogram the collector exports (cumulative buckets, sum, count)."""

    def __init__(self, buckets=LATENCY_BUCKETS):
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, v: float) -> None:
        self.sum += v
        for k, b in enumerate(self.buckets):
            if v <= b:
                self.counts[k] += 1
                return
        self.counts[-1] += 1

    def export(self):
        acc, out = 0, []
        for b, c in zip(self.buckets, self.counts):
            acc += c
            out.append((str(b), acc))
        out.append(("+Inf", acc + self.counts[-1]))
        return out, self.sum


@dataclass
class Stats:
    """Everything the metrics report; the pipeline and sinks update it as plain data."""
    lines: dict = field(default_factory=lambda: defaultdict(int))  # service -> lines
    new_templates: dict = field(default_factory=lambda: defaultdict(int))
    anomalies: dict = field(default_factory=lambda: defaultdict(int))  # (svc, type, sev)
    invalid: dict = field(default_factory=lambda: defaultdict(int))  # reason -> records
    dead_lettered: int = 0
    window_dead_lettered: int = 0  # of them, lines the window stage refused (late, absurd)
    timeless: int = 0  # lines that came without a time logml reads
    templates: dict = field(default_factory=dict)  # service -> templates
    # service -> (score, outage, ratio, ratio_z, expected ratio, lines, expected lines)
    scores: dict = field(default_factory=dict)
    top_templates: dict = field(default_factory=dict)  # service -> [(template_id, z)]
    last_window_end: float = 0.0
    consumer_lag: dict = field(default_factory=dict)  # partition -> messages
    kafka_brokers_up: int | None = None  # brokers the consumer is connected to (None: n/a)
    bulk_errors: dict = field(default_factory=lambda: defaultdict(int))  # kind -> count
    bulk_latency: Histogram = field(default_factory=Histogram)
    # streaming hand-over health: checkpoint load/save failures, partitions assigned but
    # waiting for their state, dead letters not produced again while replaying
    checkpoint_errors: dict = field(default_factory=lambda: defaultdict(int))  # operation
    partitions_waiting: int = 0
    dead_letters_replayed: int = 0
    batch_latency: Histogram = field(default_factory=Histogram)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def forget(self, services) -> None:
        """Stop exporting gauges of services this process no longer owns (a partition moved
        to another consumer), so an alert does not fire once per consumer."""
        with self.lock:
            for svc in services:
                self.scores.pop(svc, None)
                self.top_templates.pop(svc, None)
                self.templates.pop(svc, None)


def top_templates(z: np.ndarray, template_service: np.ndarray, labelled: np.ndarray,
                  k: int, margin: float = 1.0, entry_z: float = 3.0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Which templates of each service get their own series this window: ``keep`` (a mask
    over templates), at most K per service; the rest of a service's templates are one
    series, template_id "other", shown with ``other[service]`` (its largest |z|; -1 when
    none is left over).

    The set is sticky, so Prometheus does not get a new series every window: a labelled
    template (``labelled``) keeps its label until an outsider displaces the weakest one,
    which takes |z| above ``entry_z`` and ``margin`` above the weakest's. Grouped
    reductions, no sort by |z| (a loop over every template cost 110 ms a window at a
    thousand services of fifty templates, more than scoring them): only a service whose
    set changes (a first window, an outsider taking a place) goes through the loop."""
    a = np.abs(np.asarray(z, np.float64))
    svc = np.asarray(template_service, np.int64)
    lab = np.asarray(labelled, bool)
    n_s = int(svc.max()) + 1 if len(svc) else 0
    keep, other = np.zeros(len(a), bool), np.full(n_s, -1)
    if n_s == 0:
        return keep, other
    by = np.argsort(svc, kind="stable")  # by service, then template order
    s_by, a_by, lab_by = svc[by], a[by], lab[by]
    size = np.bincount(svc, minlength=n_s)
    starts = np.searchsorted(s_by, np.arange(n_s))
    has = size > 0
    def per_service(ufunc, values, empty):
        out = np.full(n_s, empty, values.dtype)
        out[has] = ufunc.reduceat(values, starts[has])
        return out
    n_lab = per_service(np.add, lab_by.astype(np.int64), 0)
    weakest = per_service(np.minimum, np.where(lab_by, a_by, np.inf), np.inf)
    out_by = np.where(lab_by, -np.inf, a_by)
    best_out = per_service(np.maximum, out_by, -np.inf)
    settled = has & (n_lab == np.minimum(k, size)) & ~(
        best_out > np.maximum(weakest + margin, entry_z))
    keep[by[lab_by & settled[s_by]]] = True
    # a settled service's "other": its first unlabelled template of the largest |z|
    at = np.flatnonzero((out_by == best_out[s_by]) & (out_by > -np.inf) & settled[s_by])
    firsts = at[np.r_[True, s_by[at[1:]] != s_by[at[:-1]]]] if len(at) else at
    other[s_by[firsts]] = by[firsts]
    for s in np.flatnonzero(has & ~settled).tolist():  # a set that changes: the loop
        mine = by[starts[s]:starts[s] + size[s]]
        # the loop looks at no more than 2K + 1 outsiders (K to fill, K to displace each
        # first member once, one to stop): the labelled and the best 2K + 1 (with ties)
        outs = mine[~lab[mine]]
        if len(outs) > 2 * k + 1:
            a_out = a[outs]
            outs = outs[a_out >= np.partition(a_out, len(outs) - 2 * k - 1)[-2 * k - 1]]
        part = np.concatenate((mine[lab[mine]], outs))
        part = part[np.lexsort((part, -a[part]))]  # |z| descending, ties in template order
        mask = _sticky(part, a, lab, k, margin, entry_z)
        keep[part[mask]] = True
        if not mask.all():
            other[s] = part[~mask][0]
    return keep, other


def _sticky(part: np.ndarray, a: np.ndarray, labelled: np.ndarray, k: int, margin: float,
            entry_z: float) -> np.ndarray:
    """One service's kept set, as a mask over ``part`` (its templates, |z| descending)."""
    keep = [t for t in part.tolist() if labelled[t]][:k]
    members = set(keep)
    for t in part.tolist():
        if t in members:
            continue
        if len(keep) < k:
            keep.append(t)
            members.add(t)
            continue
        weakest = min(keep, key=lambda m: a[m])
        if a[t] <= max(a[weakest] + margin, entry_z):
            break
        keep[keep.index(weakest)] = t
        members = set(keep)
    members = set(keep)
    return np.array([t in members for t in part.tolist()], bool)


def top_templates_reference(z, template_service, labelled, k, margin=1.0, entry_z=3.0):
    """Plain reference of ``top_templates``: every service through the loop."""
    a = np.abs(np.asarray(z, np.float64))
    svc = np.asarray(template_service)
    n_s = int(svc.max()) + 1 if len(svc) else 0
    keep = np.zeros(len(a), bool)
    other = np.full(n_s, -1)
    for s in range(n_s):
        mine = np.flatnonzero(svc == s)
        part = mine[np.argsort(-a[mine], kind="stable")]
        mask = _sticky(part, a, np.asarray(labelled, bool), k, margin, entry_z)
        keep[part[mask]] = True
        if (~mask).any():
            other[s] = part[~mask][0]
    return keep, other


ANOMALY_TYPES = ("spike", "drop", "new_template", "error_rate")
SEVERITIES = ("warning", "critical")


class LogmlCollector:
    def __init__(self, stats: Stats):
        self.stats = stats

    def collect(self):
        s = self.stats
        with s.lock:
            c = CounterMetricFamily("logml_lines", "Log lines processed", labels=["service"])
            for svc, n in sorted(s.lines.items()):
                c.add_metric([svc], n)
            yield c
            c = CounterMetricFamily("logml_new_templates", "Templates created",
                                    labels=["service"])
            for svc, n in sorted(s.new_templates.items()):
                c.add_metric([svc], n)
            yield c
            c = CounterMetricFamily("logml_anomalies", "Anomalies found",
                                    labels=["service", "type", "severity"])
            # every type and severity of every service from its first line on, at 0 until it
            # happens, so that increase() sees the first anomaly (alerts count, not sample)
            counts = {(svc, kind, sev): 0 for svc in s.lines for kind in ANOMALY_TYPES
                      for sev in SEVERITIES}
            counts.update(s.anomalies)
            for (svc, kind, sev), n in sorted(counts.items()):
                c.add_metric([svc, kind, sev], n)
            yield c
            c = CounterMetricFamily("logml_records_invalid", "Records that could not be "
                                    "processed, by reason (all are dead-lettered)",
                                    labels=["reason"])
            for reason, n in sorted(s.invalid.items()):
                c.add_metric([reason], n)
            yield c
            yield CounterMetricFamily("logml_records_dead_lettered",
                                      "Records written to the dead-letter output",
                                      value=s.dead_lettered)
            g = GaugeMetricFamily("logml_templates", "Templates per service", labels=["service"])
            for svc, n in sorted(s.templates.items()):
                g.add_metric([svc], n)
            yield g
            names = ["logml_anomaly_score", "logml_outage_probability", "logml_error_ratio",
                     "logml_error_ratio_zscore", "logml_error_ratio_expected",
                     "logml_window_lines", "logml_window_lines_expected"]
            helps = ["Anomaly score 0-100 of the last closed window",
                     "Outage probability 0-1 of the last closed window",
                     "Share of error lines in the last closed window",
                     "z-score of the error ratio against its baseline",
                     "Baseline (EWMA) of the error ratio before the last closed window",
                     "Lines in the last closed window",
                     "Baseline (EWMA) of lines per window before the last closed window"]
            for k, (name, text) in enumerate(zip(names, helps)):
                g = GaugeMetricFamily(name, text, labels=["service"])
                for svc, vals in sorted(s.scores.items()):
                    g.add_metric([svc], vals[k])
                yield g
            g = GaugeMetricFamily("logml_template_zscore", "z-score of a template's count, top "
                                  "K templates of each service", labels=["service", "template_id"])
            for svc, rows in sorted(s.top_templates.items()):
                for tid, z in rows:
                    g.add_metric([svc, tid], z)
            yield g
            yield GaugeMetricFamily("logml_last_window_closed_timestamp_seconds",
                                    "End of the last closed window (event time)",
                                    value=s.last_window_end)
            if s.kafka_brokers_up is not None:
                yield GaugeMetricFamily("logml_kafka_brokers_up", "Kafka brokers this "
                                        "consumer is connected to (0: Kafka out of reach)",
                                        value=s.kafka_brokers_up)
            g = GaugeMetricFamily("logml_consumer_lag", "Messages behind the partition end",
                                  labels=["partition"])
            for part, lag in sorted(s.consumer_lag.items()):
                g.add_metric([str(part)], lag)
            yield g
            c = CounterMetricFamily("logml_checkpoint_errors",
                                    "Checkpoints that could not be loaded or saved (retried)",
                                    labels=["operation"])
            for op in ("load", "save"):
                c.add_metric([op], s.checkpoint_errors.get(op, 0))
            yield c
            yield GaugeMetricFamily("logml_partitions_waiting_for_state",
                                    "Partitions assigned whose checkpoint could not be read yet "
                                    "(paused, retried)", value=s.partitions_waiting)
            yield CounterMetricFamily("logml_dead_letters_replay_skipped",
                                      "Dead letters not produced again while replaying records "
                                      "a previous owner had dead-lettered",
                                      value=s.dead_letters_replayed)
            c = CounterMetricFamily("logml_elasticsearch_bulk_errors",
                                    "Elasticsearch bulk item and request errors", labels=["kind"])
            for kind, n in sorted(s.bulk_errors.items()):
                c.add_metric([kind], n)
            yield c
            for name, hist, text in (
                    ("logml_elasticsearch_bulk_seconds", s.bulk_latency,
                     "Elasticsearch bulk request latency"),
                    ("logml_batch_seconds", s.batch_latency, "Processing time of one batch")):
                buckets, total = hist.export()
                h = HistogramMetricFamily(name, text)
                h.add_metric([], buckets, total)
                yield h


def registry_for(stats: Stats) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(LogmlCollector(stats))
    return reg


class MetricsPortError(ConfigError):
    """No port of metrics.port could be bound; the message says which and what to do."""


def serve(stats: Stats, port: int | str, addr: str = "127.0.0.1"):
    """Serve /metrics on addr and the first free port of ``port`` (N, or a range "N-M" so
    that several consumers share one pipeline file on a host). Returns the server
    (``server_port`` is the port taken, ``shutdown()`` stops it), or None for port 0."""
    ports = port_range(port)
    if ports is None:
        raise MetricsPortError(f"metrics.port {port!r} is not a port or a range like "
                               "\"9108-9117\"")
    if not ports:
        return None
    registry = registry_for(stats)
    for p in ports:
        try:
            server, _thread = start_http_server(p, addr=addr, registry=registry)
            return server
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise MetricsPortError(f"cannot serve metrics on {addr}:{p}: "
                                       f"{e.strerror or e}; check metrics.address (an "
                                       f"address of this host: 127.0.0.1, or 0.0.0.0 for "
                                       f"all)") from None
    if len(ports) == 1:
        raise MetricsPortError(f"metrics port {ports[0]} is in use; give each consumer on "
                               "this host its own (--metrics-port N) or a range in the "
                               "pipeline file ([metrics] port = \"9108-9117\")")
    raise MetricsPortError(f"metrics ports {ports[0]}-{ports[-1]} are all in use; widen "
                           "[metrics] port or give --metrics-port N")
