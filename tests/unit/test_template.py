import re
from pathlib import Path

import numpy as np
import pytest
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


def _ids(e, lines):
    return [e.template_id(i) for i in e.template_batch(lines)]


def test_a_wording_held_for_lines_is_another_event_not_a_variable():
    e = TemplateEngine()
    held = _ids(e, [f"Session: {k}_{k * 7} initialized by client WindowsUpdateAgent."
                    for k in range(3)])
    other = _ids(e, ["Session: 11152_142416105 initialized by client SPP."])
    assert len(set(held)) == 1 and other[0] != held[0]
    assert e.template_text(e.template_index[held[0]]).endswith("client WindowsUpdateAgent.")
    # a young template still generalises at its second line (test above: job alpha/beta)


def test_the_first_word_tells_events_apart():
    e = TemplateEngine()
    a, b = _ids(e, ["Acquiring suspend blocker WakeLocks", "Releasing suspend blocker WakeLocks"])
    assert a != b


def test_many_sibling_values_merge_into_a_variable_with_lineage():
    e = TemplateEngine()
    users = ["alice", "bob", "carol", "dave", "erin"]
    first = _ids(e, [f"session opened for user {u} by sshd" for u in users[:1] * 3])[0]
    ids = _ids(e, [f"session opened for user {u} by sshd" for u in users[1:]])
    assert ids[0] != first and ids[1] not in (first, ids[0])  # bob, carol: other events yet
    merged = ids[2]  # dave is the fourth value: a variable after all
    assert ids[3] == merged
    m = e.template_index[merged]
    assert e.template_text(m) == "session opened for user <*> by sshd"
    assert sorted(e.lineage(m)["parents"]) == sorted([first, ids[0], ids[1]])
    for old in (first, ids[0], ids[1]):
        assert e.successor(old) == merged
        assert e.lineage(e.template_index[old])["successor"] == merged
    assert e.successor(merged) == merged
    # cached shapes of the merged templates now answer the successor
    assert _ids(e, ["session opened for user alice by sshd"]) == [merged]
    assert e.templates_of(0) == 1


@pytest.mark.parametrize("held,other", [
    ("connection from 10.0.0.{k} ()", "connection from 10.0.0.9 (node-12)"),  # empty value
    ("stored {k}.2 KB in memory", "stored 9.5 MB in memory"),  # a unit after a number
    ("setSystemUiVisibility vis={k} mask=ffffffff", "setSystemUiVisibility vis=3 mask=0x7"),
    ("core file written to /var/core/{k}", "core file written to allreduce_V1R1.rts"),
])
def test_variables_by_shape_generalise_however_long_held(held, other):
    e = TemplateEngine()
    ids = _ids(e, [held.format(k=k) for k in range(1, 5)] + [other])
    assert len(set(ids)) == 1, [e.template_text(e.template_index[i]) for i in ids]


def test_optional_variable_tokens_join_the_template():
    e = TemplateEngine()
    ids = _ids(e, ["proxy.example.com:5070 close, 403 bytes sent, 426 bytes received",
                   "proxy.example.com:5070 close, 1190 bytes (1.16 KB) sent, 1671 bytes "
                   "(1.63 KB) received"])
    assert ids[0] == ids[1]


def test_a_word_variable_stays_one_template_in_the_long_run():
    e = TemplateEngine()
    rng = np.random.default_rng(5)
    names = [f"user{chr(97 + k)}{chr(97 + j)}" for k in range(10) for j in range(10)]
    lines = [f"login succeeded for {names[i]} from 10.1.{i}.{j}"
             for i, j in zip(rng.integers(0, 100, 2000), rng.integers(0, 255, 2000))]
    idx = e.template_batch(lines)
    assert e.templates_of(0) == 1
    assert len(set(idx[-1000:].tolist())) == 1


def _both_ways(lines, batch=500):
    """Template ids of the lines with the compiled matcher and with the Python reference."""
    out = []
    for compiled in (True, False):
        e = TemplateEngine()
        e.compiled = compiled
        idx = np.concatenate([e.template_batch(lines[k:k + batch])
                              for k in range(0, len(lines), batch)])
        out.append([e.template_id(i) for i in idx])
    return out


def test_compiled_matcher_agrees_with_the_python_reference_on_loghub():
    from logml.accuracy import load_loghub
    data = Path(__file__).resolve().parents[1] / "data" / "loghub-2k"
    for system in sorted(p for p in data.iterdir() if p.is_dir()):
        compiled, reference = _both_ways(load_loghub(system)[0])
        assert compiled == reference, system.name


WORDS = st.sampled_from(["user", "alice", "bob", "job", "started", "failed", "on", "node-7",
                         "10.0.0.1", "12ms", "KB", "MB", "5", "x=1", "x=on", "()", "(a1)",
                         "<ok>", "GET", "POST", "a.b.c", "true", "false", "bytes", "(1.2",
                         "KB)", "[3]", "id_9x", "é", "=", ":", "--", "/api/users/7",
                         "/api/users/8/cart", "/login", "\"GET", "/s?q=1", "//x"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(WORDS, min_size=1, max_size=8).map(" ".join), min_size=1,
                max_size=120))
def test_compiled_matcher_agrees_with_the_python_reference(lines):
    compiled, reference = _both_ways(lines, batch=40)
    assert compiled == reference


def _requests(n, seed=4):
    """Combined-log-format request lines: six routes, two methods, ids, three agents."""
    rng = np.random.default_rng(seed)
    routes = ["/api/v1/users/{}/cart", "/api/v1/orders/{}", "/api/v1/search?q=item{}",
              "/login", "/static/app.{}.js", "/api/v1/users/{}"]
    agents = ['"curl/8.4.0"', '"python-requests/2.31.0"', '"Go-http-client/1.1"']
    return [f'10.0.{rng.integers(256)}.{rng.integers(256)} - - [25/Nov/2025:00:00:{k % 60:02d} '
            f'+0000] "{("GET", "POST")[k % 2]} {routes[rng.integers(6)].format(rng.integers(99999))} '
            f'HTTP/1.1" {rng.choice([200, 404])} {rng.integers(100, 9000)} "-" '
            f'{agents[rng.integers(3)]}' for k in range(n)]


def test_each_request_route_keeps_a_template_of_its_own():
    """Routes and methods name the event: lines that differ only there never merge, however
    many routes there are (a route's spike must not drown in all of them)."""
    e = TemplateEngine()
    lines = _requests(3000)
    routes = {}  # template -> the (method, route) of its lines
    for line, t in zip(lines, e.template_batch(lines)):
        method, path = line.split('"')[1].split()[:2]
        routes.setdefault(t, set()).add((method, re.sub("[0-9]+", "#", path.split("?")[0])))
    assert all(len(r) == 1 for r in routes.values()), routes
    assert len(set().union(*routes.values())) == 12
    texts = {e.template_text(t) for t in routes}
    for method in ("GET", "POST"):
        for route in ("/api/v1/users/<*>/cart", "/api/v1/orders/<*>", "/api/v1/search?q=<*>",
                      "/login", "/static/<*>", "/api/v1/users/<*>"):
            assert any(f'"{method} {route} HTTP' in t for t in texts), (method, route)
    # with path masking off, paths are ordinary tokens again: variables where they vary
    e = TemplateEngine(TemplateConfig(masks=[m for m in TemplateConfig().masks if m != "path"]))
    e.template_batch(lines)
    assert e.templates_of(0) < 12
    compiled, reference = _both_ways(lines, batch=250)
    assert compiled == reference


def _slugs(n, seed=6):
    """Request lines of a shop: product pages by slug (letters only: a new route each),
    user pages by name, and orders by id."""
    rng = np.random.default_rng(seed)
    words = ["red", "blue", "shoe", "hat", "wool", "linen", "coat", "kids", "sale", "mini"]
    out = []
    for k in range(n):
        slug = "-".join(words[i] for i in rng.integers(0, 10, 3))
        route = [f"/products/{slug}", f"/users/{slug.split('-')[0]}{slug.split('-')[1]}/wishlist",
                 f"/api/v1/orders/{rng.integers(99999)}"][k % 3]
        out.append(f'10.0.0.{k % 250} "GET {route} HTTP/1.1" 200 {rng.integers(100, 9000)}')
    return out


def test_a_route_segment_with_many_values_becomes_a_variable():
    """Slugs and names in a path are not endpoints: once ROUTE_VALUES routes differ in one
    segment, a new one joins the family's template (its first routes keep theirs), so the
    templates stay bounded; a route with few values at each segment stays its own."""
    from logml.template import ROUTE_VALUES
    e = TemplateEngine()
    lines = _slugs(6000)
    texts = [e.template_text(i) for i in e.template_batch(lines)]
    assert len(set(t for t in texts if "/products/" in t)) == ROUTE_VALUES + 1
    assert texts[-3].startswith('<IP> "GET /products/<*> HTTP/<NUM>"'), texts[-3]
    # 100 user names: the first ROUTE_VALUES keep their own templates, the rest share one
    users = [t for t in texts if "/users/" in t]
    assert len(set(users)) == ROUTE_VALUES + 1 and users[-1].count("/users/<*>/wishlist") == 1
    assert {t for t in texts if "/orders/" in t} == {
        '<IP> "GET /api/v1/orders/<*> HTTP/<NUM>" <NUM> <NUM>'}
    compiled, reference = _both_ways(lines[:3000], batch=250)
    assert compiled == reference


def _restarted(lines, cut):
    """Template ids of the lines in one go, and with a save and restore at line cut."""
    whole = TemplateEngine()
    expected = [whole.template_id(i) for i in whole.template_batch(lines)]
    first = TemplateEngine()
    got = [first.template_id(i) for i in first.template_batch(lines[:cut])]
    restored = TemplateEngine.from_state(
        snapshot.loads(snapshot.dumps("templates", first.state()), "templates"))
    got += [restored.template_id(i) for i in restored.template_batch(lines[cut:])]
    return expected, got


def test_a_restored_engine_keeps_its_route_families():
    expected, got = _restarted(_slugs(3000, seed=9), 1500)
    assert got == expected


def test_a_restored_engine_continues_as_if_never_stopped():
    from logml.accuracy import load_loghub
    data = Path(__file__).resolve().parents[1] / "data" / "loghub-2k"
    for system in ("Android", "Linux"):
        expected, got = _restarted(load_loghub(data / system)[0], 1000)
        assert got == expected, system


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(0, 2**20), st.integers(0, 2**64 - 1),
       st.text(max_size=12))
def test_matcher_keys_in_python_equal_the_kernels(service, n, first, text):
    """The Index files buckets with Python twins of the kernels' hashes: they must agree."""
    from logml.matcher import FNV_OFFSET, _fnv, _hash_text, bucket_key, bucket_key_py
    assert bucket_key_py(service, n, first) == bucket_key(service, n, np.uint64(first))
    data = np.frombuffer(text.encode(), dtype=np.uint8)
    assert _hash_text(text) == _fnv(data, 0, len(data), FNV_OFFSET)
