"""``logml parse``: one row per input line, in order: line number, template id, template."""
from __future__ import annotations

import csv
import io
import os
import sys
from contextlib import nullcontext
from typing import BinaryIO, TextIO

import numba as nb
import numpy as np
import orjson

from .config import Config
from .decode import Decoder
from .jit import compiling
from .progress import Progress
from .sources.file import DAMAGED, InputError, compression, decompressed, read_blocks
from .template import TemplateEngine

def _rows_py(first, which, frags, frag_ends):
    """The CSV rows of a block as bytes: line number first + k, then frags[which[k]] (the
    row's cells after the first, with their commas), then a newline; one pass to size, one
    to write, instead of a Python string per line."""
    size = 0
    for k in range(which.shape[0]):
        f = which[k]
        size += frag_ends[f] - (frag_ends[f - 1] if f else 0) + 2
        v = first + k
        while v >= 10:
            size += 1
            v //= 10
    out = np.empty(size, dtype=np.uint8)
    o = 0
    digits = np.empty(20, dtype=np.uint8)
    for k in range(which.shape[0]):
        v = first + k
        d = 0
        while True:
            digits[d] = 48 + v % 10
            d += 1
            v //= 10
            if v == 0:
                break
        for q in range(d):
            out[o + q] = digits[d - 1 - q]
        o += d
        f = which[k]
        a = frag_ends[f - 1] if f else 0
        for q in range(a, frag_ends[f]):
            out[o] = frags[q]
            o += 1
        out[o] = 10
        o += 1
    return out


with compiling():
    _I64 = nb.types.Array(nb.types.int64, 1, "A", readonly=True)
    _rows = nb.njit(nb.types.uint8[::1](nb.types.int64, _I64,
                                        nb.types.Array(nb.types.uint8, 1, "C", readonly=True),
                                        _I64), cache=True)(_rows_py)


def _write(out: TextIO, data: bytes) -> None:
    """Bytes to a text stream: to its binary buffer when it has one (stdout)."""
    buffer = getattr(out, "buffer", None)
    if buffer is None:
        out.write(data.decode("utf-8"))
    else:
        out.flush()
        buffer.write(data)


def _csv_field(text: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([text])
    return buf.getvalue()


def parse_stream(stream: BinaryIO, out: TextIO, config: Config, fmt: str = "csv",
                 total_bytes: int | None = None) -> TemplateEngine:
    engine = TemplateEngine(config.template)
    decoder = Decoder(config.decode, dead_letters=fmt != "csv")  # CSV rows hold no reason
    progress = Progress(total_bytes, "parse", unit="bytes")
    if fmt == "csv":
        out.write("line_no,template_id,template\n")
    line_no = 0
    # lines over decode.max_line_bytes are cut by the reader as in `logml run`: memory
    # stays bounded, and input with no newline for 1 GiB (/dev/zero) is refused
    for blk in read_blocks(stream, max_line_bytes=config.decode.max_line_bytes):
        block = blk.data
        events, errors = decoder.decode_block(block, first_offset=0)
        n = blk.lines  # every line is an event or dead-lettered (kept ones are events too)
        idx, _ = engine.template_events(events)
        pos = events.offset  # line positions within the block
        if fmt == "csv":
            # the templates of the block, and each event's place among them (O(n), no sort)
            used = np.zeros(len(engine.templates), dtype=bool)
            used[idx] = True
            uniq = np.flatnonzero(used)
            inverse = (np.cumsum(used) - 1)[idx]
            frags = [f",{engine.template_id(i)},{_csv_field(engine.template_text(i))}"
                     .encode() for i in uniq.tolist()] + [b",,"]
            which = np.full(n, len(uniq), dtype=np.int64)  # lines without an event: empty
            which[pos] = inverse
            _write(out, _rows(line_no + 1, which, np.frombuffer(b"".join(frags), np.uint8),
                              np.cumsum([len(f) for f in frags], dtype=np.int64)).tobytes())
        else:
            rows = np.empty(n, dtype=object)
            for j, (p, t) in enumerate(zip(pos.tolist(), idx.tolist())):
                rows[p] = {"line_no": line_no + p + 1, "template_id": engine.template_id(t),
                           "template": engine.template_text(t),
                           "params": engine.params(events.text(j), t)}
                parents = engine.lineage(t)["parents"]
                if parents:  # the ids this template was merged from
                    rows[p]["template_parents"] = parents
            for e in errors:
                for k in range(e.offset, e.offset + e.count) if not e.kept else ():
                    rows[k] = {"line_no": line_no + k + 1, "template_id": None,
                               "template": None, "error": str(e.reason), "detail": e.detail}
                    if line_no + k in blk.long_lines:  # the reader kept its first bytes
                        rows[k]["line_bytes"] = blk.long_lines[line_no + k]
            out.write("".join(orjson.dumps(r).decode() + "\n" for r in rows))
        line_no += n
        progress.update(len(block))
    progress.close()
    return engine


def run(path: str, fmt: str, json_input: bool, config: Config) -> int:
    config.decode.format = "json" if json_input else "plain"
    with open(path, "rb") if path != "-" else nullcontext(sys.stdin.buffer) as f:
        # (a terminal is not looked at: its end of input, Ctrl-D, is not there twice)
        codec = None if f.isatty() else compression(f.peek(10)[:10])
        if codec is None:
            parse_stream(f, sys.stdout, config, fmt,
                         os.path.getsize(path) if path != "-" else None)
            return 0
        try:
            with decompressed(f, codec, path if path != "-" else "stdin") as plain:
                parse_stream(plain, sys.stdout, config, fmt)
        except DAMAGED as e:
            raise InputError(f"{path}: its {codec} data breaks off ({e}); the lines up to "
                             f"there are parsed") from None
    return 0
