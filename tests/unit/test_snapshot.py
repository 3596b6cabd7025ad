"""The state format (logml/snapshot.py, docs/state-format.md): plain data in and out, no
code run from a file, every damaged or hostile file refused with one SnapshotError line;
template state that continues exactly where it stopped; state separate from config."""
import dataclasses
import functools
import json
import logging
import math
import os
import pickle
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from logml import countmodel as cm, shortfall
from logml import snapshot
from logml.config import Config, TemplateConfig
from logml.generate import generate
from logml.pipeline import STATE_KIND, Pipeline
from logml.sinks.jsonl import JsonlSink
from logml.template import TemplateEngine

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


# ---------------------------------------------------------------- inputs
def loghub_like(n: int, seed: int) -> list[tuple[str, str]]:
    """(service, message) lines in the style of Loghub's HDFS, OpenSSH, Spark and Apache
    logs, with words (user names, verbs) that make Drain generalise templates and first
    tokens that vary, so small max_children sends tokens to wildcard branches."""
    rng = np.random.default_rng(seed)
    users = ["root", "admin", "oracle", "guest", "postgres", "ubuntu", "test", "ftp"]
    verbs = ["Opened", "Closed", "Reset", "Refused", "Dropped", "Accepted", "Timed"]
    hosts = ["worker", "master", "edge", "gateway"]

    def ip():
        return ".".join(str(x) for x in rng.integers(1, 255, 4))

    def num():
        return str(int(rng.integers(0, 100000)))

    families = {
        "hdfs": [lambda: f"Receiving block blk_{num()} src: /{ip()}:{num()} dest: /{ip()}:50010",
                 lambda: f"PacketResponder {num()} for block blk_{num()} terminating",
                 lambda: f"BLOCK* NameSystem.addStoredBlock: blockMap updated: {ip()}:50010 "
                         f"is added to blk_{num()} size {num()}",
                 lambda: f"Verification succeeded for blk_{num()}"],
        "sshd": [lambda: f"Failed password for {rng.choice(users)} from {ip()} port {num()} ssh2",
                 lambda: f"Accepted publickey for {rng.choice(users)} from {ip()} port {num()}",
                 lambda: f"pam_unix(sshd:session): session opened for user {rng.choice(users)}",
                 lambda: f"{rng.choice(verbs)} connection from {ip()} on {rng.choice(hosts)}",
                 lambda: f"Invalid user {rng.choice(users)} from {ip()}"],
        "spark": [lambda: f"Starting task {num()}.0 in stage {num()}.0 (TID {num()}, "
                          f"{rng.choice(hosts)}, partition {num()}, PROCESS_LOCAL)",
                  lambda: f"Finished task {num()}.0 in stage {num()}.0 in {num()} ms on "
                          f"{rng.choice(hosts)}",
                  lambda: f"{rng.choice(verbs)} block broadcast_{num()} on {rng.choice(hosts)}",
                  lambda: f"Running task {num()}.0 in stage {num()}.0"],
        "apache": [lambda: f"jk2_init() Found child {num()} in scoreboard slot {num()}",
                   lambda: f"[client {ip()}] Directory index forbidden by rule: /var/www/"
                           f"{rng.choice(users)}/",
                   lambda: f"{rng.choice(verbs)} {rng.choice(users)} {rng.choice(hosts)} "
                           f"{rng.choice(verbs)}",
                   lambda: " ".join(rng.choice(users + verbs + hosts, int(rng.integers(1, 9))))],
    }
    names = list(families)
    out = []
    for _ in range(n):
        svc = names[int(rng.integers(len(names)))]
        fam = families[svc]
        out.append((svc, fam[int(rng.integers(len(fam)))]()))
    return out


def generated(seed: int) -> list[tuple[str, str]]:
    """(service, message) of logml's own multi-service scenario generator."""
    events, _ = generate(seed, hours=0.2, services=4, start=1_764_000_000.0, rate=6.0)
    out = []
    for e in events:
        d = orjson.loads(e)
        out.append((d["service"]["name"], d["message"]))
    return out


def run(engine: TemplateEngine, lines, batch: int = 500) -> list[str]:
    ids = []
    for k in range(0, len(lines), batch):
        part = lines[k:k + batch]
        svc = np.array([engine.service(s) for s, _ in part], dtype=np.int32)
        ids += [engine.template_id(i) for i in engine.template_batch([m for _, m in part], svc)]
    return ids


def engine_view(e: TemplateEngine) -> dict:
    """Everything templating depends on, as comparable data."""
    n = len(e.templates)
    return {"services": [s.name for s in e.services],
            "clusters": [[(c.tokens, c.template, c.alive) for c in s.clusters]
                         for s in e.services],
            "candidates": [(s.by_len, s.by_first, s.by_word, s.groups, s.alive)
                           for s in e.services],
            "overflow": [s.overflow for s in e.services],
            # NaN (a first open window not known) compares equal to itself here
            "templates": [tuple(None if x != x else x for x in dataclasses.astuple(t))
                          for t in e.templates],
            "lines": e._lines[:n].tolist(), "final": e._final[:n].tolist(),
            "lines_seen": e.lines_seen}


def plain(node) -> bool:
    """PLAN contract 1: only plain data."""
    if isinstance(node, dict):
        return all(type(k) is str and plain(v) for k, v in node.items())
    if isinstance(node, list):
        return all(plain(v) for v in node)
    if isinstance(node, np.ndarray):
        return node.dtype.kind in "biuf"
    return node is None or type(node) in (str, int, float, bool)


# ---------------------------------------------------------------- the codec
def test_every_kind_of_plain_data_round_trips():
    tree = {"ints": [0, -1, 2**63 - 1, -2**63, 2**64 - 1], "big": 10**30,
            "floats": [0.1, -0.0, 1e308, 5e-324, math.inf, -math.inf],
            "nan": math.nan, "misc": [None, True, False, "", "é ✓ \u2028", "bad \udcff name"],
            "nested": {"a": {"b": [[], {}, [{"c": 1}]]}},
            "tag_like": {"__nd__": 3}, "tag_like2": {"__dict__": {"__float__": "x"}},
            "arrays": {name: np.arange(6).astype(name).reshape(2, 3) for name in snapshot.DTYPES},
            "scalar": np.array(2.5), "empty": np.zeros((0, 7), dtype=np.int16),
            "big_endian": np.arange(5, dtype=">f8"), "fortran": np.asfortranarray(
                np.arange(12.0).reshape(3, 4)), "strided": np.arange(10)[::3],
            "nan_array": np.array([np.nan, np.inf, -np.inf, 1.0])}
    for compress in (True, False):
        back = snapshot.loads(snapshot.dumps("k", tree, compress), "k")
        assert back.keys() == tree.keys()
        assert back["ints"] == tree["ints"] and back["big"] == tree["big"]
        assert back["floats"] == tree["floats"] and math.isnan(back["nan"])
        assert math.copysign(1, back["floats"][1]) == -1.0
        assert back["misc"] == tree["misc"] and back["nested"] == tree["nested"]
        assert back["tag_like"] == tree["tag_like"] and back["tag_like2"] == tree["tag_like2"]
        for name, a in tree["arrays"].items():
            b = back["arrays"][name]
            assert b.dtype == a.dtype and b.shape == a.shape and (a == b).all()
        for k in ("scalar", "empty", "big_endian", "fortran", "strided"):
            assert back[k].shape == tree[k].shape and (back[k] == tree[k]).all()
            assert back[k].flags.writeable and back[k].flags.c_contiguous
        assert back["big_endian"].dtype == np.float64
        np.testing.assert_array_equal(back["nan_array"], tree["nan_array"])


def test_tuples_and_numpy_scalars_become_plain_values():
    back = snapshot.loads(snapshot.dumps("k", {"t": (1, (2, 3)), "f": np.float32(0.5),
                                               "i": np.int64(-3), "b": np.bool_(True)}), "k")
    assert back == {"t": [1, [2, 3]], "f": 0.5, "i": -3, "b": True}
    assert type(back["i"]) is int and type(back["b"]) is bool


@pytest.mark.parametrize("tree,words", [
    ({1.5: "x"}, "key 1.5"),
    ({"a": {(1, 2): 0}}, "at /a"),
    ({"a": [object()]}, "object at /a/0"),
    ({"s": np.array(["text"])}, "dtype <U4"),
    ({"o": np.array([None], dtype=object)}, "dtype object"),
    ({"c": np.zeros(2, dtype=np.complex64)}, "complex64"),
    ({"d": np.array(["2020-01-01"], dtype="datetime64[D]")}, "datetime64"),
])
def test_anything_but_plain_data_is_refused_with_its_path(tree, words):
    with pytest.raises(snapshot.SnapshotError, match="state") as e:
        snapshot.dumps("k", tree)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_deep_trees_are_refused_on_write():
    tree = []
    for _ in range(snapshot.MAX_DEPTH + 5):
        tree = [tree]
    with pytest.raises(snapshot.SnapshotError, match="deeper"):
        snapshot.dumps("k", tree)


def test_layout_is_magic_header_segments_and_checksum():
    noise = np.random.default_rng(0).random(20_000)  # does not compress: stored raw
    data = snapshot.dumps("pipeline", {"a": np.arange(3, dtype=np.int32), "z": np.zeros(10**4),
                                       "noise": noise, "names": ["x"] * 1000})
    assert data.startswith(snapshot.MAGIC)
    end = data.index(b"\n", len(snapshot.MAGIC))
    header = json.loads(data[len(snapshot.MAGIC):end])
    assert header["format"] == snapshot.FORMAT_VERSION == 7 and header["kind"] == "pipeline"
    a, z, n = header["arrays"]
    assert a == {"path": "/a", "dtype": "int32", "shape": [3], "nbytes": 12,
                 "compression": "none", "stored_bytes": 12}
    assert z["compression"] == "zlib" and z["stored_bytes"] < z["nbytes"] / 100
    assert n["compression"] == "none" and header["tree"]["compression"] == "zlib"
    body = data[end + 1:-16]
    assert len(body) == header["body_bytes"] == sum(
        e["stored_bytes"] for e in [header["tree"], a, z, n])
    tree = json.loads(zlib.decompress(body[:header["tree"]["stored_bytes"]]))
    assert tree == {"a": {"__nd__": 0}, "z": {"__nd__": 1}, "noise": {"__nd__": 2},
                    "names": ["x"] * 1000}
    at = header["tree"]["stored_bytes"]
    assert body[at:at + 12] == np.arange(3, dtype="<i4").tobytes()
    assert body[-n["nbytes"]:] == noise.astype("<f8").tobytes()
    assert data[-16:] == b"\ncrc32:%08x\n" % zlib.crc32(data[:-16])
    raw = snapshot.dumps("pipeline", {"z": np.zeros(10**4)}, compress=False)
    assert header_of(raw)[0]["arrays"][0]["compression"] == "none"


# ---------------------------------------------------------------- refusals
def header_of(data: bytes) -> tuple[dict, bytes]:
    end = data.index(b"\n", len(snapshot.MAGIC))
    return json.loads(data[len(snapshot.MAGIC):end]), data[end + 1:-16]


def assemble(header: dict, body: bytes) -> bytes:
    """A file with a valid checksum around any header and body: what someone who can
    write to the state topic could produce."""
    head = snapshot.MAGIC + json.dumps(header, separators=(",", ":")).encode() + b"\n"
    return head + body + b"\ncrc32:%08x\n" % zlib.crc32(head + body)


def craft(tree_json: bytes, arrays=(), array_bytes=b"", **header) -> bytes:
    body = tree_json + array_bytes
    h = {"format": 2, "kind": "k", "body_bytes": len(body),
         "tree": {"nbytes": len(tree_json), "compression": "none",
                  "stored_bytes": len(tree_json)}, "arrays": list(arrays)}
    return assemble({**h, **header}, body)


def refused(data: bytes, kind: str = "k", match: str | None = None, **kw) -> str:
    with pytest.raises(snapshot.SnapshotError, match=match) as e:
        snapshot.loads(data, kind, **kw)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("state")
    return msg


def test_newer_and_unknown_formats_are_refused_with_the_numbers():
    data = snapshot.dumps("k", {"a": 1})
    h, body = header_of(data)
    newer = snapshot.FORMAT_VERSION + 1
    msg = refused(assemble({**h, "format": newer}, body))
    assert msg == (f"state was written by format {newer}; this logml reads up to "
                   f"{snapshot.FORMAT_VERSION}: upgrade logml or delete the state")
    refused(assemble({**h, "format": 0}, body), match="unknown format 0")
    refused(assemble({**h, "format": "2"}, body), match="no format number")
    refused(assemble({k: v for k, v in h.items() if k != "format"}, body),
            match="no format number")


def test_format_1_is_refused_unread(tmp_path):
    # format 1 as the previous logml wrote it: magic, header line, zlib of a pickle
    old = snapshot.MAGIC + b'{"format":1,"kind":"pipeline"}\n' + zlib.compress(
        pickle.dumps({"templates": {}}))
    path = tmp_path / "old.state"
    path.write_bytes(old)
    with pytest.raises(snapshot.SnapshotError) as e:
        snapshot.read(path, "pipeline")
    assert str(e.value).startswith(f"state file {path} was written by format 1")
    assert "cannot be read safely: delete it" in str(e.value)


def test_kind_and_magic_are_checked(tmp_path):
    refused(b"not a snapshot", match="bad magic")
    refused(b"", match="bad magic")
    refused(snapshot.dumps("templates", {}), "pipeline", match="holds 'templates', expected "
                                                              "'pipeline'")
    with pytest.raises(snapshot.SnapshotError, match="not found"):
        snapshot.read(tmp_path / "missing", "k")


def test_truncation_trailing_bytes_and_bit_flips_are_caught():
    data = snapshot.dumps("k", {"a": np.arange(1000.0), "b": "x" * 100})
    refused(data[:-1], match="truncated")
    refused(data[:len(data) // 2], match="truncated")
    refused(data + b"\0", match="unexpected bytes")
    for pos in range(len(snapshot.MAGIC), len(data), 7):
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        with pytest.raises(snapshot.SnapshotError):
            snapshot.loads(bytes(flipped), "k")


@pytest.mark.parametrize("entry,words", [
    ({"dtype": "object"}, "dtype 'object'"),
    ({"dtype": "<f8"}, "dtype '<f8'"),
    ({"dtype": ["float64"]}, "dtype"),
    ({"shape": [2**40, 2**40]}, "shape"),
    ({"shape": [10**9]}, "not 24 bytes"),
    ({"shape": [-3]}, "shape"),
    ({"shape": [1] * 40}, "shape"),
    ({"shape": "3"}, "shape"),
    ({"nbytes": 2**31, "shape": [2**28], "stored_bytes": 2**31}, "add up"),
    ({"nbytes": 2**32, "shape": [2**29], "compression": "zlib"}, "claims more than"),
    ({"nbytes": 2**40, "shape": [2**30, 2**7], "compression": "zlib"}, "sizes"),
    ({"stored_bytes": 25}, "stored raw but its sizes differ"),
    ({"stored_bytes": 10**12}, "sizes"),
    ({"stored_bytes": -8}, "sizes"),
    ({"nbytes": 24.0}, "sizes"),
    ({"compression": "lzma"}, "unknown compression 'lzma'"),
    ({"compression": "zlib"}, "not a valid zlib stream"),
    ({"compression": "zlib", "stored_bytes": 0}, "empty zlib"),
])
def test_hostile_array_tables_are_refused_before_allocating(entry, words):
    tree = b'{"a":{"__nd__":0}}'
    good = {"path": "/a", "dtype": "float64", "shape": [3], "nbytes": 24,
            "compression": "none", "stored_bytes": 24}
    data = craft(tree, [good], np.arange(3.0).tobytes())
    assert snapshot.loads(data, "k")["a"].tolist() == [0.0, 1.0, 2.0]
    tracemalloc.start()
    try:
        refused(craft(tree, [{**good, **entry}], np.arange(3.0).tobytes()),
                match=words.replace("[", r"\[").replace("(", r"\("))
        assert tracemalloc.get_traced_memory()[1] < 1 << 20
    finally:
        tracemalloc.stop()


def test_an_array_is_referenced_once_so_a_tree_cannot_multiply_it():
    entry = {"path": "/a", "dtype": "float64", "shape": [3], "nbytes": 24,
             "compression": "none", "stored_bytes": 24}
    refused(craft(b'[{"__nd__":0},{"__nd__":0}]', [entry], np.arange(3.0).tobytes()),
            match="array reference 0")


def test_a_smaller_limit_refuses_larger_states_unread(tmp_path):
    data = snapshot.dumps("k", {"a": np.zeros(10**6)})
    assert snapshot.loads(data, "k", limit=9 * 10**6)["a"].shape == (10**6,)
    refused(data, limit=10**6, match="claims more than 1000000 bytes")
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(snapshot.MAX_HEADER_BYTES + 2000)  # sparse: no disk used
    with pytest.raises(snapshot.SnapshotError, match="larger .* than any state it reads"):
        snapshot.read(big, "k", limit=1000)


@pytest.mark.parametrize("tree_json,words", [
    (b'{"a":{"__nd__":1}}', "array reference"),
    (b'{"a":{"__nd__":-1}}', "array reference"),
    (b'{"a":{"__nd__":"0"}}', "array reference"),
    (b'{"a":{"__float__":"1e400"}}', "float"),
    (b'{"a":{"__float__":["nan"]}}', "float"),
    (b'{"a":{"__dict__":[1]}}', "__dict__"),
    (b'{"a":NaN}', "corrupt"),
    (b'{"a":1', "corrupt"),
    (b'[' * 100 + b']' * 100, "deeper"),
    (b'{"a":' * 50_000 + b'1' + b'}' * 50_000, "corrupt"),
    (b'[' * 10**6, "corrupt"),
    (b'"\xff\xfe"', "corrupt"),
])
def test_hostile_trees_are_refused(tree_json, words):
    refused(craft(tree_json), match=words)


def test_hostile_sizes_and_compression_claims_are_refused():
    data = snapshot.dumps("k", {"a": np.zeros(10**6), "names": ["x"] * 1000})  # ~1000:1
    h, body = header_of(data)
    a = h["arrays"][0]
    assert a["compression"] == h["tree"]["compression"] == "zlib"

    def with_array(**edit):
        return assemble({**h, "arrays": [{**a, **edit}]}, body)
    refused(with_array(nbytes=a["nbytes"] - 8, shape=[10**6 - 1]), match="beyond its size")
    refused(with_array(nbytes=a["nbytes"] + 8, shape=[10**6 + 1]), match="recorded size")
    refused(with_array(compression="none"), match="stored raw but its sizes differ")
    refused(assemble({**h, "body_bytes": h["body_bytes"] + 1}, body), match="truncated")
    refused(assemble({**h, "body_bytes": 2**63}, body), match="body_bytes")
    refused(assemble({**h, "body_bytes": -1}, body), match="body_bytes")
    refused(assemble({**h, "tree": {**h["tree"], "nbytes": h["tree"]["nbytes"] + 1}}, body),
            match="recorded size")
    refused(assemble({**h, "tree": None}, body), match="tree is not an object")
    refused(assemble({**h, "arrays": {"a": 1}}, body), match="arrays")
    refused(assemble([h], body), match="not a JSON object")


# ---------------------------------------------------------------- no code from a file
class Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def evil_files(marker: Path) -> dict[str, bytes]:
    payload = pickle.dumps({"templates": Evil(marker)})
    h, _ = header_of(snapshot.dumps("pipeline", {}))
    packed = zlib.compress(payload)
    return {
        "raw pickle": payload,
        "format 1": snapshot.MAGIC + b'{"format":1,"kind":"pipeline"}\n' + packed,
        "format 2 header, pickle tree": assemble(
            {**h, "body_bytes": len(payload), "tree": {
                "nbytes": len(payload), "compression": "none", "stored_bytes": len(payload)}},
            payload),
        "format 2 header, zlib pickle tree": assemble(
            {**h, "body_bytes": len(packed), "tree": {
                "nbytes": len(payload), "compression": "zlib", "stored_bytes": len(packed)}},
            packed),
    }


def test_a_crafted_pickle_runs_nothing(tmp_path):
    marker = tmp_path / "owned"
    # the payload is live: unpickling it does run the command
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(Evil(control)))
    assert control.exists()
    for what, data in evil_files(marker).items():
        path = tmp_path / "evil.state"
        path.write_bytes(data)
        with pytest.raises(snapshot.SnapshotError) as e:
            Pipeline(Config(), JsonlSink(tmp_path / "out")).load(path)
        assert "\n" not in str(e.value), what
        assert not marker.exists(), what
    p = subprocess.run([sys.executable, "-m", "logml.snapshot", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stderr.startswith("logml: error: ")
    assert not marker.exists()


# ---------------------------------------------------------------- fuzz
@functools.cache
def real_states() -> dict[str, bytes]:
    """Real template states (compressed and not) and a baseline-like tree of arrays."""
    engine = TemplateEngine()
    run(engine, loghub_like(1500, seed=5) + generated(6)[:1500])
    baselines = {"mean": np.linspace(0, 1, 300), "var": np.full(300, np.nan),
                 "seen": np.arange(300, dtype=np.int64), "alive": np.ones(300, dtype=bool),
                 "w": 60.0, "incident": {"api": [1.0, math.inf]}}
    return {"templates": snapshot.dumps("templates", engine.state()),
            "templates_raw": snapshot.dumps("templates", engine.state(), compress=False),
            "baselines": snapshot.dumps("templates", {"detector": baselines}),
            "baselines_raw": snapshot.dumps("templates", {"detector": baselines}, False)}


def load_fully(data: bytes):
    """What a restore does: decode, then rebuild the engine when it is a template state."""
    tree = snapshot.loads(data, "templates")
    if isinstance(tree, dict) and "clusters" in tree:
        TemplateEngine.from_state(tree)
    return tree


def only_snapshot_errors(data: bytes, limit: int) -> None:
    tracemalloc.start()
    try:
        load_fully(data)
    except snapshot.SnapshotError as e:
        assert "\n" not in str(e)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < limit, peak


FUZZ = settings(max_examples=150, deadline=5000, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=2000))
def test_fuzz_random_bytes(data):
    only_snapshot_errors(data, 1 << 20)
    only_snapshot_errors(snapshot.MAGIC + data, 1 << 20)


def mutate(data: bytes, draw) -> bytes:
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite"]))
        pos = draw(st.integers(0, max(len(b) - 1, 0)))
        if op == "flip" and b:
            b[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del b[pos:]
        elif op == "insert":
            b[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del b[pos:pos + draw(st.integers(1, 16))]
        else:
            chunk = draw(st.binary(min_size=1, max_size=16))
            b[pos:pos + len(chunk)] = chunk
    return bytes(b)


STATES = st.sampled_from(["templates", "templates_raw", "baselines", "baselines_raw"])


@FUZZ
@given(which=STATES, data=st.data())
def test_fuzz_mutations_of_a_real_state(which, data):
    original = real_states()[which]
    only_snapshot_errors(mutate(original, data.draw), 8 * len(original) + (8 << 20))


@FUZZ
@given(which=STATES, data=st.data())
def test_fuzz_mutations_behind_a_valid_checksum(which, data):
    """Header and body edits resealed with a correct CRC, so they reach the validation
    (what a hostile producer could write)."""
    original = real_states()[which]
    h, body = header_of(original)
    draw = data.draw
    hostile = st.one_of(st.integers(-2**70, 2**70), st.sampled_from(
        [0, 1, -1, 2**31, 2**63, 2**64, None, "", "float64", "object", "zlib", "none"]),
        st.lists(st.integers(-1, 2**40), max_size=40))
    for _ in range(draw(st.integers(0, 3))):
        arrays = h["arrays"]
        if isinstance(arrays, list) and arrays and isinstance(arrays[0], dict) \
                and draw(st.booleans()):
            entry = arrays[draw(st.integers(0, len(arrays) - 1))]
            entry[draw(st.sampled_from(["dtype", "shape", "nbytes", "compression",
                                        "stored_bytes"]))] = draw(hostile)
        elif isinstance(h.get("tree"), dict) and draw(st.booleans()):
            h["tree"][draw(st.sampled_from(["nbytes", "compression", "stored_bytes"]))] = \
                draw(hostile)
        else:
            h[draw(st.sampled_from(["body_bytes", "tree", "arrays", "format", "kind"]))] = \
                draw(hostile)
    if draw(st.booleans()):
        body = mutate(body, draw)  # edits inside the tree JSON and the array bytes
        if draw(st.booleans()):
            h["body_bytes"] = len(body)
    only_snapshot_errors(assemble(h, body), 8 * len(original) + (8 << 20))


@FUZZ
@given(st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4)
    | st.builds(np.array, st.lists(st.integers(-2**31, 2**31 - 1), max_size=6)),
    max_leaves=30))
def test_fuzz_any_plain_tree_round_trips(tree):
    back = snapshot.loads(snapshot.dumps("k", tree), "k")
    assert orjson.dumps(normal(back)) == orjson.dumps(normal(tree))


def normal(node):
    """Comparable form: arrays as (dtype, list), floats as their repr (nan == nan)."""
    if isinstance(node, dict):
        return {k: normal(v) for k, v in node.items()}
    if isinstance(node, list):
        return [normal(v) for v in node]
    if isinstance(node, np.ndarray) and node.dtype.kind == "f":
        return [str(node.dtype), list(node.shape), [repr(x) for x in node.ravel().tolist()]]
    if isinstance(node, np.ndarray):
        return [str(node.dtype), node.tolist()]
    if isinstance(node, float):
        return repr(node)
    if isinstance(node, str):
        return node.encode("utf-8", "surrogatepass").hex()
    return node


# ---------------------------------------------------------------- files
def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "s" / "state"
    snapshot.write(path, "k", {"v": 1})
    with pytest.raises(snapshot.SnapshotError, match="object at /v"):
        snapshot.write(path, "k", {"v": object()})
    assert snapshot.read(path, "k") == {"v": 1}
    assert os.listdir(path.parent) == ["state"]
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(snapshot.SnapshotError, match="cannot write state file"):
        snapshot.write(blocker / "state", "k", {"v": 1})


def test_inspect_prints_the_header(tmp_path):
    path = tmp_path / "state"
    snapshot.write(path, "pipeline", {"detector": {"mean": np.zeros(4)}, "n": 3})
    p = subprocess.run([sys.executable, "-m", "logml.snapshot", str(path), "--tree"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    header = json.loads(p.stdout[:p.stdout.index("\n}\n") + 2])
    assert header["kind"] == "pipeline" and header["arrays"][0]["path"] == "/detector/mean"
    assert "checksum ok" in p.stdout and "mean: float64[4]" in p.stdout
    path.write_bytes(path.read_bytes()[:-3])
    p = subprocess.run([sys.executable, "-m", "logml.snapshot", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "truncated" in p.stderr


# ---------------------------------------------------------------- template state
CONFIGS = {"default": TemplateConfig(),
           "loose similarity": TemplateConfig(similarity=0.5),
           "template cap": TemplateConfig(max_templates_per_service=12),
           "small cache": TemplateConfig(shape_cache_entries=50)}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
@pytest.mark.parametrize("source", ["loghub-like", "generated"])
def test_a_restart_mid_stream_changes_no_template(config, source):
    lines = loghub_like(6000, seed=11) if source == "loghub-like" else generated(12)
    whole = TemplateEngine(config)
    ids_whole = run(whole, lines)
    assert len(set(ids_whole)) > 10
    for cut in (len(lines) // 3, len(lines) // 2 + 7):
        # the same batches without a restart (Drain's cluster sizes count the cache misses,
        # which depend on where batches start)
        steady = TemplateEngine(config)
        run(steady, lines[:cut])
        run(steady, lines[cut:])
        first = TemplateEngine(config)
        ids = run(first, lines[:cut])
        state = first.state()
        assert plain(state)
        second = TemplateEngine.from_state(
            snapshot.loads(snapshot.dumps("templates", state), "templates"), config)
        assert engine_view(second) == engine_view(first)
        ids += run(second, lines[cut:])
        assert ids == ids_whole
        assert engine_view(second) == engine_view(steady)
        assert [second.template_text(i) for i in range(len(second.templates))] == \
            [whole.template_text(i) for i in range(len(whole.templates))]


def test_restored_config_comes_from_the_caller_not_the_state():
    lines = loghub_like(2000, seed=3)
    e = TemplateEngine(TemplateConfig(similarity=0.9))
    run(e, lines)
    state = e.state()
    assert "similarity" not in json.dumps(snapshot.loads(snapshot.dumps("t", state), "t"),
                                          default=str)
    loose = TemplateEngine.from_state(state, TemplateConfig(similarity=0.3))
    assert loose.config.similarity == 0.3
    assert [t.template_id for t in loose.templates] == [t.template_id for t in e.templates]
    assert len(loose.cache) == len(e.cache)
    # a line one word off a young template (one line so far) joins it under the looser
    # similarity and makes a new template under the saved, stricter one
    young = next(i for i, t in enumerate(e.templates) if e._lines[i] == 1
                 and 6 <= len(e.template_text(i).split()) <= 9
                 and "<" not in e.template_text(i).split()[2])
    words = e.template_text(young).split()
    probe = " ".join(words[:2] + ["zzz"] + words[3:])
    svc = e.service_name(young)
    strict = TemplateEngine.from_state(state, TemplateConfig(similarity=0.9))
    assert run(strict, [(svc, probe)])[0] not in {t.template_id for t in e.templates}
    assert run(loose, [(svc, probe)])[0] == e.template_id(young)


def test_changed_masks_reset_the_cache_but_keep_the_templates():
    e = TemplateEngine()
    run(e, loghub_like(1000, seed=4))
    fewer = TemplateConfig(masks=[m for m in TemplateConfig().masks if m != "ip"])
    r = TemplateEngine.from_state(e.state(), fewer)
    assert len(r.cache) == 0 and len(e.cache) > 0
    assert [t.template_id for t in r.templates] == [t.template_id for t in e.templates]
    same = TemplateEngine.from_state(e.state(), TemplateConfig())
    assert len(same.cache) == len(e.cache)


def test_a_lower_cache_bound_drops_the_cache_only():
    e = TemplateEngine()
    run(e, loghub_like(1000, seed=4))
    r = TemplateEngine.from_state(e.state(), TemplateConfig(shape_cache_entries=5))
    assert len(r.cache) == 0 and len(r.templates) == len(e.templates)


@pytest.mark.parametrize("edit,words", [
    (lambda s: s["clusters"].update(alive=s["clusters"]["alive"][:-1]), "columns differ"),
    (lambda s: s["templates"]["service"].__setitem__(0, 99), "out of range"),
    (lambda s: s["templates"]["cluster"].__setitem__(1, s["templates"]["cluster"][0]),
     "two templates"),
    (lambda s: s["templates"]["id"].__setitem__(1, s["templates"]["id"][0]), "not unique"),
    (lambda s: s["clusters"]["template"].__setitem__(0, 10**6), "out of range"),
    (lambda s: s["clusters"].update(text=s["clusters"]["text"][:-1] + [7]), "strings"),
    (lambda s: s["clusters"].update(service=s["clusters"]["service"].astype(float)),
     "integer arrays"),
    (lambda s: s.update(services=["a", "a", "b", "c"]), "distinct"),
    (lambda s: s.update(lines_seen=-1), "lines_seen"),
    (lambda s: s["cache"]["values"].__setitem__(0, 10**6), "cache"),
    (lambda s: s["cache"].update(keys=s["cache"]["keys"] - np.uint64(1)), "shape cache"),
    (lambda s: s.pop("clusters"), "KeyError"),
    (lambda s: s.update(templates=[1, 2]), "TypeError"),
])
def test_malformed_template_states_are_refused(edit, words):
    e = TemplateEngine()
    run(e, loghub_like(300, seed=8))
    state = e.state()
    edit(state)
    with pytest.raises(snapshot.SnapshotError, match="templates state is malformed") as err:
        TemplateEngine.from_state(state)
    assert words in str(err.value)


# ---------------------------------------------------------------- the fixture
@pytest.mark.parametrize("fmt", [2, 3, 4, 5, 6, 7])
def test_the_format_fixtures_still_load_and_continue(fmt):
    """tests/fixtures/state-vN.logmlstate was written by format N from the template stage
    on state-v2.input.tsv (see make_state.py); it must load as long as format N is read
    (changing what a stage saves means a new format and a migration, docs/state-format.md)."""
    path = FIXTURES / f"state-v{fmt}.logmlstate"
    lines = [tuple(r.split("\t", 1)) for r in
             (FIXTURES / "state-v2.input.tsv").read_text().splitlines()]
    header, _ = header_of(path.read_bytes())
    assert header["format"] == fmt and header["kind"] == "templates"
    assert {a["path"] for a in header["arrays"]} >= {"/templates/id", "/cache/keys"}
    state = snapshot.read(path, "templates")
    assert plain(state)
    assert state["services"] == list(dict.fromkeys(s for s, _ in lines))
    assert state["lines_seen"] == len(lines)
    engine = TemplateEngine.from_state(state)
    n = len(engine.templates)
    assert n >= 20 and len(engine.cache) > 0
    # format 6 saves the rules its templates were made under; older ones made them under
    # rules 1 (request paths masked whole) and keep those rules, so no template changes
    assert state["rules"] == engine.rules == (2 if fmt >= 6 else 1)
    routes = {engine.template_text(k) for k in range(n) if "GET" in engine.template_text(k)}
    assert routes and all(("GET <PATH>" in t) == (fmt < 6) for t in routes), routes
    # every template was born at a line of its own service, and that line still maps to it
    # (or to the template it was merged into)
    for k, t in enumerate(engine.templates):
        svc, message = lines[t.first_seen_line]
        assert engine.services[t.service].name == svc
        idx = engine.template_batch([message], engine.service(svc))[0]
        assert engine.templates[idx].template_id == engine.successor(t.template_id)
    # the whole input again: every line answered by a saved template, none created
    ids = run(engine, lines)
    assert len(engine.templates) == n and set(ids) <= {t.template_id for t in engine.templates}


@pytest.mark.parametrize("fmt", [2, 3, 4, 5, 6, 7])
def test_the_format_pipeline_fixtures_restore_and_continue(tmp_path, fmt, caplog):
    """tests/fixtures/state-vN-pipeline.logmlstate: a whole pipeline's state (default
    config, windows open) after state-v2-pipeline.input.jsonl (see make_state.py).
    Format 2 is migrated: its detector gets the error-rate runs of format 3, none open;
    formats 2 and 3: the templates' first open windows of format 4, unknown (NaN)."""
    path = FIXTURES / f"state-v{fmt}-pipeline.logmlstate"
    data = (FIXTURES / "state-v2-pipeline.input.jsonl").read_bytes()
    events = [orjson.loads(line) for line in data.splitlines()]
    header, _ = header_of(path.read_bytes())
    assert header["format"] == fmt and header["kind"] == STATE_KIND
    assert ("/detector/e_rs" in {a["path"] for a in header["arrays"]}) == (fmt >= 3)
    state = snapshot.read(path, STATE_KIND)
    assert state["config"]["window"]["seconds"] == 60
    det = state["detector"]
    assert det["e_rs"].shape == det["e_rn"].shape == det["alive"].shape
    if fmt == 2:
        assert not det["e_rs"].any() and not det["e_rn"].any()
    for key in ("templates", "services"):  # format 4's LX row: 0 when migrated
        st = det[key]["st"]
        assert st.shape[0] == cm.N_FIELDS and snapshot.LX_ROW == cm.LX == cm.N_FIELDS - 1
        if fmt < 4:
            assert not st[cm.LX].any()
    # format 5's shortfall sums: a migrated state has summed nothing and has the prior
    # spread; a format 5 one has summed its services' windows
    short = det["shortfall"]
    assert set(short) == set(shortfall.FIELDS)
    assert all(v.shape == shortfall.shape(k, len(det["alive"])) for k, v in short.items())
    # format 7's slow level: none yet when migrated (a service starts it at its next window)
    assert (short["short_slow"] > 0).any() == (fmt >= 7)
    if fmt < 5:
        fresh = shortfall.new_state(len(det["alive"]))
        assert all(np.array_equal(short[k], fresh[k]) for k in shortfall.FIELDS)
    else:
        assert short["short_sum"].any()
    opened = state["templates"]["templates"]["first_open_window"]
    assert len(opened) == len(state["templates"]["templates"]["id"])
    if fmt < 4:
        assert np.isnan(opened).all()
    else:  # a window start, or -inf for a template made before its service had a clock
        known = opened[np.isfinite(opened)]
        assert len(known) and (known % 60 == 0).all() and (known >= 1_700_000_000).all()
        assert (np.isfinite(opened) | (opened == -np.inf)).all()
    p = Pipeline(Config(), JsonlSink(tmp_path))
    with caplog.at_level(logging.INFO, logger="logml.pipeline"):
        p.load(path)
    # a state from before request routes says how its templates go on (rules 1)
    said = [r.getMessage() for r in caplog.records if "request paths masked whole" in
            r.getMessage()]
    assert len(said) == (1 if fmt < 6 else 0) and p.engine.rules == (1 if fmt < 6 else 2)
    services = list(dict.fromkeys(e["service"]["name"] for e in events))
    assert sorted(s.name for s in p.engine.services) == sorted(services)
    assert p.positions == {"input": len(data)}
    assert p.engine.lines_seen == len(events)
    assert len(p.template_service) == len(p.engine.templates) > 0
    # the open windows are there to be closed: every service has one to score
    p.finish()
    p.sink.close()
    windows = [orjson.loads(x) for x in (tmp_path / "windows.jsonl").read_bytes().splitlines()]
    assert {w["service"]["name"] for w in windows} == set(services)
    assert sum(w["logml"]["lines"] for w in windows) > 0
    # and a state saved again reads back the same
    p2 = Pipeline(Config(), JsonlSink(tmp_path / "again"))
    p2.load(path)
    p2.save(tmp_path / "again.state")
    again = snapshot.read(tmp_path / "again.state", STATE_KIND)
    # everything saves again as it was read
    assert normal(again) == normal(state)


# ---------------------------------------------------------------- pipeline state
@pytest.fixture(scope="module")
def events():
    lines, _ = generate(21, hours=0.5, services=2, start=1_764_000_000.0, rate=4.0)
    return b"\n".join(lines) + b"\n"


def pipeline_after(events: bytes, config: Config, out: Path) -> Pipeline:
    p = Pipeline(config, JsonlSink(out))
    p.process_block(events, 0, "input", len(events))
    return p


def test_restore_refuses_a_new_window_length_and_names_the_key(events, tmp_path):
    p = pipeline_after(events, Config(), tmp_path / "a")
    state = p.state()
    assert state["config"]["window"]["seconds"] == 60
    other = Config()
    other.window.seconds = 30
    q = Pipeline(other, JsonlSink(tmp_path / "b"))
    engine = q.engine
    with pytest.raises(snapshot.StateMismatch) as e:
        q.restore(state, "state file s.state")
    assert str(e.value).startswith("state file s.state was saved with window.seconds = 60 but "
                                   "the pipeline now has 30")
    assert isinstance(e.value, snapshot.SnapshotError) and "\n" not in str(e.value)
    assert q.engine is engine  # nothing half-restored


def test_restore_applies_keys_that_can_change_with_one_info_line(events, tmp_path, caplog):
    p = pipeline_after(events, Config(), tmp_path / "a")
    state = p.state()
    other = Config()
    other.template.similarity = 0.5
    other.score.warning_score = 70.0
    q = Pipeline(other, JsonlSink(tmp_path / "b"))
    with caplog.at_level(logging.INFO, logger="logml.pipeline"):
        q.restore(state)
    (record,) = caplog.records
    assert "template.similarity 0.7 -> 0.5" in record.getMessage()
    assert "score.warning_score 62.5 -> 70.0" in record.getMessage()
    assert q.engine.config.similarity == 0.5
    assert [t.template_id for t in q.engine.templates] == \
        [t.template_id for t in p.engine.templates]
    np.testing.assert_array_equal(q.template_service, p.template_service)
    assert q.positions == {"input": len(events)}
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="logml.pipeline"):
        Pipeline(Config(), JsonlSink(tmp_path / "c")).restore(state)
    assert not caplog.records  # same config: silent


@pytest.mark.parametrize("edit", [
    lambda s: s.pop("templates"),
    lambda s: s.pop("config"),
    lambda s: s["config"].update(window=5),
    lambda s: s.update(positions=7),
])
def test_a_tree_that_is_no_pipeline_state_is_refused(events, tmp_path, edit):
    state = pipeline_after(events, Config(), tmp_path / "a").state()
    edit(state)
    with pytest.raises(snapshot.SnapshotError, match="state does not hold a pipeline state"):
        Pipeline(Config(), JsonlSink(tmp_path / "b")).restore(state)


@pytest.mark.parametrize("edit,words", [
    # a format 3 matrix (no LX row) under a format 4 header: the kernels would read past it
    (lambda d: d["templates"].update(st=d["templates"]["st"][:-1]),
     "detector templates st is float32[22"),
    (lambda d: d["services"].update(prof=d["services"]["prof"].astype(np.float64)),
     "detector services prof is float64"),
    (lambda d: d["templates"].update(seen=d["templates"]["seen"][:-1]),
     "detector templates st is float32[23"),
    (lambda d: d.update(r_mean=d["r_mean"][:-1]), "detector r_mean has shape"),
    (lambda d: d.update(t_reported=np.zeros(3, bool)), "detector t_reported has shape"),
])
def test_detector_models_of_another_shape_are_refused(events, tmp_path, edit, words):
    """The model kernels index series without bounds checks: a saved detector whose arrays
    disagree in shape or type is refused at restore, never handed to them."""
    state = pipeline_after(events, Config(), tmp_path / "a").state()
    edit(state["detector"])
    with pytest.raises(snapshot.SnapshotError, match="state does not hold a pipeline state") \
            as e:
        Pipeline(Config(), JsonlSink(tmp_path / "b")).restore(state)
    assert words in str(e.value)


def test_a_stage_refusal_names_the_file(events, tmp_path):
    state = pipeline_after(events, Config(), tmp_path / "a").state()
    state["templates"]["lines_seen"] = -5
    with pytest.raises(snapshot.SnapshotError) as e:
        Pipeline(Config(), JsonlSink(tmp_path / "b")).restore(state, "state file s")
    assert str(e.value) == "state file s: templates state is malformed: lines_seen"


def test_pipeline_state_of_the_template_stage_is_plain_data(events, tmp_path):
    state = pipeline_after(events, Config(), tmp_path / "a").state()
    assert plain(state["templates"]) and plain(state["config"])
    assert plain(state["positions"]) and STATE_KIND == "pipeline"
