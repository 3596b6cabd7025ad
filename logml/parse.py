"""``logml parse``: one row per input line, in order: line number, template id, template."""
from __future__ import annotations

import csv
import io
import operator
import os
import sys
from typing import BinaryIO, TextIO

import numpy as np
import orjson

from .config import Config
from .decode import Decoder
from .progress import Progress
from .sources.file import read_blocks
from .template import TemplateEngine

def _csv_field(text: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([text])
    return buf.getvalue()


def parse_stream(stream: BinaryIO, out: TextIO, config: Config, fmt: str = "csv",
                 total_bytes: int | None = None) -> TemplateEngine:
    engine = TemplateEngine(config.template)
    decoder = Decoder(config.decode)
    progress = Progress(total_bytes, "parse", unit="bytes")
    if fmt == "csv":
        out.write("line_no,template_id,template\n")
    line_no = 0
    for blk in read_blocks(stream):
        block = blk.data
        events, errors = decoder.decode_block(block, first_offset=0)
        n = len(events) + sum(e.count for e in errors if not e.kept)
        idx, _ = engine.template_events(events)
        pos = events.offset  # line positions within the block
        if fmt == "csv":
            uniq, inverse = np.unique(idx, return_inverse=True)
            frag = np.array([f",{engine.template_id(i)},{_csv_field(engine.template_text(i))}"
                             for i in uniq.tolist()] + [",,"], dtype=object)
            which = np.full(n, len(uniq))  # lines without an event: empty cells
            which[pos] = inverse
            # joined by C loops (map), not a Python loop per line
            out.write("\n".join(map(operator.add, map(str, range(line_no + 1, line_no + n + 1)),
                                     frag[which].tolist())) + "\n")
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
            out.write("".join(orjson.dumps(r).decode() + "\n" for r in rows))
        line_no += n
        progress.update(len(block))
    progress.close()
    return engine


def run(path: str, fmt: str, json_input: bool, config: Config) -> int:
    config.decode.format = "json" if json_input else "plain"
    if path == "-":
        parse_stream(sys.stdin.buffer, sys.stdout, config, fmt)
        return 0
    if not os.path.exists(path):
        print(f"logml parse: {path}: no such file", file=sys.stderr)
        return 2
    with open(path, "rb") as f:
        parse_stream(f, sys.stdout, config, fmt, os.path.getsize(path))
    return 0
