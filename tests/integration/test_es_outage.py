"""Elasticsearch down while the consumer runs: it pauses, commits nothing, loses nothing,
and catches up once Elasticsearch is back. Stops and restarts the real Elasticsearch."""
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest
from elasticsearch import Elasticsearch

from kafka_helpers import committed, pipeline_toml, produce, unique_topics

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_consumer_pauses_while_elasticsearch_is_down_and_loses_nothing(kafka_env, es_env,
                                                                       tmp_path):
    bootstrap, es_url = kafka_env["KAFKA_BOOTSTRAP"], es_env["ES_URL"]
    names = unique_topics(bootstrap, raw_partitions=2)
    prefix = f"outage{uuid.uuid4().hex[:6]}"
    start = time.time() - 3600
    records = [(b"api", orjson.dumps({
        "@timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(start + k)),
        "message": f"request {k} served in {k % 50} ms", "service": {"name": "api"}}))
        for k in range(3000)]
    produce(bootstrap, names["topic"], records)
    cfg = tmp_path / "k.toml"
    cfg.write_text(pipeline_toml(names, bootstrap, "elasticsearch", f"""[elasticsearch]
url = "{es_url}"
index_prefix = "{prefix}"
unavailable_timeout_s = 3.0
"""))
    down = subprocess.run([str(REPO / "tests/services/down"), "elasticsearch"],
                          capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    log = open(tmp_path / "consumer.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "logml.cli", "run", "-c", str(cfg)],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(20)
        assert proc.poll() is None, "the consumer must keep running while the sink is down"
        offsets = committed(bootstrap, names["group"], names["topic"], 2)
        # nothing acknowledged yet: no commit, or the start (0) committed with a partition's
        # first checkpoint at its assignment
        assert all(o <= 0 for o in offsets.values()), offsets
        up = subprocess.run([str(REPO / "tests/services/up"), "elasticsearch"],
                            capture_output=True, text=True, timeout=600)
        assert up.returncode == 0, up.stderr[-3000:]
        es = Elasticsearch(es_url)
        deadline = time.time() + 180
        count = 0
        while time.time() < deadline:
            try:
                es.indices.refresh(index=f"{prefix}-logs-*")
                count = es.count(index=f"{prefix}-logs-*")["count"]
            except Exception:
                count = 0
            if count >= len(records):
                break
            time.sleep(2)
        assert count == len(records)
        ends = committed(bootstrap, names["group"], names["topic"], 2)
        assert sum(o for o in ends.values() if o > 0) == len(records), ends
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()
        subprocess.run([str(REPO / "tests/services/up"), "elasticsearch"], capture_output=True,
                       timeout=600)
        Elasticsearch(es_url).options(ignore_status=404).indices.delete(index=f"{prefix}-*")
    text = (tmp_path / "consumer.log").read_text()
    assert "sink unavailable" in text
