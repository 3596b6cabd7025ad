"""``logml run --input FILE|-``: the whole pipeline embedded, JSON lines out, optional
/metrics.

With ``--state`` the run checkpoints: every ``output.checkpoint_every_s`` and at the end the
output files are synced and the state is saved atomically with the input position, the
input file's identity and each output file's committed length. A resumed run cuts the
outputs back to those lengths and reads on from the position, so a run killed at any point
and rerun writes exactly what an uninterrupted run writes. A rotated, replaced or truncated
input is read from its start (and said so), never skipped.

SIGTERM and SIGINT stop reading; the current block is finished and checkpointed with its
windows still open (the next run continues them). Pipes, FIFOs and terminals are live:
small reads, and the pipeline's clock ticks at least once a second.
"""
from __future__ import annotations

import base64
import errno
import os
import signal
import sys
import threading
import time
from pathlib import Path

from . import snapshot
from .config import Config
from .metrics import Stats, serve
from .pipeline import STATE_KIND, Pipeline
from .progress import Progress
from .sinks.jsonl import FILES, JsonlSink
from .sources.file import POLL_S, Input, InputError

EMBEDDED = "embedded"  # this runner's part of the state tree: inputs and outputs
_INTS = ("line", "offset", "dev", "ino", "size", "head_len")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# what to do with a state file logml cannot use, where its message does not say already
_STATE_ADVICE = ("give another --state FILE, or move this one away to start afresh (the "
                 "outputs are then rewritten from the start of the input)")


def _advised(e: snapshot.SnapshotError, advice: str = _STATE_ADVICE) -> snapshot.SnapshotError:
    """The error with what to do added, unless its message says it already."""
    text = str(e)
    if any(w in text for w in ("delete", "upgrade", "restore", " give ")):
        return e
    return snapshot.SnapshotError(f"{text}: {advice}")


def check_state_path(path: str) -> None:
    """Refuse a --state path that cannot be written before any work is done (the first
    checkpoint would fail only after a block was processed and written)."""
    p = Path(path)
    if p.is_dir():
        raise snapshot.SnapshotError(f"--state {path} is a directory: give a file path")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        why = "not a directory" if e.errno in (errno.EEXIST, errno.ENOTDIR) else \
            (e.strerror or str(e))
        raise snapshot.SnapshotError(f"cannot write state file {path} ({e.filename}: {why}): "
                                     f"give --state a path in a writable directory") from None
    if not os.access(p.parent, os.W_OK | os.X_OK):
        raise snapshot.SnapshotError(f"cannot write state file {path}: directory "
                                     f"{p.parent} is not writable: give --state a path in a "
                                     f"writable directory")


def check_paths_apart(path: str, state: str | None, out_dir: str, write_logs: bool) -> None:
    """Refuse an input or --state that is one of the files the run writes, before any work:
    the output is opened for writing first, so the input (or the state) would be emptied."""
    outputs = {Path(out_dir) / FILES[k] for k in FILES if k != "logs" or write_logs}
    named = [("--input", path)] if path != "-" else []
    named += [("--state", state)] if state else []

    def same(a: Path, b: Path) -> bool:
        try:
            return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
        except OSError:
            return False
    for flag, p in named:
        hit = next((o for o in sorted(outputs) if same(Path(p), o)), None)
        if hit is not None:
            other = "--output DIR" if flag == "--input" else "--state path"
            raise InputError(f"{flag} {p} is the output file {hit} of this run (it would be "
                             f"overwritten): give another {other}")
    if state and path != "-" and same(Path(path), Path(state)):
        raise InputError(f"--state {state} is the input file: give --state another path")


def _is_base64(value) -> bool:
    try:
        base64.b64decode(value, validate=True)
        return isinstance(value, str)
    except (TypeError, ValueError):
        return False


def read_state(path: str) -> tuple[dict, dict]:
    """(pipeline state, embedded part) of a state file; SnapshotError if it is not one."""
    try:
        tree = snapshot.read(path, STATE_KIND)
    except snapshot.SnapshotError as e:
        raise _advised(e) from None
    emb = tree.pop(EMBEDDED, None) if isinstance(tree, dict) else None
    emb = {} if emb is None else emb
    inputs = emb.get("inputs", {}) if isinstance(emb, dict) else None
    outputs = emb.get("outputs", {}) if isinstance(emb, dict) else None
    if not (isinstance(inputs, dict) and isinstance(outputs, dict)
            and all(isinstance(v, dict) and all(isinstance(v.get(k, 0), int) for k in _INTS)
                    and _is_base64(v.get("carry", "")) for v in inputs.values())
            and isinstance(outputs.get("files", {}), dict)
            and all(isinstance(n, int) for n in outputs.get("files", {}).values())):
        raise snapshot.SnapshotError(f"state file {path} has a malformed {EMBEDDED!r} part; "
                                     "delete it to start afresh")
    return tree, emb


class Runner:
    """One embedded run. ``stopped_by`` names the signal that stopped it, if any."""

    def __init__(self, config: Config, path: str, state: str | None = None,
                 keep_open: bool = False, service: str | None = None, progress: bool = True,
                 follow: bool = False):
        self.cfg, self.path, self.state, self.follow = config, path, state, follow
        self.keep_open, self.service, self.progress = keep_open, service, progress
        self.stopped_by: str | None = None
        self.checkpoints = 0
        self.pipe: Pipeline | None = None

    def run(self) -> Pipeline:
        cfg = self.cfg
        check_paths_apart(self.path, self.state, cfg.output.dir, cfg.output.write_logs)
        if self.state:
            check_state_path(self.state)
        inp = Input(self.path)
        try:
            if self.follow and inp.codec:
                raise InputError(f"{self.path} is {inp.codec}-compressed: a rotated file, "
                                 f"complete; read it without --follow")
            tree, emb = read_state(self.state) if self.state and Path(self.state).exists() \
                else (None, {})
            stats = Stats()
            server = serve(stats, cfg.metrics.port, cfg.metrics.address)
            try:
                out = Path(cfg.output.dir)
                outputs = emb.get("outputs", {})
                same_dir = outputs.get("dir") == str(out.resolve())
                if tree is not None and outputs.get("dir") and not same_dir:
                    _say(f"logml run: note: the state {self.state} was saved with --output "
                         f"{outputs['dir']}; {out}/ gets only what comes after the position "
                         f"it saved (move the state away to start afresh)")
                sink = JsonlSink(out, cfg.output.write_logs, append=tree is not None,
                                 lengths=outputs.get("files") if same_dir else None)
                for note in sink.notes:
                    _say(f"logml run: {note}")
                try:
                    self._run(inp, sink, stats, tree, emb)
                finally:
                    sink.close()
            finally:
                if server:
                    server.shutdown()
        finally:
            inp.close()
        return self.pipe

    def _run(self, inp: Input, sink: JsonlSink, stats: Stats, tree: dict | None,
             emb: dict) -> None:
        cfg = self.cfg
        pipe = self.pipe = Pipeline(cfg, sink, stats, self.service)
        if tree is not None:
            try:
                pipe.restore(tree, f"state file {self.state}")
            except snapshot.SnapshotError as e:
                raise _advised(e) from None
        source = str(Path(self.path).resolve()) if inp.seekable else self.path
        self.inputs = dict(emb.get("inputs", {}))
        saved = self.inputs.get(source)
        offset = int(pipe.positions.get(source, 0))
        line = int(saved.get("line", 0)) if saved else 0
        why = inp.changed(saved, offset)
        if why:
            _say(f"logml run: {self.path}: {why}: reading it from the start")
            offset = line = 0
        self.source, self.offset, self.line, self.partial = source, offset, line, False
        size = inp.size()
        bar = Progress(size - offset if size else None, "logml run", unit="bytes") \
            if self.progress else None
        restore = self._catch_signals()
        follow = self.follow and inp.seekable
        carry = base64.b64decode(saved.get("carry", "")) if saved and not why else b""
        blocks = inp.blocks(cfg.decode.max_line_bytes, offset, line,
                            keep_partial=(self.keep_open or follow) and inp.seekable,
                            follow=follow, say=lambda m: _say(f"logml run: {m}"),
                            carry=carry)
        try:
            last_tick = last_ck = time.monotonic()
            every, dirty = cfg.output.checkpoint_every_s, False
            for block in blocks:
                if inp.live:
                    pipe.live = True  # a pipe, or a followed file caught up
                if block is not None:
                    if block.long_lines:
                        sink.line_lengths = {(source, k): v for k, v in
                                             block.long_lines.items()}
                    pipe.process_block(block.data, block.first_line, source, block.end_offset)
                    sink.line_lengths = {}
                    self.partial = not block.data.endswith(b"\n")
                    self.line = block.first_line + block.lines
                    self.offset = block.end_offset
                    dirty = True
                    if bar:
                        bar.update(len(block.data))
                now = time.monotonic()
                if inp.live and (block is None or now - last_tick >= POLL_S):
                    pipe.tick(time.time())
                    last_tick, dirty = now, True
                if self.state and dirty and now - last_ck >= every:
                    self.checkpoint(inp)
                    last_ck, dirty = time.monotonic(), False
                elif dirty:
                    sink.flush()
                if self.stopped_by:
                    break
            if not self.stopped_by and not self.keep_open:
                pipe.finish()
            if self.state:
                self.checkpoint(inp)
            else:
                sink.flush()
        finally:
            blocks.close()
            restore()
            if bar:
                bar.close()

    def checkpoint(self, inp: Input) -> None:
        """Outputs synced, then the state with their lengths saved atomically: a crash
        before the rename leaves the previous state, whose lengths the rerun cuts back to."""
        lengths = self.pipe.sink.sync()
        entry = {"line": self.line, "offset": self.offset, "partial": self.partial}
        if inp.seekable:
            entry.update(inp.identity())
        elif pending := inp.pending():  # a pipe's half line, read and not yet a line
            entry["carry"] = base64.b64encode(pending).decode()
        self.inputs[self.source] = entry
        tree = self.pipe.state()
        tree[EMBEDDED] = {"inputs": self.inputs,
                          "outputs": {"dir": str(Path(self.cfg.output.dir).resolve()),
                                      "files": lengths}}
        try:
            snapshot.write(self.state, STATE_KIND, tree)
        except snapshot.SnapshotError as e:
            raise _advised(e, "free space or fix the path, then rerun with the same --state "
                           "(it resumes from the last checkpoint written)") from None
        self.checkpoints += 1

    def _catch_signals(self):
        """SIGTERM/SIGINT ask for a graceful stop (a second one stops at once); returns
        the function that puts the previous handlers back."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def stop(signum, frame):
            if self.stopped_by:
                raise KeyboardInterrupt
            self.stopped_by = signal.Signals(signum).name

        old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        return lambda: [signal.signal(s, h) for s, h in old.items()]


def run_file(config: Config, path: str, state: str | None = None, keep_open: bool = False,
             service: str | None = None, progress: bool = True) -> Pipeline:
    """The whole of ``path`` through the pipeline. A SIGINT/SIGTERM stop raises
    KeyboardInterrupt once the stop is checkpointed: the caller (demo, warm-up) asked for
    the whole file and must not go on as if it had it."""
    runner = Runner(config, path, state, keep_open, service, progress)
    pipe = runner.run()
    if runner.stopped_by:
        raise KeyboardInterrupt(runner.stopped_by)
    return pipe
