"""Checkpoint cost, before and after the state format change: bytes and ms to save and to
restore 10k templates (the template stage) and 100k series (a detector-like dict of eight
float64 baselines). "before" is format 1 as it was (a zlib'd pickle of drain3 objects and
tuples), re-implemented here because logml no longer reads it; "after" is format 2.

    .venv/bin/python -m pytest benchmarks/test_checkpoint.py --benchmark-only \
        --benchmark-json=benchmarks/results/checkpoint.json

Each benchmark's extra_info holds the state's bytes; the summary is written to
benchmarks/results/checkpoint_summary.json."""
import os
import pickle
import zlib

import numpy as np
import orjson
import pytest

from logml import snapshot
from logml.config import TemplateConfig
from logml.shapecache import ShapeCache, insert
from logml.template import ServiceTree, Template, TemplateEngine, _hash64

TEMPLATES = 10_000
SERIES = 100_000
SUMMARY: dict = {}


# ---------------------------------------------------------------- format 1, as it was
def v1_dumps(kind: str, state: dict) -> bytes:
    header = orjson.dumps({"format": 1, "kind": kind})
    body = zlib.compress(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), 1)
    return snapshot.MAGIC + header + b"\n" + body


def v1_loads(data: bytes) -> dict:
    end = data.index(b"\n", len(snapshot.MAGIC))
    return pickle.loads(zlib.decompress(data[end + 1:]))


def v1_template_state(e: TemplateEngine) -> dict:
    used = e.cache.keys != 0
    return {"masks": list(e.config.masks),
            "services": [(s.name, s.drain, s.by_cluster, s.overflow) for s in e.services],
            "templates": [(t.service, t.template_id, t.cluster_id, t.first_seen_line)
                          for t in e.templates],
            "cache": {"keys": e.cache.keys[used].copy(), "values": e.cache.values[used].copy(),
                      "max_entries": e.cache.max_entries},
            "lines_seen": e.lines_seen}


def v1_template_restore(state: dict, config: TemplateConfig) -> TemplateEngine:
    engine = TemplateEngine(config)
    for name, drain, by_cluster, overflow in state["services"]:
        engine.service_index[name] = len(engine.services)
        engine.services.append(ServiceTree(name, np.uint64(_hash64(name)), drain,
                                           dict(by_cluster), overflow))
    for service, tid, cluster_id, line_no in state["templates"]:
        engine.templates.append(Template(service, tid, cluster_id, line_no))
        engine.template_index[tid] = len(engine.templates) - 1
    c = state["cache"]
    n = len(c["keys"])
    cache = ShapeCache(c["max_entries"], 1 << max(12, int(2 * n + 1).bit_length()))
    for k, v in zip(c["keys"], c["values"]):
        insert(cache.keys, cache.values, k, v)
    cache.size = n
    engine.cache = cache
    engine.lines_seen = state["lines_seen"]
    return engine


# ---------------------------------------------------------------- workloads
CONFIG = TemplateConfig(max_templates_per_service=TEMPLATES)


def make_engine() -> TemplateEngine:
    """10k templates over 4 services, each seen three times with other values: random
    word sequences, so each is its own template."""
    rng = np.random.default_rng(3)
    vocab = np.array([f"w{a}{b}" for a in "bcdfghjklmnpqrstvz" for b in "aeiouy"] +
                     [f"{x}ing" for x in ("load", "sav", "read", "writ", "send", "get")])
    e = TemplateEngine(CONFIG)
    services = np.array([e.service(f"svc-{k}") for k in range(4)], dtype=np.int32)
    lines, svc = [], []
    for t in range(TEMPLATES):
        words = rng.choice(vocab, size=int(rng.integers(4, 12)))
        for v in range(3):
            lines.append(" ".join(words) + f" id={t * 3 + v} took {v}ms")
            svc.append(services[t % 4])
    for k in range(0, len(lines), 10_000):
        e.template_batch(lines[k:k + 10_000], np.array(svc[k:k + 10_000], dtype=np.int32))
    assert len(e.templates) >= TEMPLATES * 0.95, len(e.templates)
    return e


def make_series() -> dict:
    """A detector-like state: eight float64 baselines of 100k series, values as EWMAs
    leave them (no two alike, so they compress as real ones do)."""
    rng = np.random.default_rng(5)
    return {name: rng.gamma(2.0, 10.0, SERIES) for name in
            ("t_mean", "t_var", "t_seen", "s_mean", "s_var", "r_mean", "r_var", "r_level")}


@pytest.fixture(scope="module")
def engine() -> TemplateEngine:
    return make_engine()


@pytest.fixture(scope="module")
def series() -> dict:
    return make_series()


def _save(kind, fmt, engine, series):
    if kind == "templates":
        if fmt == "before":
            return lambda: v1_dumps("templates", v1_template_state(engine))
        return lambda: snapshot.dumps("templates", engine.state(), compress=fmt == "after")
    if fmt == "before":
        return lambda: v1_dumps("detector", series)
    return lambda: snapshot.dumps("detector", series, compress=fmt == "after")


def _restore(kind, fmt, data):
    if kind == "templates":
        if fmt == "before":
            return lambda: v1_template_restore(v1_loads(data), CONFIG)
        return lambda: TemplateEngine.from_state(snapshot.loads(data, "templates"), CONFIG)
    if fmt == "before":
        return lambda: v1_loads(data)
    return lambda: snapshot.loads(data, "detector")


FORMATS = ["before", "after", "after-uncompressed"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["templates", "series"])
def test_checkpoint_save(benchmark, engine, series, kind, fmt):
    save = _save(kind, fmt, engine, series)
    data = benchmark.pedantic(save, rounds=11, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(bytes=len(data), units=TEMPLATES if kind == "templates"
                                else SERIES)
    SUMMARY.setdefault(kind, {}).setdefault(fmt, {}).update(
        bytes=len(data), save_ms=round(benchmark.stats.stats.median * 1000, 1),
        save_min_ms=round(benchmark.stats.stats.min * 1000, 1))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["templates", "series"])
def test_checkpoint_restore(benchmark, engine, series, kind, fmt, record):
    data = _save(kind, fmt, engine, series)()
    restored = benchmark.pedantic(_restore(kind, fmt, data), rounds=11, iterations=1,
                                  warmup_rounds=1)
    if kind == "templates":
        assert [t.template_id for t in restored.templates] == \
            [t.template_id for t in engine.templates]
        assert len(restored.cache) == len(engine.cache)
    else:
        assert all(np.array_equal(restored[k], v) for k, v in series.items())
    benchmark.extra_info.update(bytes=len(data))
    SUMMARY.setdefault(kind, {}).setdefault(fmt, {}).update(
        bytes=len(data), restore_ms=round(benchmark.stats.stats.median * 1000, 1),
        restore_min_ms=round(benchmark.stats.stats.min * 1000, 1))
    if kind == "series" and fmt == FORMATS[-1]:
        record("checkpoint_summary", template_count=TEMPLATES, series_count=SERIES,
               cached_shapes=len(engine.cache), timing="median (and min) of 11 rounds",
               load_average_1m=round(os.getloadavg()[0], 1), cores=os.cpu_count(),
               **SUMMARY)
