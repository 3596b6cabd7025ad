"""The streaming parts that need no broker: crash-point hook, dead-letter ids, metrics
ports, and "could not read the state" never being taken for "no state"."""
import logging
import socket
import subprocess
import sys
import time

import pytest
from confluent_kafka import Producer

from logml.checkpoint import CheckpointStore, CheckpointUnavailable
from logml.config import ConfigError, KafkaConfig, load, port_range
from logml.errors import ErrorRecord, Reason
from logml.metrics import MetricsPortError, Stats, serve
from logml.sinks import SinkUnavailable
from logml.sinks.kafka_dlq import DeadLetterProducer, dead_letter_id
from logml.sources.kafka import (KafkaSource, QuietLog, ReadError, client_settings,
                                 read_to_end)
from logml.streaming import Faults, StreamingError

NOWHERE = "127.0.0.1:1"  # nothing listens there


def test_fault_hook_ends_the_process_at_the_nth_pass_as_kill_9_would():
    code = ("from logml.streaming import Faults\n"
            "f = Faults('after_bulk:2,checkpoint')\n"
            "f.hit('mid_batch'); f.hit('after_bulk'); print('first', flush=True)\n"
            "f.hit('after_bulk'); print('second', flush=True)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 137
    assert p.stdout == "first\n"
    assert "fault injected at after_bulk #2" in p.stderr
    for bad in ("after_flush:1", "mid_batch:x", "mid_batch:1:pause", "mid_batch:1:stop:2"):
        with pytest.raises(StreamingError, match="LOGML_FAULT"):
            Faults(bad)
    assert Faults("").at == {}
    assert Faults("checkpoint:3:stop, mid_batch").at == {"checkpoint": (3, "stop"),
                                                        "mid_batch": (1, "exit")}


def test_dead_letter_ids_are_deterministic_and_distinct():
    a = ErrorRecord(Reason.EMPTY, "empty line", b"", "logs.raw/3", 17)
    assert dead_letter_id(a) == dead_letter_id(ErrorRecord(Reason.EMPTY, "other detail", b"",
                                                           "logs.raw/3", 17))
    assert len({dead_letter_id(a),
                dead_letter_id(ErrorRecord(Reason.EMPTY, "", b"", "logs.raw/3", 18)),
                dead_letter_id(ErrorRecord(Reason.LATE, "", b"", "logs.raw/3", 17)),
                dead_letter_id(ErrorRecord(Reason.EMPTY, "", b"", "logs.raw/4", 17))}) == 4
    # refused documents have no input offset: their bytes tell them apart
    r1 = ErrorRecord(Reason.SINK_REJECTED, "mapping", b'{"a": 1}', "logml-logs-x", -1)
    r2 = ErrorRecord(Reason.SINK_REJECTED, "mapping", b'{"a": 2}', "logml-logs-x", -1)
    assert dead_letter_id(r1) != dead_letter_id(r2)


@pytest.mark.parametrize("spec,ports", [(0, []), ("0", []), (9108, [9108]), ("9108", [9108]),
                                        ("9108-9110", [9108, 9109, 9110]),
                                        (" 9108 - 9109 ", [9108, 9109])])
def test_metrics_port_specs(spec, ports):
    assert list(port_range(spec)) == ports
    assert load(overrides={"metrics.port": spec}, env={}).metrics.port == spec


@pytest.mark.parametrize("spec", [-1, 70000, "9110-9108", "91o8", "9108-70000", 1.5, True])
def test_bad_metrics_ports_are_refused_naming_the_key(spec):
    with pytest.raises(ConfigError, match="metrics.port"):
        load(overrides={"metrics.port": spec}, env={})


def _taken_port() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_metrics_take_the_first_free_port_of_a_range_and_say_when_none_is_free():
    s = _taken_port()
    while not _free(s.getsockname()[1] + 1):  # a taken port followed by a free one
        s.close()
        s = _taken_port()
    with s:
        port = s.getsockname()[1]
        with pytest.raises(MetricsPortError, match=f"metrics port {port} is in use"):
            serve(Stats(), port)
        server = serve(Stats(), f"{port}-{port + 1}")
        try:
            assert server.server_port == port + 1
            with pytest.raises(MetricsPortError, match=f"{port}-{port + 1} are all in use"):
                serve(Stats(), f"{port}-{port + 1}")
        finally:
            server.shutdown()
            server.server_close()
    assert serve(Stats(), 0) is None


def test_kafka_mode_with_a_taken_metrics_port_is_a_one_line_error(tmp_path):
    cfg = tmp_path / "k.toml"
    cfg.write_text(f'source = "kafka"\n[kafka]\nbootstrap = "{NOWHERE}"\n')
    with _taken_port() as s:
        port = s.getsockname()[1]
        p = subprocess.run([sys.executable, "-m", "logml.cli", "run", "-c", str(cfg),
                            "--metrics-port", str(port)], capture_output=True, text=True,
                           timeout=60)
    assert p.returncode == 2
    assert p.stderr.startswith(f"logml: error: metrics port {port} is in use; ")
    assert p.stderr.count("\n") == 1, p.stderr


def test_an_unreachable_state_topic_is_an_error_never_no_checkpoint():
    t0 = time.monotonic()
    with pytest.raises(ReadError):
        list(read_to_end(client_settings(NOWHERE), "logml.state", stall_s=2.0))
    store = CheckpointStore(client_settings(NOWHERE), "logml.state",
                            Producer({"bootstrap.servers": NOWHERE}), stall_s=2.0)
    with pytest.raises(CheckpointUnavailable):
        store.load({"logs.raw/0"})
    assert time.monotonic() - t0 < 30


def test_a_dead_letter_mark_is_never_empty_because_kafka_was_down_at_the_first_try():
    """An empty mark reads as "no dead letters to skip": the replay after the next restart
    would write every one of them again."""
    dlq = DeadLetterProducer(Producer({"bootstrap.servers": NOWHERE}), "logml.dlq",
                             client_settings(NOWHERE), stall_s=1.0)
    for _ in range(2):
        with pytest.raises(SinkUnavailable, match="dead-letter topic logml.dlq"):
            dlq.mark()


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_quiet_log_says_each_kind_of_line_once_a_period_with_how_many_it_held(caplog):
    clock = _Clock()
    quiet = QuietLog(logging.getLogger("t.quiet"), every_s=60, clock=clock)
    with caplog.at_level(logging.INFO, logger="t.quiet"):
        for i in range(500):  # a connect failure every 50 ms for 25 s, ports and times vary
            clock.now = i * 0.05
            quiet.log(logging.ERROR, "%s [%s] %s", "FAIL", f"rdkafka#consumer-{1 + i % 2}",
                      f"Connect to 127.0.0.1:19092 failed (after {i % 3}ms in state CONNECT"
                      + (", 1 identical error(s) suppressed)" if i % 5 else ")"))
        quiet.log(logging.WARNING, "lag unknown: %s", "all brokers down")  # another kind
        clock.now = 70.0
        quiet.log(logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#consumer-1",
                  "Connect to 127.0.0.1:19092 failed (after 0ms in state CONNECT)")
    said = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert said == [
        (logging.ERROR, "FAIL [rdkafka#consumer-1] Connect to 127.0.0.1:19092 failed "
                        "(after 0ms in state CONNECT)"),
        (logging.WARNING, "lag unknown: all brokers down"),
        (logging.ERROR, "FAIL [rdkafka#consumer-1] Connect to 127.0.0.1:19092 failed "
                        "(after 0ms in state CONNECT) (499 more like it in the last 70 s)")]


def test_kafka_clients_of_logml_do_not_flood_the_log_while_the_broker_is_down(capfd, caplog):
    """librdkafka, left to itself, writes a line to stderr at every connection attempt
    (about 20 a second for a member of a group, for each consumer of the process)."""
    cfg = KafkaConfig(bootstrap=NOWHERE, topic="logs.raw", group="logml-t")
    quiet = QuietLog(logging.getLogger("t.kafka.client"))
    client = client_settings(NOWHERE, quiet)
    source = KafkaSource(cfg, _NoListener(), client)
    dlq = DeadLetterProducer(Producer(client), "logml.dlq", client, stall_s=0.5)
    with caplog.at_level(logging.INFO, logger="t.kafka.client"):
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4.0:
            source.poll(0.2)
            with pytest.raises(SinkUnavailable):
                dlq.mark()
    source.consumer.close()
    lines = capfd.readouterr().err.splitlines() + [r.getMessage() for r in caplog.records]
    failures = [x for x in lines if "Connect to" in x]
    assert failures, "the outage must still be said"
    assert len(failures) <= 3, lines


class _NoListener:
    def assigned(self, partitions):
        return {}

    def revoked(self, partitions):
        pass

    def lost(self, partitions):
        pass
