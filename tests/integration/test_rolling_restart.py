"""Three consumers started on one host with the README's command (``logml run -c
pipelines/kafka.toml``, the shipped file on this test's topics) share a live stream while
they are restarted one after the other every few seconds (SIGTERM, start again: a member
leaving and joining, partitions handed over each time). Each stops cleanly, each takes its
own metrics port from the shipped range, and together they write what one uninterrupted
consumer writes: windows are continued across hand-overs, never closed early."""
from __future__ import annotations

import re
import threading
import time

import pytest
from elasticsearch import Elasticsearch

from handover_kit import (create_input, dead_letters, delete_indices, differences, ends,
                          es_documents, new_run, produce, run, scenario_records,
                          shipped_config, start, wait_committed)
from servicekit import stop_group

pytestmark = pytest.mark.integration
RESTART_EVERY_S = 3.0


def up(log, n: int, timeout: float = 60) -> None:
    """Wait for the n-th start of a consumer logging to ``log`` to be up (serving metrics,
    so it stops gracefully on SIGTERM)."""
    deadline = time.time() + timeout
    while log.read_text().count("metrics on http") < n:
        assert time.time() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)


def test_rolling_restart_of_three_consumers_matches_an_uninterrupted_run(kafka_env, es_env,
                                                                          tmp_path):
    bootstrap, es_url = kafka_env["KAFKA_BOOTSTRAP"], es_env["ES_URL"]
    es = Elasticsearch(es_url, request_timeout=60)
    topic = create_input(bootstrap)
    # event times just ahead of the wall clock: what the stream holds is live data, and
    # no window can close on wall time before its records arrived, however slow a run is
    records = scenario_records(tmp_path, start=(time.time() // 60 + 2) * 60)
    rolling, single = new_run(bootstrap, topic), new_run(bootstrap, topic)
    cfg = shipped_config(tmp_path / "kafka.toml", rolling)
    logs = [tmp_path / f"consumer{k}.log" for k in range(3)]
    producer = threading.Thread(target=produce, args=(bootstrap, topic, records),
                                kwargs={"pace_s": 1.0, "chunks": 20})
    procs = []
    try:
        producer.start()
        procs = [start(cfg, log) for log in logs]
        started = [1, 1, 1]
        restarts, k = 0, 0
        while producer.is_alive() or restarts < 6:
            time.sleep(RESTART_EVERY_S)
            up(logs[k], started[k])
            stop_group(procs[k])
            assert procs[k].returncode == 0, logs[k].read_text()[-3000:]
            procs[k] = start(cfg, logs[k])
            started[k] += 1
            restarts, k = restarts + 1, (k + 1) % 3
        producer.join()
        wait_committed(bootstrap, rolling, ends(records), timeout=180)
        for proc, log, n in zip(procs, logs, started):
            up(log, n)
            stop_group(proc)
            assert proc.returncode == 0, log.read_text()[-3000:]
        texts = [log.read_text() for log in logs]
        for text in texts:
            assert "Traceback" not in text, text[-3000:]
            assert re.search(r"opened \[\d", text), text[-3000:]  # each had partitions
            assert sum(int(n) for n in re.findall(r"done: (\d+) records", text)) > 0
        ports = [int(re.search(r"metrics on http://[\d.]+:(\d+)/", t).group(1)) for t in texts]
        assert len(set(ports)) == 3 and all(9108 <= p <= 9117 for p in ports), ports

        assert run(shipped_config(tmp_path / "single.toml", single), tmp_path / "single.log") \
            == 0, (tmp_path / "single.log").read_text()[-3000:]
        got, want = es_documents(es, rolling["prefix"]), es_documents(es, single["prefix"])
        assert got.keys() == want.keys(), (len(got.keys() - want.keys()),
                                           len(want.keys() - got.keys()))
        assert got == want, differences(got, want)
        assert {k for k in got if k[0] == "anomalies"}, "the scenario has incidents"
        dl = dead_letters(bootstrap, rolling["dlq_topic"])
        assert len(set(dl)) == len(dl) and dl == dead_letters(bootstrap, single["dlq_topic"])
    finally:
        producer.join()
        for proc in procs:
            stop_group(proc)
        for names in (rolling, single):
            delete_indices(es, names["prefix"])
        es.close()
