"""JSON lines sink for embedded mode: the documents Elasticsearch would get, one per line.

Outputs advance with the state: a checkpoint syncs the files and records their lengths in
the state; a resumed run first cuts every file back to its recorded length, so what was
written after the last checkpoint is written once again, not twice.
"""
from __future__ import annotations

import os
from pathlib import Path

import orjson

from ..docs import LogDocs, dlq_doc

FILES = {"windows": "windows.jsonl", "anomalies": "anomalies.jsonl", "dlq": "dlq.jsonl",
         "logs": "logs.jsonl"}


class JsonlSink:
    def __init__(self, out_dir: str | Path, write_logs: bool = False, append: bool = False,
                 lengths: dict[str, int] | None = None):
        """lengths: committed length of each file (from the state); files are cut back to
        it before appending. ``notes`` says what could not be restored that way."""
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.notes: list[str] = []
        kinds = [k for k in FILES if k != "logs" or write_logs]
        if lengths:
            for kind in kinds:
                self._cut(kind, int(lengths.get(kind, 0)))
        mode = "ab" if append else "wb"
        self.files = {k: open(self.dir / FILES[k], mode) for k in kinds}
        self.write_logs = write_logs
        self._log_docs = LogDocs()
        # (source, line) -> real length of input lines the reader cut (see sources.file)
        self.line_lengths: dict[tuple[str, int], int] = {}

    def _cut(self, kind: str, length: int) -> None:
        path = self.dir / FILES[kind]
        size = path.stat().st_size if path.exists() else 0
        if size > length:
            os.truncate(path, length)
        elif size < length:
            self.notes.append(f"{path} is shorter than the state recorded ({size:,} < "
                              f"{length:,} bytes): it was changed since; appending to it")

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
        docs = [dlq_doc(e) for e in errors]
        if self.line_lengths:
            for e, (_, d) in zip(errors, docs):
                real = self.line_lengths.pop((e.source, e.offset), None)
                if real is not None:  # the reader kept only the first bytes of this line
                    d["line_bytes"] = real
                    kept = f"{len(e.raw)} bytes"
                    if d["detail"].startswith(kept):
                        d["detail"] = f"{real} bytes" + d["detail"][len(kept):]
        self.write("dlq", docs)

    def flush(self) -> None:
        for f in self.files.values():
            f.flush()

    def sync(self) -> dict[str, int]:
        """Flush to disk; the committed length of each file."""
        self.flush()
        lengths = {}
        for kind, f in self.files.items():
            os.fsync(f.fileno())
            lengths[kind] = os.fstat(f.fileno()).st_size
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return lengths

    def close(self) -> None:
        for f in self.files.values():
            f.close()
