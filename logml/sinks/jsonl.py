"""JSON lines sink for embedded mode: the documents Elasticsearch would get, one per line."""
from __future__ import annotations

from pathlib import Path

import orjson

from ..docs import LogDocs, dlq_doc

FILES = {"windows": "windows.jsonl", "anomalies": "anomalies.jsonl", "dlq": "dlq.jsonl",
         "logs": "logs.jsonl"}


class JsonlSink:
    def __init__(self, out_dir: str | Path, write_logs: bool = False, append: bool = False):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        mode = "ab" if append else "wb"
        kinds = [k for k in FILES if k != "logs" or write_logs]
        self.files = {k: open(self.dir / FILES[k], mode) for k in kinds}
        self.write_logs = write_logs
        self._log_docs = LogDocs()

    def write(self, kind: str, docs: list[tuple[str, dict]]) -> None:
        """docs are (id, document); the id is implied by the fields, files keep the doc."""
        if docs and kind in self.files:
            self.files[kind].write(b"".join(orjson.dumps(d) + b"\n" for _, d in docs))

    def write_log_batch(self, events, idx, engine, source: str) -> None:
        """Per-line documents of a batch, as bytes (docs.LogDocs), one per line."""
        if "logs" in self.files and len(events):
            _, _, docs = self._log_docs.build(events, idx, engine, source)
            self.files["logs"].write(b"\n".join(docs) + b"\n")

    def dead_letter(self, errors) -> None:
        self.write("dlq", [dlq_doc(e) for e in errors])

    def flush(self) -> None:
        for f in self.files.values():
            f.flush()

    def close(self) -> None:
        for f in self.files.values():
            f.close()
