"""The streaming parts that need no broker: crash-point hook, dead-letter ids, metrics
ports, and "could not read the state" never being taken for "no state"."""
import socket
import subprocess
import sys
import time

import pytest
from confluent_kafka import Producer

from logml.checkpoint import CheckpointStore, CheckpointUnavailable
from logml.config import ConfigError, load, port_range
from logml.errors import ErrorRecord, Reason
from logml.metrics import MetricsPortError, Stats, serve
from logml.sinks.kafka_dlq import dead_letter_id
from logml.sources.kafka import ReadError, read_to_end
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
        list(read_to_end(NOWHERE, "logml.state", stall_s=2.0))
    store = CheckpointStore(NOWHERE, "logml.state", Producer({"bootstrap.servers": NOWHERE}),
                            stall_s=2.0)
    with pytest.raises(CheckpointUnavailable):
        store.load({"logs.raw/0"})
    assert time.monotonic() - t0 < 30
