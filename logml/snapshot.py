"""Versioned, atomic snapshot files: magic, JSON header, pickled body.

The header names the format version and what the snapshot holds, so a reader refuses a
file it does not understand with a clear error instead of loading garbage. Writes go to a
temporary file that is fsynced and renamed, so a crash leaves the old snapshot intact.
Snapshots are trusted input (pickle): load only files logml wrote.
"""
from __future__ import annotations

import os
import pickle
import tempfile
import zlib
from pathlib import Path

import orjson

MAGIC = b"LOGMLSNAP\n"
FORMAT_VERSION = 1


class SnapshotError(Exception):
    pass


def dumps(kind: str, state: dict) -> bytes:
    header = orjson.dumps({"format": FORMAT_VERSION, "kind": kind})
    body = zlib.compress(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), 1)
    return MAGIC + header + b"\n" + body


def loads(data: bytes, kind: str) -> dict:
    if not data.startswith(MAGIC):
        raise SnapshotError("not a logml snapshot (bad magic)")
    header_end = data.index(b"\n", len(MAGIC))
    header = orjson.loads(data[len(MAGIC):header_end])
    if header.get("format") != FORMAT_VERSION:
        raise SnapshotError(f"snapshot format {header.get('format')} is not supported "
                            f"(this logml reads format {FORMAT_VERSION})")
    if header.get("kind") != kind:
        raise SnapshotError(f"snapshot holds {header.get('kind')!r}, expected {kind!r}")
    return pickle.loads(zlib.decompress(data[header_end + 1:]))


def write(path: str | Path, kind: str, state: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(dumps(kind, state))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(path: str | Path, kind: str) -> dict:
    return loads(Path(path).read_bytes(), kind)
