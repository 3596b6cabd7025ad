"""A recent backlog whose delivery stalls (a shipper reconnecting, Filebeat catching up)
read by a real consumer: the stall is no silence and no line turns late. Wall time
anchored a caught-up partition as soon as its clock was within max_ahead (an hour) of it,
so during a stall the stream ran on and the rest of the backlog came in late (a helper's
probe, session 22: 480 late lines of a 20-minute-old backlog stalled 10 minutes). Here
scaled to 10-second windows: the backlog is 400 to 200 s old, the stall 120 s."""
import collections
import time

import orjson
import pytest

from kafka_helpers import (committed, consumer, event, pipeline_toml, produce, read_all,
                           unique_topics, wait)

pytestmark = pytest.mark.integration
SERVICES = ("api", "web")
STALL_S = 120.0


def lines(t0: float, t1: float, seq: int) -> list[tuple[bytes, bytes]]:
    """A line a second for each service over [t0, t1)."""
    out = []
    t = t0
    while t < t1:
        for s in SERVICES:
            seq += 1
            out.append((s.encode(), event(s, t, seq)))
        t += 1.0
    return out


def test_a_stalled_recent_backlog_is_counted_not_made_late(kafka_env, tmp_path):
    bootstrap = kafka_env["KAFKA_BOOTSTRAP"]
    names = unique_topics(bootstrap, raw_partitions=1)
    now = time.time()
    first = lines(now - 400, now - 200, 0)
    produce(bootstrap, names["topic"], first)
    cfg = tmp_path / "k.toml"
    cfg.write_text(pipeline_toml(names, bootstrap, "jsonl", f"""[output]
dir = "{tmp_path / 'out'}"
[window]
seconds = 10
"""))
    with consumer(cfg, tmp_path / "consumer.log"):
        def through(n):
            return lambda: max(committed(bootstrap, names["group"], names["topic"], 1)[0],
                               0) >= n
        wait("the first part committed", through(len(first)), 300)
        time.sleep(STALL_S)  # caught up, nothing arrives: the shipper is away
        rest = lines(now - 200, time.time(), len(first))
        produce(bootstrap, names["topic"], rest)
        wait("the rest committed", through(len(first) + len(rest)), 120)
        time.sleep(3)
    dead = read_all(bootstrap, names["dlq_topic"])
    reasons = collections.Counter(dict(m.headers())["logml.reason"].decode() for m in dead)
    assert not dead, f"dead letters {dict(reasons)}"
    per_window = collections.Counter()
    for m in read_all(bootstrap, names["topic"]):
        e = orjson.loads(m.value())
        per_window[(e["service"]["name"], e["@timestamp"][:18])] += 1
    windows = [orjson.loads(x) for x in (tmp_path / "out" / "windows.jsonl").read_bytes()
               .splitlines()]
    counted = {(w["service"]["name"], w["@timestamp"][:18]): w["logml"]["lines"]
               for w in windows}
    assert len(windows) == len(counted)  # no window written twice
    # windows from the backlog's start to past the stall, every one of them whole
    assert len(counted) >= 2 * 35, sorted(counted)[-6:]
    assert {k: per_window[k] for k in counted} == counted
