import numpy as np
from hypothesis import given, settings, strategies as st

from logml import snapshot
from logml.config import TemplateConfig
from logml.shapecache import ShapeCache, lookup_reference
from logml.template import OVERFLOW_TEMPLATE, TemplateEngine

LINES = [
    "connected to 10.0.0.1 in 12ms",
    "connected to 10.0.0.2 in 15ms",
    "user alice logged in from 10.0.0.3",
    "user bob logged in from 10.0.0.4",
    "disk /dev/sda1 is 91% full",
]


def test_batch_gives_one_template_per_shape():
    e = TemplateEngine()
    idx = e.template_batch(LINES)
    assert idx[0] == idx[1]
    assert idx[2] == idx[3]
    assert len({idx[0], idx[2], idx[4]}) == 3
    assert e.template_text(idx[0]) == "connected to <IP> in <NUM>"
    assert e.params(LINES[1], idx[1]) == ["10.0.0.2", "15ms"]


def test_ids_are_deterministic_and_unique_across_services():
    a, b = TemplateEngine(), TemplateEngine()
    ia = a.template_batch(LINES, a.service("api"))
    ib = b.template_batch(LINES, b.service("api"))
    assert [a.template_id(i) for i in ia] == [b.template_id(i) for i in ib]
    ic = a.template_batch(LINES, a.service("db"))
    assert not {a.template_id(i) for i in ia} & {a.template_id(i) for i in ic}


def test_generalising_template_keeps_its_id():
    e = TemplateEngine()
    first = e.template_batch(["job alpha started on worker one"])[0]
    tid = e.template_id(first)
    second = e.template_batch(["job beta started on worker one"])[0]
    assert e.template_id(second) == tid
    assert e.template_text(second) == "job <*> started on worker one"
    # the first shape is cached and still answers the same id
    assert e.template_id(e.template_batch(["job alpha started on worker one"])[0]) == tid


def test_snapshot_restore_keeps_ids_and_cache(tmp_path):
    e = TemplateEngine()
    before = [e.template_id(i) for i in e.template_batch(LINES)]
    path = tmp_path / "templates.snap"
    snapshot.write(path, "templates", e.state())
    r = TemplateEngine.from_state(snapshot.read(path, "templates"))
    assert len(r.cache) == len(e.cache)
    assert [r.template_id(i) for i in r.template_batch(LINES)] == before
    # new shapes after the restore cluster into the restored trees
    j = r.template_batch(["connected to 10.9.9.9 in 1ms"])[0]
    assert r.template_id(j) == before[0]


def test_snapshot_rejects_foreign_files(tmp_path):
    import pytest
    p = tmp_path / "x"
    p.write_bytes(b"not a snapshot")
    with pytest.raises(snapshot.SnapshotError, match="magic"):
        snapshot.read(p, "templates")
    snapshot.write(p, "other", {})
    with pytest.raises(snapshot.SnapshotError, match="expected 'templates'"):
        snapshot.read(p, "templates")


def test_template_cap_sends_new_shapes_to_overflow():
    e = TemplateEngine(TemplateConfig(max_templates_per_service=5))
    # each line a different number of tokens: every one is a new template
    lines = [" ".join(["tok"] * n) for n in range(1, 30)]
    idx = e.template_batch(lines)
    texts = [e.template_text(i) for i in idx]
    assert texts[:5] == lines[:5]
    assert set(texts[5:]) == {OVERFLOW_TEMPLATE}
    assert e.templates_of(0) == 6
    # an existing template still matches after the cap
    assert e.template_text(e.template_batch(["tok tok"])[0]) == "tok tok"


def test_random_tokens_do_not_grow_memory_without_bound():
    e = TemplateEngine(TemplateConfig(max_templates_per_service=50, shape_cache_entries=1000))
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), 8)) for _ in range(20000)]
    lines = [f"{w} {w[::-1]} request" for w in words]
    for k in range(0, len(lines), 2000):
        e.template_batch(lines[k:k + 2000])
    assert len(e.templates) <= 51
    assert len(e.cache) <= 1000


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=300),
       st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=300))
def test_shape_cache_matches_dict_reference(keys, queries):
    cache = ShapeCache(max_entries=10**6, capacity=16)
    ref = {}
    for v, k in enumerate(keys):
        cache.insert(k, v)
        ref[k | 1] = v
    q = np.array(keys[:50] + queries, dtype=np.uint64)
    assert np.array_equal(cache.lookup(q), lookup_reference(ref, q))
