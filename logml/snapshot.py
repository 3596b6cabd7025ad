"""State files: a versioned, documented format that holds data and never code.

    LOGMLSNAP\\n                 magic (unchanged since format 1)
    {header JSON}\\n             format, kind, created, logml version, the segments' table
    body                        segments: the tree as JSON, then each array's bytes, each
                                zlib-compressed or raw, whichever is smaller
    \\ncrc32:xxxxxxxx\\n          CRC-32 of everything before it

The tree is plain data (PLAN contract 1): dicts with str keys, lists, str, int, float
(nan and inf too), bool, None and numpy arrays of bool, integer or float dtype. Arrays are
stored as little-endian bytes, each referenced once from the tree as {"__nd__": i}. Every
size and dtype is checked against the bytes present and a limit before anything is
allocated, so a corrupt, truncated or hostile file is refused with one line
(SnapshotError): it cannot run code nor make the reader allocate more than the data it
claims (at most ``limit``). docs/state-format.md is the specification.
``python -m logml.snapshot FILE`` prints a file's header (``--tree`` its outline).
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import orjson

from . import __version__, shortfall

MAGIC = b"LOGMLSNAP\n"
FORMAT_VERSION = 7
UNSAFE_FORMAT = 1  # format 1 held serialised Python objects: refused, never read
MAX_HEADER_BYTES = 16 << 20
MAX_BODY_BYTES = 4 << 30  # a state claiming more data than this is refused unread
MAX_DEPTH = 64
MAX_NDIM = 32
_TRAILER = re.compile(rb"\ncrc32:([0-9a-f]{8})\n\Z")
_TRAILER_LEN = 16

# the only dtypes a state may hold, stored little-endian whatever the machine
DTYPES = {name: np.dtype(name).newbyteorder("<") for name in (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float32", "float64")}
_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_TAGS = ("__nd__", "__float__", "__dict__")


class SnapshotError(Exception):
    """A state that cannot be written or read; the message is one line for the operator."""


class StateMismatch(SnapshotError):
    """A saved state that does not fit the current pipeline file (a data-bearing key such as
    window.seconds changed); the message names the key."""


# ---------------------------------------------------------------- encoding
def dumps(kind: str, tree, compress: bool = True) -> bytes:
    """The state file bytes of a plain-data tree. With compress, each segment is stored
    zlib-compressed when that saves a tenth (judged on its first 16 KiB): baselines of
    noisy floats are stored raw, where zlib would cost ~50 ms a MB for a few percent."""
    arrays: list[np.ndarray] = []
    table: list[dict] = []
    encoded = _encode(tree, arrays, table, (), 0)
    try:
        tree_json = orjson.dumps(encoded)
    except orjson.JSONEncodeError:
        # strings holding lone surrogates (file names): stdlib JSON escapes them
        try:
            tree_json = json.dumps(encoded, ensure_ascii=True, allow_nan=False,
                                   separators=(",", ":")).encode()
        except (ValueError, TypeError) as e:
            raise SnapshotError(f"state cannot be encoded: {e}") from None
    tree_entry = {"nbytes": len(tree_json)}
    parts = [_segment(tree_entry, tree_json, compress)]
    for entry, a in zip(table, arrays):
        parts.append(_segment(entry, memoryview(a).cast("B") if a.size else b"", compress))
    header = {"format": FORMAT_VERSION, "kind": kind,
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "logml": __version__, "body_bytes": sum(len(x) for x in parts),
              "tree": tree_entry, "arrays": table}
    head = MAGIC + orjson.dumps(header) + b"\n"
    crc = zlib.crc32(head)
    for x in parts:
        crc = zlib.crc32(x, crc)
    return b"".join((head, *parts, b"\ncrc32:%08x\n" % crc))


_PROBE = 16 << 10


def _segment(entry: dict, raw, compress: bool):
    """raw or its zlib stream, whichever the probe favours; notes which in entry."""
    stored = raw
    if compress and len(raw) >= 64 and (
            len(raw) <= _PROBE or len(zlib.compress(raw[:_PROBE], 1)) < 0.9 * _PROBE):
        packed = zlib.compress(raw, 1)
        if len(packed) < 0.9 * len(raw):
            stored = packed
    entry["compression"] = "zlib" if stored is not raw else "none"
    entry["stored_bytes"] = len(stored)
    return stored


def _path(path: tuple) -> str:
    return "/" + "/".join(map(str, path))


def _encode(node, arrays: list, table: list, path: tuple, depth: int):
    if depth > MAX_DEPTH:
        raise SnapshotError(f"state tree deeper than {MAX_DEPTH} at {_path(path)}")
    t = type(node)
    if node is None or t is str or t is bool or t is int:
        return node
    if isinstance(node, float):
        return float(node) if math.isfinite(node) else {"__float__": repr(float(node))}
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if type(k) is not str:
                raise SnapshotError(f"state key {k!r} at {_path(path)} is not a str")
            out[k] = _encode(v, arrays, table, path + (k,), depth + 1)
        if len(out) == 1 and next(iter(out)) in _TAGS:
            return {"__dict__": out}  # a dict that would read as a tag
        return out
    if isinstance(node, (list, tuple)):
        return [_encode(v, arrays, table, path + (i,), depth + 1) for i, v in enumerate(node)]
    if isinstance(node, np.ndarray):
        dtype = DTYPES.get(node.dtype.name) if node.dtype.kind in "biuf" else None
        if dtype is None:
            raise SnapshotError(f"state array at {_path(path)} has dtype {node.dtype}; "
                                f"only {', '.join(DTYPES)} can be saved")
        a = np.asarray(node, dtype=dtype, order="C")
        table.append({"path": _path(path), "dtype": node.dtype.name, "shape": list(a.shape),
                      "nbytes": a.nbytes})
        arrays.append(a)
        return {"__nd__": len(arrays) - 1}
    if isinstance(node, (np.bool_, np.integer, np.floating)):
        return _encode(node.item(), arrays, table, path, depth)
    raise SnapshotError(f"state holds a {t.__name__} at {_path(path)}: only plain data "
                        f"(dict, list, str, int, float, bool, None, numeric arrays) is saved")


# ---------------------------------------------------------------- decoding
def loads(data: bytes, kind: str, name: str = "state", limit: int = MAX_BODY_BYTES):
    """The tree of a state file's bytes; ``name`` (e.g. "state file X") opens errors;
    a file whose segments claim more than ``limit`` bytes of data is refused unread."""
    data = bytes(data)
    header, body_start = _header(data, name)
    fmt = header.get("format")
    if type(fmt) is not int:
        raise SnapshotError(f"{name} has no format number in its header")
    if fmt == UNSAFE_FORMAT:
        raise SnapshotError(f"{name} was written by format 1 (serialised Python objects) of an "
                            f"older logml; it cannot be read safely: delete it (logml then "
                            f"starts afresh)")
    if fmt > FORMAT_VERSION:
        raise SnapshotError(f"{name} was written by format {fmt}; this logml reads up to "
                            f"{FORMAT_VERSION}: upgrade logml or delete the state")
    reader = _READERS.get(fmt)
    if reader is None:
        raise SnapshotError(f"{name} has unknown format {fmt}")
    if header.get("kind") != kind:
        raise SnapshotError(f"{name} holds {header.get('kind')!r}, expected {kind!r}")
    try:
        return reader(data, header, body_start, name, limit)
    except SnapshotError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, zlib.error,
            RecursionError) as e:
        raise SnapshotError(f"{name} is corrupt: {_line(e)}") from None


def _line(e: BaseException) -> str:
    text = str(e).splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


def _header(data: bytes, name: str) -> tuple[dict, int]:
    if not data.startswith(MAGIC):
        if data[:1] == b"\x80":
            raise SnapshotError(f"{name} holds serialised Python objects, not a logml state; "
                                f"it cannot be read safely: delete it")
        raise SnapshotError(f"{name} is not a logml state file (bad magic)")
    end = data.find(b"\n", len(MAGIC), len(MAGIC) + MAX_HEADER_BYTES)
    if end < 0:
        raise SnapshotError(f"{name} is truncated or corrupt: no header line")
    try:
        header = orjson.loads(data[len(MAGIC):end])
    except orjson.JSONDecodeError as e:
        raise SnapshotError(f"{name} has a corrupt header: {_line(e)}") from None
    if not isinstance(header, dict):
        raise SnapshotError(f"{name} has a corrupt header: not a JSON object")
    return header, end + 1


def _field(header: dict, key: str, name: str, lo: int, hi: int) -> int:
    v = header.get(key)
    if type(v) is not int or not lo <= v <= hi:
        raise SnapshotError(f"{name} has a corrupt header: {key} = {str(v)[:40]}")
    return v


def _read_v2(data: bytes, header: dict, start: int, name: str, limit: int):
    body_bytes = _field(header, "body_bytes", name, 0, 1 << 62)
    expected = start + body_bytes + _TRAILER_LEN
    if len(data) < expected:
        raise SnapshotError(f"{name} is truncated ({len(data)} of {expected} bytes)")
    if len(data) > expected:
        raise SnapshotError(f"{name} has {len(data) - expected} unexpected bytes at its end")
    m = _TRAILER.match(data, start + body_bytes)
    if m is None:
        raise SnapshotError(f"{name} is corrupt: no checksum at its end")
    view = memoryview(data)
    if zlib.crc32(view[:start + body_bytes]) != int(m.group(1), 16):
        raise SnapshotError(f"{name} is corrupt: checksum mismatch")
    table = header.get("arrays")
    if not isinstance(table, list):
        raise SnapshotError(f"{name} has a corrupt header: arrays")
    # every size checked against the bytes present and the limit before any is allocated
    tree_spec = _segment_spec(header.get("tree"), name, "tree")
    specs = [_array_spec(e, name) for e in table]
    segments = [tree_spec[:3]] + [s[:3] for s in specs]
    if sum(s[1] for s in segments) != body_bytes:
        raise SnapshotError(f"{name} is corrupt: its segments do not add up to body_bytes")
    if sum(s[2] for s in segments) > limit:
        raise SnapshotError(f"{name} claims more than {limit} bytes of data")
    pos = start
    raws = []
    for compression, stored, nbytes in segments:
        raws.append((pos, compression, stored, nbytes))
        pos += stored
    tree_json = _unpack(view, *raws[0], name)
    try:
        tree = orjson.loads(tree_json)
    except orjson.JSONDecodeError:
        # written by the stdlib fallback (lone surrogates), or corrupt
        tree = json.loads(bytes(tree_json), parse_constant=_no_constant)
    arrays = [(raws[i + 1], dtype, shape) for i, (_, _, _, dtype, shape) in enumerate(specs)]
    return _decode(tree, arrays, view, 0, name)


def _unpack(view: memoryview, pos: int, compression: str, stored: int, nbytes: int,
            name: str):
    """A segment's bytes: never more than its recorded size is inflated."""
    seg = view[pos:pos + stored]
    if compression == "none":
        return seg
    z = zlib.decompressobj()
    try:
        raw = z.decompress(seg, nbytes) if nbytes else b""
        if len(raw) == nbytes and not z.eof and z.decompress(
                z.unconsumed_tail if nbytes else seg, 1):  # the stream's end, or more data
            raise SnapshotError(f"{name} is corrupt: a segment inflates beyond its size")
    except zlib.error:
        raise SnapshotError(f"{name} is corrupt: a segment is not a valid zlib stream") \
            from None
    if len(raw) != nbytes or not z.eof or z.unused_data or z.unconsumed_tail:
        raise SnapshotError(f"{name} is corrupt: a segment does not match its recorded size")
    return raw


def _no_constant(word: str):
    raise ValueError(f"{word} is not allowed in a state")


def _segment_spec(entry, name: str, what: str) -> tuple[str, int, int]:
    if not isinstance(entry, dict):
        raise SnapshotError(f"{name} has a corrupt header: {what} is not an object")
    compression = entry.get("compression")
    stored, nbytes = entry.get("stored_bytes"), entry.get("nbytes")
    if compression not in ("zlib", "none"):
        raise SnapshotError(f"{name} has unknown compression {str(compression)[:40]!r}")
    if type(stored) is not int or type(nbytes) is not int or not (
            0 <= stored <= MAX_BODY_BYTES and 0 <= nbytes <= MAX_BODY_BYTES):
        raise SnapshotError(f"{name} has a corrupt header: {what} sizes")
    if compression == "none" and stored != nbytes:
        raise SnapshotError(f"{name} is corrupt: {what} is stored raw but its sizes differ")
    if compression == "zlib" and stored == 0:
        raise SnapshotError(f"{name} is corrupt: {what} is an empty zlib stream")
    return compression, stored, nbytes


def _array_spec(entry, name: str):
    def bad(why):
        return SnapshotError(f"{name} has a corrupt array table: {why}")
    if not isinstance(entry, dict):
        raise bad("entry is not an object")
    dtype = DTYPES.get(entry.get("dtype")) if isinstance(entry.get("dtype"), str) else None
    if dtype is None:
        raise bad(f"dtype {str(entry.get('dtype'))[:40]!r} is not allowed")
    shape = entry.get("shape")
    if (not isinstance(shape, list) or len(shape) > MAX_NDIM
            or any(type(d) is not int or not 0 <= d <= MAX_BODY_BYTES for d in shape)):
        raise bad(f"shape {str(shape)[:60]}")
    compression, stored, nbytes = _segment_spec(entry, name, f"array {entry.get('path')!s:.60}")
    if math.prod(shape) * dtype.itemsize != nbytes:
        raise bad(f"shape {shape} of {entry['dtype']} is not {nbytes} bytes")
    return compression, stored, nbytes, dtype, tuple(shape)


def _decode(node, arrays: list, view, depth: int, name: str):
    if depth > MAX_DEPTH:
        raise SnapshotError(f"{name} is corrupt: tree deeper than {MAX_DEPTH}")
    if isinstance(node, list):
        return [v if v is None or type(v) in (str, int, float, bool)
                else _decode(v, arrays, view, depth + 1, name) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        tag, v = next(iter(node.items()))
        if tag == "__nd__":
            if type(v) is not int or not 0 <= v < len(arrays) or arrays[v] is None:
                raise SnapshotError(f"{name} is corrupt: array reference {str(v)[:20]}")
            segment, dtype, shape = arrays[v]
            arrays[v] = None  # referenced once: a tree cannot multiply the data
            raw = _unpack(view, *segment, name)
            return np.frombuffer(raw, dtype, math.prod(shape)).reshape(shape).copy()
        if tag == "__float__":
            if type(v) is not str or v not in _FLOATS:
                raise SnapshotError(f"{name} is corrupt: float {str(v)[:20]!r}")
            return _FLOATS[v]
        if tag == "__dict__":
            if not isinstance(v, dict):
                raise SnapshotError(f"{name} is corrupt: __dict__ is not an object")
            return {k: _decode(x, arrays, view, depth + 1, name) for k, x in v.items()}
    return {k: _decode(v, arrays, view, depth + 1, name) for k, v in node.items()}


LX_ROW = 22  # countmodel.LX, the row format 4 added to a series' state matrix


def _template_stage(tree: dict):
    """The template stage's tree in a pipeline's tree, or the tree itself (kind templates)."""
    return tree.get("templates") if "detector" in tree else tree


def _add_rows(tree, rows_before: int, rows: int):
    """Zero rows appended to every series' state matrix (the detector's templates and
    services) of ``rows_before`` rows, in a pipeline's tree."""
    det = tree.get("detector") if isinstance(tree, dict) else None
    for key in ("templates", "services"):
        model = det.get(key) if isinstance(det, dict) else None
        st = model.get("st") if isinstance(model, dict) else None
        if isinstance(st, np.ndarray) and st.ndim == 2 and st.shape[0] == rows_before:
            model["st"] = np.vstack((st, np.zeros((rows, st.shape[1]), st.dtype)))
    return tree


def _format_3(tree):
    """What format 3 added, to a pipeline's tree of format 2: the detector's error-rate
    runs (``e_rs``, ``e_rn``), none open."""
    det = tree.get("detector") if isinstance(tree, dict) else None
    if isinstance(det, dict) and isinstance(det.get("alive"), np.ndarray):
        n = len(det["alive"])
        for key in ("e_rs", "e_rn"):
            det.setdefault(key, np.zeros(n))
    return tree


def _format_4(tree):
    """What format 4 added, to a pipeline's or a template stage's tree of format 3: each
    template's first open window, NaN (unknown: its merges hold for every window, as
    format 3's did), and each series' log ratio of its last window to its expectation
    (row ``LX``), 0 (no run holds a level until a window has been seen)."""
    if not isinstance(tree, dict):
        return tree
    engine = _template_stage(tree)
    ts = engine.get("templates") if isinstance(engine, dict) else None
    if isinstance(ts, dict) and isinstance(ts.get("id"), np.ndarray):
        ts.setdefault("first_open_window", np.full(len(ts["id"]), np.nan))
    return _add_rows(tree, LX_ROW, 1)


def _format_5(tree):
    """What format 5 added, to a pipeline's tree of format 4: each service's shortfall
    sums as a service new to the detector has them (nothing summed, the prior spread)."""
    det = tree.get("detector") if isinstance(tree, dict) else None
    if isinstance(det, dict) and isinstance(det.get("alive"), np.ndarray):
        det.setdefault("shortfall", shortfall.new_state(len(det["alive"])))
    return tree


def _format_6(tree):
    """What format 6 added, to a pipeline's or a template stage's tree of format 5: the
    template rules, 1 (request paths masked whole, as every logml before format 6 did)."""
    if not isinstance(tree, dict):
        return tree
    engine = _template_stage(tree)
    if isinstance(engine, dict):
        engine.setdefault("rules", 1)
    return tree


def _format_7(tree):
    """What format 7 added, to a pipeline's tree of format 6: each service's slow level of
    the shortfall test, none yet (0)."""
    det = tree.get("detector") if isinstance(tree, dict) else None
    short = det.get("shortfall") if isinstance(det, dict) else None
    if isinstance(short, dict) and isinstance(det.get("alive"), np.ndarray):
        short.setdefault("short_slow", np.zeros(len(det["alive"])))
    return tree


# what each format added to the one before; every format since 2 has the same container,
# so an older state is read as it is and brought forward one step at a time
_STEPS = {3: _format_3, 4: _format_4, 5: _format_5, 6: _format_6, 7: _format_7}


def _reader(fmt: int):
    def read(data: bytes, header: dict, start: int, name: str, limit: int):
        tree = _read_v2(data, header, start, name, limit)
        for v in range(fmt + 1, FORMAT_VERSION + 1):
            tree = _STEPS[v](tree)
        return tree
    return read


_READERS = {fmt: _reader(fmt) for fmt in range(2, FORMAT_VERSION + 1)}


# ---------------------------------------------------------------- files
def write(path: str | Path, kind: str, tree, compress: bool = True) -> None:
    """Atomically replace path: a crash leaves the old file or the new one, never a mix."""
    data = dumps(kind, tree, compress)
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as e:
        raise SnapshotError(f"cannot write state file {path}: {e.strerror or e}") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def read(path: str | Path, kind: str, limit: int = MAX_BODY_BYTES):
    name = f"state file {path}"
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit + MAX_HEADER_BYTES + 64:
                raise SnapshotError(f"{name} is larger ({size} bytes) than any state it reads")
            data = f.read()
    except FileNotFoundError:
        raise SnapshotError(f"{name} not found") from None
    except OSError as e:
        raise SnapshotError(f"cannot read {name}: {e.strerror or e}") from None
    return loads(data, kind, name, limit)


# ---------------------------------------------------------------- inspection
def _outline(node, indent: str = "") -> list[str]:
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for k, v in items:
        if isinstance(v, np.ndarray):
            out.append(f"{indent}{k}: {v.dtype}{list(v.shape)}")
        elif isinstance(v, dict) or (isinstance(v, list) and v and not
                                     all(isinstance(x, (str, int, float)) for x in v)):
            out.append(f"{indent}{k}: {'dict' if isinstance(v, dict) else 'list'} ({len(v)})")
            out.extend(_outline(v, indent + "  ") if len(v) <= 50 else [f"{indent}  ..."])
        elif isinstance(v, list):
            out.append(f"{indent}{k}: list of {len(v)} values")
        else:
            out.append(f"{indent}{k}: {v!r}"[:120])
    return out


def main(argv=None) -> int:
    """``python -m logml.snapshot FILE [--tree]``: the header, checked; --tree the outline."""
    args = list(sys.argv[1:] if argv is None else argv)
    usage = "usage: python -m logml.snapshot FILE [--tree]"
    if "-h" in args or "--help" in args:
        print(f"{usage}\n\nCheck a logml state file (as `logml run --state FILE` writes "
              f"it): print its header,\nverify its checksum and decode it; --tree also "
              f"prints the outline of the state it holds.")
        return 0
    show_tree = "--tree" in args
    args = [a for a in args if a != "--tree"]
    unknown = [a for a in args if a.startswith("-") and a != "-"]
    if unknown or len(args) != 1:
        what = f"unknown option {unknown[0]}" if unknown else "give one state file"
        print(f"logml: error: {what}; {usage}", file=sys.stderr)
        return 2
    path = args[0]
    try:
        data = Path(path).read_bytes()
        header, _ = _header(data, f"state file {path}")
        print(json.dumps(header, indent=2))
        tree = loads(data, str(header.get("kind")), f"state file {path}")
    except OSError as e:
        print(f"logml: error: cannot read {path}: {e.strerror or e}", file=sys.stderr)
        return 2
    except SnapshotError as e:
        print(f"logml: error: {e}", file=sys.stderr)
        return 2
    print(f"{path}: format {header['format']}, checksum ok, {len(data)} bytes")
    if show_tree:
        print("\n".join(_outline(tree) if isinstance(tree, (dict, list)) else [repr(tree)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
