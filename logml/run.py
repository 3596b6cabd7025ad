"""``logml run --input FILE|-``: the whole pipeline embedded, JSON lines out, optional
/metrics. State can be carried between runs (``--state``), so an input read in parts gives
the same anomalies as the input read at once."""
from __future__ import annotations

import sys
from pathlib import Path

from .config import Config
from .metrics import Stats, serve
from .pipeline import Pipeline
from .progress import Progress
from .sinks.jsonl import JsonlSink
from .sources.file import open_input, read_blocks


def run_file(config: Config, path: str, state: str | None = None, keep_open: bool = False,
             service: str | None = None, progress: bool = True) -> Pipeline:
    out = Path(config.output.dir)
    resuming = bool(state) and Path(state).exists()
    sink = JsonlSink(out, config.output.write_logs, append=resuming)
    stats = Stats()
    m = config.metrics
    server = serve(stats, m.port, m.address) if m.port else None
    pipe = Pipeline(config, sink, stats, service)
    if resuming:
        pipe.load(state)
    source = path if path == "-" else str(Path(path).resolve())
    offset = pipe.positions.get(source, 0) if path != "-" else 0
    stream, size = open_input(path, offset)
    bar = Progress(size - offset if size else None, "logml run", unit="bytes") if progress \
        else None
    try:
        first_line = 0
        for block in read_blocks(stream, start_offset=offset):
            pipe.process_block(block.data, first_line, source, block.end_offset)
            first_line += block.data.count(b"\n")
            sink.flush()
            if bar:
                bar.update(len(block.data))
        if not keep_open:
            pipe.finish()
        sink.flush()
        if state:
            pipe.save(state)
    finally:
        if bar:
            bar.close()
        sink.close()
        if stream is not sys.stdin.buffer:
            stream.close()
        if server:
            server.shutdown()
    return pipe
