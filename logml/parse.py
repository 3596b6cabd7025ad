"""``logml parse``: one row per input line, in order: line number, template id, template."""
from __future__ import annotations

import csv
import os
import sys
from typing import BinaryIO, TextIO

import orjson

from .config import Config
from .decode import Decoder
from .progress import Progress
from .template import TemplateEngine

BATCH = 20000


def read_batches(stream: BinaryIO, size: int = BATCH):
    batch = []
    for line in stream:
        batch.append(line)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def parse_stream(stream: BinaryIO, out: TextIO, config: Config, fmt: str = "csv",
                 total_bytes: int | None = None) -> TemplateEngine:
    engine = TemplateEngine(config.template)
    decoder = Decoder(config.decode)
    progress = Progress(total_bytes, "parse", unit="bytes")
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer:
        writer.writerow(["line_no", "template_id", "template"])
    line_no = 0
    for batch in read_batches(stream):
        events, errors = decoder.decode(batch)
        idx = engine.template_events(events)
        ids = {i: engine.template_id(i) for i in set(idx.tolist())}
        texts = {i: engine.template_text(i) for i in ids}
        # events come back in input order with their offsets; error rows fill the gaps
        by_offset = dict(zip(events.offset, range(len(events))))
        failed = {e.offset: e for e in errors if not e.kept}
        rows = []
        for k in range(len(batch)):
            line_no += 1
            j = by_offset.get(k)
            if writer:
                rows.append((line_no, ids[idx[j]], texts[idx[j]]) if j is not None
                            else (line_no, "", ""))
            elif j is not None:
                t = int(idx[j])
                rows.append(orjson.dumps({"line_no": line_no, "template_id": ids[t],
                                          "template": texts[t],
                                          "params": engine.params(events.text[j], t)}))
            else:
                e = failed[k]
                rows.append(orjson.dumps({"line_no": line_no, "template_id": None,
                                          "template": None, "error": str(e.reason),
                                          "detail": e.detail}))
        if writer:
            writer.writerows(rows)
        else:
            out.write(b"\n".join(rows).decode() + "\n")
        progress.update(sum(len(r) for r in batch))
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
