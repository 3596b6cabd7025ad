"""Elasticsearch sink: buffered bulk writes with deterministic ids (DESIGN.md, "sink").

``write`` buffers; a full chunk (``bulk_max_docs`` documents or ``bulk_max_bytes``) goes
at once to a thread, up to ``max_in_flight`` bulk requests at a time, so indexing overlaps
processing; when no request is in flight, whatever is buffered goes too.
``backlog_full()`` (never blocks) tells the caller to pause its input, and ``relieve()``
waits for the oldest requests until it is not full (the newer ones stay in flight);
``write`` itself waits only when one chunk more than the threads can take is already
waiting.
``flush`` is the barrier: it returns once every document written before it is acknowledged
by Elasticsearch or dead-lettered, so the caller may commit its input offsets after it:

* every document goes to ``<prefix>-<kind>-YYYY.MM.DD`` (the UTC day of its ``@timestamp``)
  with op ``index`` and its deterministic ``_id``: a replay overwrites, never duplicates;
* items rejected for load (429, 503, ``es_rejected_execution_exception``), for the state of
  the cluster (read-only block, missing/closed index) or by a server error (5xx) are retried
  with capped, jittered exponential backoff, up to ``max_retries`` rounds in a row, then
  ``SinkUnavailable`` (buffer kept, as below);
* items Elasticsearch refuses for what they are (4xx: mapping or parse errors) become
  ``ErrorRecord(Reason.SINK_REJECTED)`` (raw = the document, source = the index, key = its
  service.name) handed to ``dead_letter``;
* when Elasticsearch cannot be reached (connection refused, timeouts, whole-request 429/5xx)
  the sink keeps trying with backoff for ``unavailable_timeout_s`` and then raises
  ``SinkUnavailable``. Nothing is dropped: the documents not yet acknowledged stay
  buffered and the next ``flush()`` sends them (the caller pauses and commits nothing).

Counters in ``stats.bulk_errors``: ``rejected`` (dead-lettered items), ``retried`` (items
sent again), ``unavailable`` (failed bulk requests). ``stats.bulk_latency`` observes every
bulk request.
"""
from __future__ import annotations

import datetime as _dt
import random
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

import numpy as np
import orjson

from ..config import ElasticsearchConfig
from ..docs import LogDocs, day_name
from ..errors import ErrorRecord, Reason
from ..metrics import Stats
from . import SinkUnavailable as _SinkUnavailableBase

KINDS = ("logs", "windows", "anomalies")
RETRY_STATUS = frozenset({429, 502, 503, 504})
# refused for load or for the state of the cluster/index, not for what the document is
RETRY_TYPES = frozenset({"es_rejected_execution_exception", "circuit_breaking_exception",
                         "unavailable_shards_exception", "cluster_block_exception",
                         "index_not_found_exception", "index_closed_exception"})


class SinkUnavailable(_SinkUnavailableBase):
    """Elasticsearch did not take the documents in time; they are still buffered.

    A ``logml.sinks.SinkUnavailable``, so the consumer's pause-and-retry handles it like
    the other sinks' outages."""

    def __init__(self, message: str, pending: int):
        super().__init__(message)
        self.pending = pending


def index_name(prefix: str, kind: str, timestamp) -> str:
    """``<prefix>-<kind>-YYYY.MM.DD`` from the UTC day of an ECS ``@timestamp``."""
    return f"{prefix}-{kind}-{_utc_day(timestamp)}"


def _utc_day(ts) -> str:
    if isinstance(ts, str):
        # logml writes "YYYY-MM-DDTHH:MM:SS.mmmZ" (docs.iso): the date is the first 10 chars
        if len(ts) >= 10 and (ts.endswith("Z") or len(ts) == 10) and ts[4] == "-" \
                and ts[7] == "-":
            return f"{ts[0:4]}.{ts[5:7]}.{ts[8:10]}"
        try:
            d = _dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"@timestamp {ts!r} is not ISO 8601") from None
        if d.tzinfo is not None:
            d = d.astimezone(_dt.timezone.utc)
        return d.strftime("%Y.%m.%d")
    if isinstance(ts, (int, float)) and not isinstance(ts, bool):
        secs = ts / 1000.0 if ts > 1e11 else float(ts)  # epoch millis or seconds
        return time.strftime("%Y.%m.%d", time.gmtime(secs))
    raise ValueError(f"no usable @timestamp ({ts!r})")


def _reason(error) -> str:
    if not isinstance(error, dict):
        return str(error)
    text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
    cause = error.get("caused_by")
    if isinstance(cause, dict):
        text += f" (caused by {cause.get('type')}: {cause.get('reason', '')})"
    return text


class _Sent:
    """What became of one bulk chunk: entries not acknowledged (kept for the next flush),
    records to dead-letter, and the outage that stopped it (None: all settled)."""
    __slots__ = ("rest", "rejected", "error")

    def __init__(self, rest, rejected, error):
        self.rest, self.rejected, self.error = rest, rejected, error


class ElasticsearchSink:
    """Bulk chunks (by documents and bytes) are sent by up to ``max_in_flight`` threads while
    the pipeline goes on; ``flush`` is the barrier the caller commits after."""

    def __init__(self, config: ElasticsearchConfig, stats: Stats,
                 dead_letter: Callable[[list[ErrorRecord]], None], client=None, *,
                 unavailable_timeout_s: float = 60.0, request_timeout_s: float = 30.0,
                 backoff_base_s: float = 0.1, backoff_max_s: float = 5.0):
        self.config = config
        self.prefix = config.index_prefix
        self.write_logs = config.write_logs
        self.stats = stats
        self.dead_letter = dead_letter
        self.chunk_docs = max(1, int(config.bulk_max_docs))
        self.chunk_bytes = max(1, int(config.bulk_max_bytes))
        self.max_in_flight = max(1, int(config.max_in_flight))
        self.max_retries = max(0, int(config.max_retries))
        self.unavailable_timeout_s = unavailable_timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._owns_client = client is None
        if client is None:
            from elasticsearch import Elasticsearch
            # The sink does its own retries with backoff and a time budget, so the
            # transport does not retry on its own (max_retries=0): one attempt, one count.
            client = Elasticsearch(config.url, request_timeout=request_timeout_s,
                                   retry_on_timeout=True, max_retries=0,
                                   http_compress=bool(config.compress),
                                   connections_per_node=self.max_in_flight + 1)
        self.client = client
        # (index, _id, source as JSON bytes), in write order, not yet handed to a request
        self._buffer: list[tuple[str, str, bytes]] = []
        self._buffer_bytes = 0
        # chunks handed to the threads and not yet settled, oldest first
        self._inflight: list[tuple[Future, int, int]] = []  # (future, documents, bytes)
        self._unsettled: list[_Sent] = []  # settled with an outage: redone by flush
        self._pool: ThreadPoolExecutor | None = None
        self._log_docs = LogDocs()
        self._heads: dict[str, bytes] = {}  # index -> start of its action line
        self.waited = 0.0  # seconds write/relieve waited for a request (backpressure)

    # ------------------------------------------------------------------ interface
    @property
    def pending(self) -> int:
        """Documents buffered or in flight, not yet acknowledged by Elasticsearch."""
        return (len(self._buffer) + sum(n for _, n, _ in self._inflight)
                + sum(len(r.rest) for r in self._unsettled))

    def backlog_full(self) -> bool:
        """True when the caller should stop taking input (pause its partitions) until a
        ``flush``: every thread is busy and a chunk more waits, or a chunk met an outage.
        Never blocks."""
        self._collect(block=False)
        waiting = sum(b for _, _, b in self._inflight) + self._buffer_bytes
        return (bool(self._unsettled) or len(self._inflight) > self.max_in_flight
                or waiting > (self.max_in_flight + 1) * self.chunk_bytes)

    def relieve(self) -> bool:
        """Backpressure without the ``flush`` barrier: wait for the oldest chunks until the
        backlog is no longer full, while newer ones stay in flight. False when a chunk met
        an outage (only ``flush`` retries it)."""
        t0 = time.perf_counter()
        while not self._unsettled and self._inflight and self.backlog_full():
            self._settle(self._inflight.pop(0))
        self.waited += time.perf_counter() - t0
        return not self._unsettled

    def write(self, kind: str, docs: list[tuple[str, dict]]) -> None:
        """Buffer (id, document) pairs; ``dlq`` is not ours (the caller routes it)."""
        if kind not in KINDS or not docs:
            return
        if kind == "logs" and not self.write_logs:
            return
        bad: list[ErrorRecord] = []
        entries = []
        for doc_id, doc in docs:
            try:
                index = index_name(self.prefix, kind, doc.get("@timestamp"))
                src = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
            except (ValueError, TypeError) as e:  # orjson.JSONEncodeError is a TypeError
                svc = doc.get("service") if isinstance(doc, dict) else None
                name = svc.get("name") if isinstance(svc, dict) else None
                bad.append(ErrorRecord(Reason.SINK_REJECTED, f"not indexable: {e}",
                                       _raw(doc), f"{self.prefix}-{kind}", -1,
                                       key=name.encode() if isinstance(name, str) else None))
                continue
            entries.append((index, str(doc_id), src))
        if bad:
            self._reject(bad)
        self._add(entries)

    def write_log_batch(self, events, idx, engine, source: str) -> None:
        """Buffer the per-line documents of a batch, built as bytes (docs.LogDocs)."""
        if not self.write_logs or not len(events):
            return
        days, ids, docs = self._log_docs.build(events, idx, engine, source)
        names = {d: f"{self.prefix}-logs-{day_name(d)}" for d in np.unique(days).tolist()}
        index = [names[d] for d in days.tolist()] if len(names) > 1 else \
            [next(iter(names.values()))] * len(ids)
        self._add(list(zip(index, ids, docs)))

    def flush(self) -> None:
        """Send everything buffered; return when all of it, and every chunk sent before, is
        acknowledged or dead-lettered.

        Raises SinkUnavailable (documents kept for the next flush) when Elasticsearch
        stays unreachable for ``unavailable_timeout_s`` or refuses items for load or index
        state more than ``max_retries`` rounds in a row.
        """
        retry = [e for r in self._unsettled for e in r.rest]
        self._unsettled = []
        if retry:  # what an outage left, first and in order
            self._buffer[:0] = retry
            self._buffer_bytes += sum(_size(e) for e in retry)
        while self._buffer:
            self._seal(self._buffer)
        self._collect(block=True)
        if self._unsettled:
            why = self._unsettled[-1].error
            self._buffer = [e for r in self._unsettled for e in r.rest]
            self._buffer_bytes = sum(_size(e) for e in self._buffer)
            self._unsettled = []
            raise SinkUnavailable(f"{why}; {len(self._buffer)} documents kept for the next "
                                  "flush", len(self._buffer))

    def close(self) -> None:
        """Wait for the requests in flight and close the client (if the sink made it).
        Documents not flushed are not sent: call flush() first."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._owns_client:
            self.client.close()

    # ------------------------------------------------------------------ internals
    def _add(self, entries) -> None:
        if not entries:
            return
        self._buffer.extend(entries)
        self._buffer_bytes += sum(len(src) for _, _, src in entries) + _ACTION * len(entries)
        while (len(self._buffer) >= self.chunk_docs or self._buffer_bytes >= self.chunk_bytes) \
                and not self._unsettled:
            self._seal(self._buffer)
        self._collect(block=False)
        if self._buffer and not self._inflight and not self._unsettled:
            # no request in flight: send what there is now (the window documents of a
            # run without per-line documents, a slow stream), indexed while the pipeline
            # goes on, rather than all of it at the barrier before the next commit
            self._seal(self._buffer)

    def _seal(self, buf) -> None:
        """Hand the oldest chunk's worth of the buffer to a thread."""
        n, size = 0, 0
        limit_docs, limit_bytes = self.chunk_docs, self.chunk_bytes
        for entry in buf:
            if n >= limit_docs or (n and size + _size(entry) > limit_bytes):
                break
            n += 1
            size += _size(entry)
        chunk = buf[:n]
        del buf[:n]
        self._buffer_bytes -= size
        # bounded memory: while every thread is busy and a chunk more waits, wait here
        if len(self._inflight) > self.max_in_flight:
            t0 = time.perf_counter()
            while len(self._inflight) > self.max_in_flight:
                self._settle(self._inflight.pop(0))
            self.waited += time.perf_counter() - t0
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_in_flight, "logml-es-bulk")
        self._inflight.append((self._pool.submit(self._send, chunk), n, size))

    def _collect(self, block: bool) -> None:
        """Settle finished chunks (all of them when block); dead letters go out from here,
        the caller's thread."""
        while self._inflight and (block or self._inflight[0][0].done()):
            self._settle(self._inflight.pop(0))

    def _settle(self, item) -> None:
        result: _Sent = item[0].result()
        if result.rejected:
            self._reject(result.rejected)
        if result.error is not None:
            self._unsettled.append(result)

    def _send(self, chunk: list) -> _Sent:
        """One chunk to Elasticsearch with its retries (in a thread of the pool)."""
        rejected: list[ErrorRecord] = []
        down_since: float | None = None
        down_attempt = 0
        item_round = 0
        per_request = len(chunk)
        while chunk:
            part = chunk[:per_request]
            try:
                resp = self._bulk(part)
            except _RequestTooLarge:
                if per_request > 1:
                    per_request = max(1, per_request // 2)
                    continue
                index, doc_id, src = part[0]
                rejected.append(ErrorRecord(Reason.SINK_REJECTED, "document larger than "
                                            "http.max_content_length", src, index, -1,
                                            key=_service_key(src)))
                del chunk[:1]
                continue
            except _Unavailable as e:
                self._count("unavailable", 1)
                now = time.monotonic()
                if down_since is None:
                    down_since = now
                waited = now - down_since
                if waited >= self.unavailable_timeout_s:
                    return _Sent(chunk, rejected, f"Elasticsearch at {self.config.url} "
                                 f"unavailable for {waited:.0f} s ({e})")
                time.sleep(min(self._backoff(down_attempt),
                               max(0.0, self.unavailable_timeout_s - waited)))
                down_attempt += 1
                continue
            down_since, down_attempt = None, 0
            retry, refused, why = self._classify(resp, part)
            rejected.extend(refused)
            chunk[:len(part)] = retry
            if retry:
                item_round += 1
                if item_round > self.max_retries:
                    return _Sent(chunk, rejected, f"Elasticsearch still refused {len(retry)} "
                                 f"documents after {self.max_retries} retries ({why})")
                self._count("retried", len(retry))
                time.sleep(self._backoff(item_round - 1))
            else:
                item_round = 0
        return _Sent([], rejected, None)

    def _bulk(self, chunk):
        from elasticsearch import ApiError, TransportError
        heads = self._heads
        parts = []
        for index, doc_id, src in chunk:
            head = heads.get(index)
            if head is None:
                head = heads[index] = b'{"index":{"_index":' + orjson.dumps(index) + b',"_id":"'
            # logml's ids are hex digests: no escaping, and no orjson.dumps per document
            # (each of its results holds a buffer of kilobytes while it is alive)
            parts += (head, doc_id.encode() if doc_id.isalnum() and doc_id.isascii()
                      else orjson.dumps(doc_id)[1:-1], b'"}}\n', src, b"\n")
        body = b"".join(parts)
        t0 = time.perf_counter()
        try:
            resp = self.client.bulk(operations=body,
                                    filter_path="errors,items.*.status,items.*.error")
        except ApiError as e:
            status = getattr(e, "status_code", None) or getattr(e.meta, "status", None)
            if status == 413:
                raise _RequestTooLarge() from e
            raise _Unavailable(f"bulk request failed with HTTP {status}: {e}") from e
        except TransportError as e:
            raise _Unavailable(f"{type(e).__name__}: {e}") from e
        finally:
            with self.stats.lock:
                self.stats.bulk_latency.observe(time.perf_counter() - t0)
        return resp

    def _classify(self, resp, chunk):
        """(entries to retry, error records to dead-letter, a retry reason) of a response."""
        if not resp.get("errors"):
            return [], [], ""
        items = resp.get("items") or []
        if len(items) != len(chunk):  # cannot tell which failed: send the chunk again
            return list(chunk), [], "bulk response items do not match the request"
        retry, rejected, why = [], [], ""
        for item, entry in zip(items, chunk):
            r = next(iter(item.values()))
            status = int(r.get("status", 0))
            if status < 300:
                continue
            error = r.get("error")
            etype = error.get("type") if isinstance(error, dict) else None
            if status in RETRY_STATUS or status >= 500 or etype in RETRY_TYPES:
                retry.append(entry)
                why = why or f"HTTP {status} {_reason(error)}"
            else:
                index, _id, src = entry
                rejected.append(ErrorRecord(Reason.SINK_REJECTED, _reason(error), src,
                                            index, -1, key=_service_key(src)))
        return retry, rejected, why

    def _reject(self, records: list[ErrorRecord]) -> None:
        self.dead_letter(records)
        self._count("rejected", len(records))

    def _count(self, kind: str, n: int) -> None:
        with self.stats.lock:
            self.stats.bulk_errors[kind] += n

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff, capped, with jitter (a random point in its upper half)."""
        cap = min(self.backoff_max_s, self.backoff_base_s * (2 ** attempt))
        return random.uniform(cap / 2, cap)


_ACTION = 80  # bytes of an action line, about


def _size(entry) -> int:
    return len(entry[2]) + _ACTION


class _Unavailable(Exception):
    pass


class _RequestTooLarge(Exception):
    pass


def _raw(doc) -> bytes:
    try:
        return orjson.dumps(doc, default=str, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:
        return repr(doc).encode("utf-8", "replace")


def _service_key(src: bytes) -> bytes | None:
    """The document's service.name as the dead letter's key (the input topic's key)."""
    try:
        name = orjson.loads(src).get("service", {}).get("name")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return name.encode() if isinstance(name, str) else None
