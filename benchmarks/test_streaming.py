"""Streaming throughput of one consumer, Kafka to Elasticsearch and metrics, on loopback,
against embedded mode on the same events. Needs the real services (tests/services/up)."""
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest

from logml.config import load
from logml.generate import write
from logml.run import run_file

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "integration")]
from kafka_helpers import pipeline_toml, produce, unique_topics  # noqa: E402
from servicekit import services  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("write_logs", [False, True])
def test_consumer_throughput_vs_embedded(tmp_path, record, write_logs):
    env = services("kafka", "elasticsearch")
    names = unique_topics(env["KAFKA_BOOTSTRAP"])
    events, _ = write(tmp_path / "gen", seed=9, hours=2, services=6, start=1_764_000_000.0,
                      rate=10.0)
    lines = events.read_bytes().splitlines()
    produce(env["KAFKA_BOOTSTRAP"], names["topic"],
            [(orjson.loads(x)["service"]["name"].encode(), x) for x in lines])
    t0 = time.perf_counter()
    run_file(load(overrides={"output.dir": str(tmp_path / "emb")}), str(events), progress=False)
    embedded_s = time.perf_counter() - t0
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    cfg = tmp_path / "k.toml"
    cfg.write_text(pipeline_toml(names, env["KAFKA_BOOTSTRAP"], "elasticsearch", f"""
batch_size = 20000
[elasticsearch]
url = "{env['ES_URL']}"
index_prefix = "{prefix}"
write_logs = {str(write_logs).lower()}
"""))
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "logml.cli", "run", "-c", str(cfg),
                        "--exit-when-idle", "2"], capture_output=True, text=True, timeout=1800,
                       env={**os.environ, "KAFKA_BOOTSTRAP": env["KAFKA_BOOTSTRAP"]})
    wall = time.perf_counter() - t0
    assert p.returncode == 0, p.stderr[-3000:]
    m = re.search(r"done: (\d+) records in ([\d.]+) s \((\d+) records/s while busy\); "
                  r"seconds in (.*)", p.stderr)
    assert m and int(m.group(1)) == len(lines), p.stderr[-2000:]
    parts = dict((k, float(v)) for k, v in (x.split() for x in m.group(4).split(", ")))
    record(f"streaming_{'logs' if write_logs else 'nologs'}", lines=len(lines),
           write_logs=write_logs, consumer_lines_per_s_busy=int(m.group(3)),
           consumer_lines_per_s_wall=round(len(lines) / wall),
           embedded_lines_per_s=round(len(lines) / embedded_s),
           ratio_to_embedded=round(int(m.group(3)) / (len(lines) / embedded_s), 2),
           seconds=parts, bottleneck=max(parts, key=parts.get))
    import urllib.request
    urllib.request.urlopen(urllib.request.Request(f"{env['ES_URL']}/{prefix}-*",
                                                  method="DELETE"))
