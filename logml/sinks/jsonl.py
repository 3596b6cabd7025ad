"""JSON lines sink for embedded mode: the documents Elasticsearch would get, one per line."""
from __future__ import annotations

from pathlib import Path

import orjson

from ..docs import dlq_doc

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

    def write(self, kind: str, docs: list[tuple[str, dict]]) -> None:
        """docs are (id, document); the id is implied by the fields, files keep the doc."""
        if docs and kind in self.files:
            self.files[kind].write(b"".join(orjson.dumps(d) + b"\n" for _, d in docs))

    def dead_letter(self, errors) -> None:
        self.write("dlq", [dlq_doc(e) for e in errors])

    def flush(self) -> None:
        for f in self.files.values():
            f.flush()

    def close(self) -> None:
        for f in self.files.values():
            f.close()
