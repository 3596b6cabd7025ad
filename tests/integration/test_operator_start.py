"""What an operator sees when a Kafka-to-Elasticsearch consumer starts on a cluster that
is not ready: real Kafka and Elasticsearch (tests/services/up), unique topics and prefix."""
import signal
import socket
import subprocess
import sys
import time
import uuid

import orjson
import pytest

from kafka_helpers import pipeline_toml, produce, unique_topics
from logml import setup as S

pytestmark = pytest.mark.integration


def records(n: int):
    start = time.time() - 3600
    return [(b"api", orjson.dumps({
        "@timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(start + k)),
        "message": f"request {k} served", "service": {"name": "api"}})) for k in range(n)]


@pytest.fixture
def topics(kafka_env):
    bootstrap = kafka_env["KAFKA_BOOTSTRAP"]
    names = unique_topics(bootstrap, raw_partitions=1)
    produce(bootstrap, names["topic"], records(200))
    return bootstrap, names


def consumer(tmp_path, bootstrap, names, es_url, prefix, *args, **kw):
    cfg = tmp_path / "k.toml"
    cfg.write_text(pipeline_toml(names, bootstrap, "elasticsearch", f"""[elasticsearch]
url = "{es_url}"
index_prefix = "{prefix}"
unavailable_timeout_s = 2.0
"""))
    return [sys.executable, "-m", "logml.cli", "run", "-c", str(cfg), *args]


def test_a_consumer_on_an_elasticsearch_without_logml_setup_says_so(topics, es, es_url,
                                                                    tmp_path):
    bootstrap, names = topics
    prefix = f"opstart{uuid.uuid4().hex[:6]}"
    try:
        p = subprocess.run(consumer(tmp_path, bootstrap, names, es_url, prefix,
                                    "--exit-when-idle", "2"),
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        warning = [line for line in p.stderr.splitlines() if "warning" in line]
        assert len(warning) == 1 and f"no index template {prefix}-logs" in warning[0]
        assert f"logml setup --es {es_url} --prefix {prefix}" in warning[0]
        # after setup: nothing to say
        assert S.setup(es_url, prefix=prefix).ok
        p = subprocess.run(consumer(tmp_path, bootstrap, names, es_url, prefix,
                                    "--exit-when-idle", "2"),
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0 and "warning" not in p.stderr, p.stderr
    finally:
        es.indices.delete(index=f"{prefix}-*", ignore_unavailable=True, allow_no_indices=True)
        for kind in S.KINDS:
            es.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-{kind}")


def test_elasticsearch_down_at_the_start_is_reported_once_a_pause(topics, tmp_path):
    """The consumer waits for Elasticsearch (loses nothing); its log says so once per
    pause with the URL, without the HTTP transport's warning for every attempt."""
    bootstrap, names = topics
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    proc = subprocess.Popen(consumer(tmp_path, bootstrap, names, dead, "opdown"),
                            stderr=subprocess.PIPE, text=True)
    time.sleep(9)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert "sink unavailable" in err and dead in err, err
    assert "node_pool" not in err, err
    assert len(err.splitlines()) < 15, err
