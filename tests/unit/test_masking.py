import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from logml.masking import (ALL_MASKS, MASK_BITS, ROUTES, Masker, mask_flags, mask_reference,
                           pack_lines)

CASES = [
    ("took 12ms to read 3.5MB", "took <NUM> to read <NUM>"),
    ("x=-5 y=+3.2 load 12%", "x=<*> y=<*> load <NUM>"),
    ("from 10.0.0.1:8080 and fe80::1", "from <IP> and <IP>"),
    ("mac 00:1a:2b:3c:4d:5e", "mac <IP>"),
    ("id 123e4567-e89b-12d3-a456-426614174000", "id <UUID>"),
    ("ptr 0x7ffd1a2b and deadbeef01", "ptr <HEX> and <HEX>"),
    ("at 2024-01-31T12:30:01.5Z or 12:30:01 on 31/01/2024", "at <TS> or <TS> on <TS>"),
    ("on Fri Jun 17 07:07:00 2005", "on <TS> <TS> <NUM> <TS> <NUM>"),
    ("open /var/log/app.log and C:\\Windows\\x.dll", "open <PATH> and <PATH>"),
    ("see https://example.com/a?b=1 mail bob@example.com", "see <URL> mail <EMAIL>"),
    ("blk_-1608999687919862906 container_1445_0020_01_000003 node-12",
     "<ID> <ID> <ID>"),
    ("user=alice status=failed uid=1000", "user=alice status=failed uid=<*>"),
    ("rhost=mail.example.org from (host8.topspot.net)", "rhost=<*> from (<NAME>)"),
    ("at org.x.Foo.bar:120 in com.apple.xpc.launchd: v1.2.3 10.0.0.1 e.g. a.b..c",
     "at <NAME> in <NAME>: v1.2.3 <IP> e.g. a.b..c"),
    ("sshd[19939]: (pid 42)", "sshd[<NUM>]: (pid <NUM>)"),
    ("May I help, words stay words", "May I help, words stay words"),
    ('1.2.3.4 "GET /api/v1/users/42/cart HTTP/1.1" 200', '<IP> "GET /api/v1/users/<*>/cart HTTP/<NUM>" <NUM>'),
    ("POST /search?q=item54586&page=2;sort=asc then GET /healthz",
     "POST /search?q=<*>&page=<*>;sort=<*> then GET /healthz"),
    ("PUT /a/3fa85f64-5717-4562-b3fc-2c963f66afa6/v2/oauth2, then /x/1 and GET //h/x",
     "PUT /a/<*>/v2/<*>, then <PATH> and GET <PATH>"),
    ("   spaced\tout \n line  ", "spaced out line"),
    ("", ""),
]


@pytest.mark.parametrize("line,expected", CASES)
def test_kernel_masks_each_class(line, expected):
    assert Masker().mask(line) == expected


@pytest.mark.parametrize("line,expected", CASES)
def test_reference_agrees_on_examples(line, expected):
    assert mask_reference(line) == expected


def test_mask_set_is_configurable():
    only_ip = Masker(mask_flags(["ip"]))
    assert only_ip.mask("10.0.0.1 took 12ms") == "<IP> took 12ms"
    with pytest.raises(ValueError, match="unknown mask"):
        mask_flags(["ip", "phone"])


def test_request_paths_are_masked_whole_without_the_route_rule():
    """Template rules 1 (a state saved before routes) mask a request path as any path."""
    line = '1.2.3.4 "GET /api/v1/users/42/cart HTTP/1.1" 200'
    expected = '<IP> "GET <PATH> HTTP/<NUM>" <NUM>'
    assert Masker(ALL_MASKS).mask(line) == mask_reference(line, ALL_MASKS) == expected


TOKEN_PARTS = st.sampled_from([
    "a", "ab", "x", "Z", "é", "0", "7", "12", "255", "1.5", "0x1f", "ff", "deadbeef", "-", "_",
    ".", ":", "::", "/", "\\", "=", ",", ";", "@", "(", ")", "[", "]", "{", "}", "\"", "'",
    "%", "+", "ms", "MB", "T", "Z", "Jun", "Fri", "blk", "http://", "~/", "C:\\", "&", "!",
    "com.", "$", "a.b.c", "x.y", "..", "GET", "POST", "?", "v1", "V12", "/api",
])
TOKENS = st.lists(TOKEN_PARTS, min_size=1, max_size=6).map("".join)
LINES = st.lists(TOKENS, max_size=8).map(" ".join)


@settings(max_examples=1500, deadline=None)
@given(LINES, st.sampled_from([ALL_MASKS | ROUTES, ALL_MASKS, 0, MASK_BITS["number"] | MASK_BITS["hex"],
                               ALL_MASKS ^ MASK_BITS["kv"], ALL_MASKS ^ MASK_BITS["number"]]))
def test_kernel_matches_reference(line, flags):
    assert Masker(flags).mask(line) == mask_reference(line, flags)


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(["GET", "\"POST", "(HEAD", "get", "GETS"]), TOKENS, LINES,
       st.sampled_from([ALL_MASKS | ROUTES, ALL_MASKS, (ALL_MASKS ^ MASK_BITS["path"]) | ROUTES,
                        MASK_BITS["path"] | ROUTES]))
def test_kernel_matches_reference_on_request_paths(method, path, rest, flags):
    """A path after a request method is masked by its route (ROUTES; without it, whole): the
    two implementations agree on any path, query and trailing punctuation."""
    line = f"{method} /{path} {rest}"
    assert Masker(flags).mask(line) == mask_reference(line, flags)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_characters="\x00"), max_size=40), min_size=1,
                max_size=20))
def test_batch_hash_equals_hash_of_masked_text(lines):
    m = Masker()
    buf, starts, ends = pack_lines(lines)
    hashes, _ = m.hashes(buf, starts, ends, np.zeros(len(lines), dtype=np.uint64))
    by_text = {}
    for line, h in zip(lines, hashes):
        # same masked form <=> same shape hash
        by_text.setdefault(m.mask(line), set()).add(int(h))
    assert all(len(v) == 1 for v in by_text.values())
    assert len({next(iter(v)) for v in by_text.values()}) == len(by_text)


def test_pack_lines_handles_nul_and_unicode():
    lines = ["a", "é\x00b", "", "z"]
    buf, starts, ends = pack_lines(lines)
    assert [buf[s:e].tobytes().decode() for s, e in zip(starts, ends)] == lines


def test_large_batch_split_over_threads_gives_the_same_hashes():
    import numba

    from logml.masking import _DW_BYTES, _PH_BYTES, _PH_LEN, PARALLEL_MIN_LINES, shape_hashes
    lines = [f"user u{k % 97} took {k}ms on node-{k % 13}" for k in range(3 * PARALLEL_MIN_LINES)]
    buf, starts, ends = pack_lines(lines)
    seeds = np.arange(len(lines), dtype=np.uint64)
    whole = shape_hashes(buf, starts, ends, seeds, ALL_MASKS, _PH_BYTES, _PH_LEN, _DW_BYTES)
    threads = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        split = Masker().shapes(buf, starts, ends, seeds)
    finally:
        numba.set_num_threads(threads)
    assert all(np.array_equal(a, b) for a, b in zip(whole, split))  # masked forms too


@settings(max_examples=300, deadline=None)
@given(st.lists(LINES, min_size=1, max_size=12))
def test_batch_keeps_each_lines_masked_form(lines):
    """The masked forms the shape pass keeps for a batch (the matcher tokenises them) are
    the reference's, line by line."""
    buf, starts, ends = pack_lines(lines)
    _, _, masked, mends = Masker().shapes(buf, starts, ends, np.zeros(len(lines), np.uint64))
    cuts = np.concatenate(([0], mends))
    got = [masked[a:b].tobytes().decode() for a, b in zip(cuts[:-1], cuts[1:])]
    assert got == [mask_reference(line) for line in lines]
