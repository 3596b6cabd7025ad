"""The stages joined: decode -> template -> window -> score -> sink, one batch at a time.

Data flows one way. The pipeline owns the stages' state and can snapshot all of it
(templates, baselines, open windows, input positions) and be rebuilt from it. It does not
read or write anything itself: a source hands it blocks or records, a sink takes its
documents, and the caller commits input positions after the sink acknowledged.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import time

import numpy as np

from . import snapshot
from .config import Config
from .decode import Decoder, EventBatch
from .detect import Detection, Detector
from .docs import anomaly_doc, window_doc
from .errors import ErrorRecord, Reason
from .metrics import Stats, top_templates
from .plaintext import LEVEL_OF
from .template import MASK_RULES, TemplateEngine
from .window import Windower

STATE_KIND = "pipeline"


class Pipeline:
    def __init__(self, config: Config, sink, stats: Stats | None = None,
                 service: str | None = None):
        self.cfg = config
        self.sink = sink
        self.stats = stats or Stats()
        # raw bytes kept for per-line documents and for dead letters the window stage
        # decides (late, absurd_timestamp): a span per event, the block is shared
        self.decoder = Decoder(config.decode, service, keep_raw=True)
        self.engine = TemplateEngine(config.template)
        self.windower = Windower(**self._window_params())
        self.detector = Detector(config.score, config.window.seconds)
        # live source (stdin, a caught-up partition): lines without a time take arrival
        # time and wall time moves the clocks on (``tick``); else the stream is replayed
        self.live = False
        self.template_service = np.zeros(0, dtype=np.int32)
        self.labelled = np.zeros(0, dtype=bool)  # templates with their own gauge series
        # lineage for the detector: made from known templates (never new_template); the
        # index of the template it was merged into (-1: none; its series ends there and
        # the other's continues it), from the window starting at template_merged_from on
        self.template_derived = np.zeros(0, dtype=bool)
        self.template_merged_into = np.zeros(0, dtype=np.int32)
        self.template_merged_from = np.zeros(0)
        self.positions: dict[str, int] = {}  # input -> offset after the last processed record
        # last closed window's gauges per service, kept in the state
        self.gauges: dict = {"scores": {}, "top": {}, "last_window_end": 0.0}
        levels = {x.upper() for x in config.window.error_levels}
        self.error_codes = np.array(sorted({LEVEL_OF[x] for x in levels if x in LEVEL_OF}),
                                    dtype=np.int8)

    def _window_params(self) -> dict:
        w = self.cfg.window
        return dict(seconds=w.seconds, lateness_windows=w.allowed_lateness_windows,
                    sample_lines=self.cfg.score.sample_lines, idle_windows=w.idle_windows,
                    max_gap_windows=w.max_gap_windows, quorum=w.clock_quorum,
                    max_ahead_windows=w.max_ahead_windows)

    # ---------------------------------------------------------------- input
    def process_block(self, data: bytes, first_line: int, source: str, end_offset: int) -> None:
        events, errors = self.decoder.decode_block(data, first_line, source)
        self.process(events, errors, source)
        self.positions[source] = end_offset

    def process_records(self, records: list[bytes], offsets: list[int], source: str,
                        keys: list | None = None) -> None:
        """Records with their source offsets (Kafka). Joined into one block for the array
        decoders when no record holds a newline; else record by record. ``keys`` (a list, or
        a callable giving it, only called when a record is dead-lettered) are kept on dead
        letters."""
        block = b"\n".join(records)
        if not self.decoder.keep_events and block.count(b"\n") == len(records) - 1:
            events, errors = self.decoder.decode_block(block + b"\n", 0, source)
            at = np.asarray(offsets, dtype=np.int64)
            events.offset = at[events.offset]
            for e in errors:
                e.offset = int(at[e.offset])
        else:
            events, errors = self.decoder.decode(records, offsets, source)
        if errors and keys is not None:
            key_of = dict(zip(offsets, keys() if callable(keys) else keys))
            for e in errors:
                e.key = key_of.get(e.offset)
        self.process(events, errors, source)
        if offsets:
            self.positions[source] = offsets[-1] + 1

    def process(self, events: EventBatch, errors: list[ErrorRecord], source: str) -> None:
        t0 = time.perf_counter()
        for e in errors:
            e.source = e.source or source
        self._dead_letter(errors)
        engine = self.engine
        before, first_line = len(engine.templates), engine.lines_seen
        idx, svc = engine.template_events(events)
        self._new_templates(before)
        if len(events):
            counts = np.bincount(svc, minlength=len(engine.services))
            timeless = int(np.isnan(events.ts).sum())
            with self.stats.lock:
                self.stats.timeless += timeless
                for s in np.flatnonzero(counts).tolist():
                    self.stats.lines[engine.services[s].name] += int(counts[s])
        is_error = np.isin(events.level, self.error_codes)

        def payload(i: int) -> list:  # what a window-stage dead letter needs of record i
            return [events.line(i), int(events.offset[i]), source]
        out = self.windower.add(
            events.ts, idx, svc, is_error, self.template_service, len(engine.services),
            events.message, payload, self.live, time.time())
        events.ts = out.ts  # lines without a time now carry the one they were given
        if len(engine.templates) > before:
            for t in engine.templates[before:]:
                t.first_open_window = float(out.open_from[t.first_seen_line - first_line])
            self._lineage(before)
        if self.sink.write_logs and len(events):
            self.sink.write_log_batch(events, idx, engine, source)
        self._window_dead_letter(
            [self._window_error(Reason.LATE, payload(i)) for i in out.late.tolist()]
            + [self._window_error(Reason.ABSURD_TIMESTAMP, payload(i))
               for i in out.absurd.tolist()]
            + [self._window_error(Reason.LATE, p) for p in out.resolved_late]
            + [self._window_error(Reason.ABSURD_TIMESTAMP, p) for p in out.resolved_absurd])
        self._score(self.windower.close())
        self.stats.batch_latency.observe(time.perf_counter() - t0)

    @staticmethod
    def _window_error(reason: Reason, payload) -> ErrorRecord:
        line, offset, source = payload  # the record as it came (EventBatch.line)
        detail = ("event time before its window closed: the line came more than "
                  "window.allowed_lateness_windows after its service's clock passed it (a "
                  "shipper that delivers this far behind, or in batches, needs it raised)"
                  if reason is Reason.LATE else
                  "event time too far from its service's clock (window.max_ahead_windows)")
        return ErrorRecord(reason, detail, line.encode(), source, offset)

    def tick(self, now: float | None = None) -> None:
        """Live sources: wall time passes, so windows close even when no line comes."""
        if self.live:
            self.windower.tick(time.time() if now is None else now)
            self._score(self.windower.close())

    def finish(self) -> None:
        """End of input: close and score every open window; records still held as
        possible clock jumps were never confirmed and are dead-lettered (those of a service
        too quiet to form a clock are counted)."""
        frames, late, absurd = self.windower.finish()
        self._window_dead_letter([self._window_error(Reason.LATE, p) for p in late]
                                 + [self._window_error(Reason.ABSURD_TIMESTAMP, p)
                                    for p in absurd])
        self._score(frames)

    # ---------------------------------------------------------------- stages' outputs
    def _window_dead_letter(self, errors: list[ErrorRecord]) -> None:
        """Dead letters of lines decoded and templated, then refused by the window stage."""
        with self.stats.lock:
            self.stats.window_dead_lettered += len(errors)
        self._dead_letter(errors)

    def _dead_letter(self, errors: list[ErrorRecord]) -> None:
        if not errors:
            return
        with self.stats.lock:
            for e in errors:  # a record may stand for a run of blank lines
                self.stats.invalid[e.reason.value] += e.count
                self.stats.dead_lettered += e.count
        self.sink.dead_letter(errors)

    def _new_templates(self, before: int) -> None:
        templates = self.engine.templates
        if len(templates) == before:
            return
        added = np.array([t.service for t in templates[before:]], dtype=np.int32)
        self.template_service = np.concatenate((self.template_service, added))
        self.labelled = np.concatenate((self.labelled, np.zeros(len(added), bool)))
        with self.stats.lock:
            for s in added.tolist():
                self.stats.new_templates[self.engine.services[s].name] += 1
            for k, tree in enumerate(self.engine.services):
                self.stats.templates[tree.name] = self.engine.templates_of(k)

    def _lineage(self, before: int) -> None:
        """Lineage of the templates from index ``before`` on, and of their parents (merges
        make new templates only). A merge holds from the first window still open at the
        line that made it: windows its service's clock had passed by then are scored as
        they were, however long they stay open until the batch ends."""
        engine = self.engine
        new = engine.templates[before:]
        self.template_derived = np.concatenate((self.template_derived, np.array(
            [bool(t.parents) for t in new], dtype=bool)))
        self.template_merged_into = np.concatenate((self.template_merged_into,
                                                    np.full(len(new), -1, dtype=np.int32)))
        self.template_merged_from = np.concatenate((self.template_merged_from,
                                                    np.full(len(new), np.nan)))
        for k, t in enumerate(new):
            for p in t.parents:
                self.template_merged_into[engine.template_index[p]] = before + k
                self.template_merged_from[engine.template_index[p]] = t.first_open_window

    def _detect(self, frame) -> Detection:
        """Score a window. Where a finite input ended inside it, it is counted but not
        judged (score 0, no anomaly; a model of a whole window would call it a drop) and
        the models do not learn from it; its expectation is scaled to the part covered."""
        n = len(self.engine.services)
        # merges made after this window could no longer change are not its business
        # (NaN: saved before format 4, the merge holds for every window)
        into = np.where(self.template_merged_from > frame.start, -1, self.template_merged_into)
        args = (self.template_service, n, self.template_derived, into >= 0, into)
        if frame.covered is None:
            return self.detector.score(frame, *args)
        cut = frame.covered < 1.0
        whole = self.detector.score(frame.only(~cut), *args) if (~cut).any() else None
        dry = copy.deepcopy(self.detector).score(frame.only(cut), *args)
        covered = dict(zip(frame.services[cut].tolist(), frame.covered[cut].tolist()))
        shown = [dataclasses.replace(w, anomaly_score=0.0, outage_probability=0.0,
                                     expected_lines=w.expected_lines * covered[w.service],
                                     covered=covered[w.service]) for w in dry.windows]
        if whole is None:
            return Detection(shown, [], np.zeros_like(dry.template_z))
        return Detection(whole.windows + shown, whole.anomalies, whole.template_z)

    def _score(self, frames) -> None:
        engine = self.engine
        names = [s.name for s in engine.services]
        for frame in frames:
            det = self._detect(frame)
            self.sink.write("windows", [window_doc(w, names[w.service]) for w in det.windows])
            docs = []
            for a in det.anomalies:
                tid = engine.template_id(a.template) if a.template >= 0 else None
                text = engine.template_text(a.template) if a.template >= 0 else None
                parents = engine.lineage(a.template)["parents"] if a.template >= 0 else None
                docs.append(anomaly_doc(a, names[a.service], tid, text, parents))
            self.sink.write("anomalies", docs)
            with self.stats.lock:
                for a in det.anomalies:
                    self.stats.anomalies[(names[a.service], a.type, a.severity)] += 1
            for w in det.windows:
                self.gauges["scores"][names[w.service]] = (
                    w.anomaly_score, w.outage_probability, w.error_ratio, w.error_ratio_z,
                    w.expected_error_ratio, w.lines, w.expected_lines)
            self._label(det.template_z, frame.services, names)
            self.gauges["last_window_end"] = frame.end
        if frames:
            self._publish()

    def _label(self, z: np.ndarray, scored: np.ndarray | None, names: list[str]) -> None:
        """The sticky top K templates of each scored service, as gauge rows."""
        keep, other = top_templates(z, self.template_service, self.labelled,
                                    self.cfg.metrics.top_templates)
        mine = (np.ones(len(keep), bool) if scored is None
                else np.isin(self.template_service, scored))
        self.labelled = np.where(mine, keep, self.labelled)
        kept = np.flatnonzero(keep & mine)
        kept = kept[np.lexsort((-np.abs(z[kept]), self.template_service[kept]))]
        templates = self.engine.templates
        rows: dict[int, list] = {}
        for t, s in zip(kept.tolist(), self.template_service[kept].tolist()):
            rows.setdefault(s, []).append((templates[t].template_id, float(z[t])))
        rest = np.flatnonzero(other >= 0)
        for s in rest[mine[other[rest]]].tolist():
            rows.setdefault(s, []).append(("other", float(z[other[s]])))
        self.gauges["top"].update({names[s]: r for s, r in rows.items()})

    def _publish(self) -> None:
        """The gauges of this pipeline's services, as of its last closed window, to /metrics
        (also after a restore, so a partition handed over keeps its gauges)."""
        g = self.gauges
        with self.stats.lock:
            self.stats.scores.update(g["scores"])
            self.stats.top_templates.update(g["top"])
            self.stats.last_window_end = max(self.stats.last_window_end, g["last_window_end"])

    # ---------------------------------------------------------------- state
    def state(self) -> dict:
        """Plain data (PLAN contract 1), saved with the config sections that shaped it so
        a restore can refuse a change it cannot apply and report the ones it applies."""
        return {"config": {k: dataclasses.asdict(getattr(self.cfg, k)) for k in STATE_CONFIG},
                "templates": self.engine.state(), "windows": self.windower.state(),
                "detector": self.detector.state(), "positions": dict(self.positions),
                "gauges": self.gauges}

    def restore(self, state: dict, name: str = "state") -> None:
        """Continue from a saved state under the current config. Raises StateMismatch
        naming the key when a data-bearing key (DATA_KEYS) changed, SnapshotError when the
        tree is not a pipeline state this logml reads; the pipeline is unchanged then."""
        def unreadable(e: Exception):
            return snapshot.SnapshotError(
                f"{name} does not hold a pipeline state this logml reads "
                f"({type(e).__name__}: {e}); delete it to start afresh")
        try:
            changed = _config_changes(state["config"], self.cfg)
        except (KeyError, TypeError, AttributeError) as e:
            raise unreadable(e) from None
        for key in DATA_KEYS:
            if key in changed:
                old, new = changed[key]
                raise snapshot.StateMismatch(
                    f"{name} was saved with {key} = {old!r} but the pipeline now has {new!r}; "
                    f"saved data cannot be carried over: restore {key} = {old!r} or delete "
                    f"the state")
        try:
            engine = TemplateEngine.from_state(state["templates"], self.cfg.template)
            windower = Windower.from_state(state["windows"], **self._window_params())
            detector = Detector.from_state(state["detector"], self.cfg.score,
                                           self.cfg.window.seconds)
            positions = dict(state["positions"])
            gauges = state["gauges"]
        except snapshot.SnapshotError as e:
            raise snapshot.SnapshotError(f"{name}: {e}") from None
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise unreadable(e) from None
        if changed:
            log.info("%s: applying config changed since it was saved: %s", name, ", ".join(
                f"{k} {old!r} -> {new!r}" for k, (old, new) in sorted(changed.items())))
        if engine.rules < MASK_RULES:
            log.info("%s: its templates keep the rules they were made under (%d: request "
                     "paths masked whole); start without the state to get a template per "
                     "request route (docs/state-format.md, rules)", name, engine.rules)
        self.engine, self.windower, self.detector = engine, windower, detector
        self.template_service = np.array([t.service for t in engine.templates], dtype=np.int32)
        self.template_derived = np.zeros(0, dtype=bool)
        self.template_merged_into = np.zeros(0, dtype=np.int32)
        self.template_merged_from = np.zeros(0)
        self._lineage(0)
        self.positions, self.gauges = positions, gauges
        self.labelled = np.zeros(len(engine.templates), bool)
        for rows in gauges["top"].values():
            for tid, _ in rows:
                if tid in engine.template_index:
                    self.labelled[engine.template_index[tid]] = True
        self._publish()

    def save(self, path) -> None:
        snapshot.write(path, STATE_KIND, self.state())

    def load(self, path) -> None:
        self.restore(snapshot.read(path, STATE_KIND), f"state file {path}")


# config sections recorded in the state; of their keys, DATA_KEYS shape the saved data so
# a state saved under another value cannot continue (the others apply on restore)
STATE_CONFIG = ("template", "window", "score")
DATA_KEYS = ("window.seconds",)

log = logging.getLogger("logml.pipeline")


def _config_changes(saved: dict, config: Config) -> dict[str, tuple]:
    """{"section.key": (saved, current)} of the STATE_CONFIG keys that differ."""
    changed = {}
    for section in STATE_CONFIG:
        now = dataclasses.asdict(getattr(config, section))
        before = saved[section]
        for key in sorted(set(now) | set(before)):
            if before.get(key) != now.get(key):
                changed[f"{section}.{key}"] = (before.get(key), now.get(key))
    return changed
