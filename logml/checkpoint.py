"""Checkpoints of streaming pipelines in the compacted state topic (``logml.state``).

One record per input partition, key ``<input topic>/<partition>``, value the pipeline's
state as ``logml.snapshot`` encodes it (templates, baselines, OPEN windows, positions).
Headers: ``logml.position`` (the input offset the state has consumed up to) and
``logml.dlq_mark`` (JSON: dead-letter topic partition -> end offset when the checkpoint
was written; dead letters a previous owner wrote after it are found from there, so a
replay does not write them twice). Compaction keeps the latest record per key.

Loading reads the topic to its end: a key that is not there has no checkpoint (a fresh
start is right); a topic that cannot be read is an error the caller retries, never "no
checkpoint". A checkpoint that cannot be decoded is an error of that key alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from confluent_kafka import KafkaException, Producer

from . import snapshot
from .pipeline import STATE_KIND
from .sources.kafka import ReadError, read_to_end


class CheckpointUnavailable(Exception):
    """The state topic could not be read to its end, or a checkpoint not written."""


@dataclass
class Checkpoint:
    state: dict
    position: int | None  # input offset the state has consumed up to
    dlq_mark: dict[int, int] = field(default_factory=dict)


class CheckpointStore:
    def __init__(self, client: dict, topic: str, producer: Producer, stall_s: float = 15.0):
        self.client, self.topic, self.producer = client, topic, producer
        self.stall_s = stall_s
        self.failed: list[str] = []

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self.failed.append(f"{msg.key().decode(errors='replace')}: {err}")

    def save(self, key: str, state: dict, position: int | None,
             dlq_mark: dict[int, int]) -> None:
        """Queue a checkpoint; it is durable once ``flush`` returned."""
        headers = [("logml.dlq_mark", orjson.dumps({str(p): o for p, o in dlq_mark.items()}))]
        if position is not None:
            headers.append(("logml.position", str(position).encode()))
        try:
            self.producer.produce(self.topic, key=key.encode(),
                                  value=snapshot.dumps(STATE_KIND, state), headers=headers,
                                  on_delivery=self._delivered)
        except (KafkaException, BufferError) as e:
            raise CheckpointUnavailable(f"checkpoint {key} not queued: {e}") from None
        self.producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        left = self.producer.flush(timeout)
        if left or self.failed:
            failed, self.failed = self.failed, []
            raise CheckpointUnavailable(f"state topic {self.topic}: {left} messages not "
                                        f"acknowledged within {timeout:.0f} s {failed[:3]}")

    def load(self, keys: set[str]) -> tuple[dict[str, Checkpoint], dict[str, str]]:
        """(checkpoints found, errors of keys whose checkpoint cannot be decoded). Keys in
        neither have no checkpoint. Raises CheckpointUnavailable when the topic cannot be
        read to its end."""
        latest: dict[str, object] = {}
        try:
            for msg in read_to_end(self.client, self.topic, self.stall_s):
                k = msg.key().decode("utf-8", "replace") if msg.key() else ""
                if k in keys:
                    latest[k] = msg if msg.value() is not None else None  # None: tombstone
        except ReadError as e:
            raise CheckpointUnavailable(str(e)) from None
        found, bad = {}, {}
        for k, msg in latest.items():
            if msg is None:
                continue
            try:
                found[k] = _decode(msg)
            except (snapshot.SnapshotError, ValueError, TypeError, AttributeError) as e:
                bad[k] = (f"checkpoint {k} in {self.topic} cannot be read ({e}); to start "
                          f"that partition afresh, write a tombstone (null value) for key {k}")
        return found, bad


def _decode(msg) -> Checkpoint:
    headers = dict(msg.headers() or [])
    state = snapshot.loads(msg.value(), STATE_KIND)
    pos = headers.get("logml.position")
    mark = orjson.loads(headers.get("logml.dlq_mark") or b"{}")
    return Checkpoint(state, int(pos) if pos is not None else None,
                      {int(p): int(o) for p, o in mark.items()})
