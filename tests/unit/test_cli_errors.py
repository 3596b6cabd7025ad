"""Operator mistakes end in one line ``logml: error: ...`` and exit 2; a traceback only
with --debug."""
import os
import socket
import subprocess
import sys

import pytest

LOG = b"2025-11-24T10:00:00Z INFO user 1 logged in\n"


def logml(*args, **kw):
    return subprocess.run([sys.executable, "-m", "logml.cli", *map(str, args)],
                          capture_output=True, timeout=120, **kw)


def one_line(p, *words):
    lines = p.stderr.decode().strip().splitlines()
    assert p.returncode == 2, p.stderr.decode()
    assert len(lines) == 1 and lines[0].startswith("logml: error: "), lines
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_a_directory_as_input(tmp_path):
    one_line(logml("run", "--input", tmp_path, "--output", tmp_path / "o"), "is a directory")


def test_a_missing_input(tmp_path):
    one_line(logml("run", "--input", tmp_path / "nope.log", "--output", tmp_path / "o"),
             "nope.log", "no such file")


def test_closed_stdin(tmp_path):
    p = subprocess.run(f"exec {sys.executable} -m logml.cli run --input - --output "
                       f"{tmp_path / 'o'} <&-", shell=True, capture_output=True, timeout=120)
    one_line(p, "stdin is closed")


def test_no_input_given(tmp_path):
    one_line(logml("run", "--output", tmp_path / "o"), "--input")


def test_a_configuration_error(tmp_path):
    (tmp_path / "p.toml").write_text("[window]\nsecond = 5\n")
    one_line(logml("run", "-c", tmp_path / "p.toml", "--input", "-"), "unknown key 'second'")


def test_metrics_port_in_use(tmp_path):
    (tmp_path / "a.log").write_bytes(LOG)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        one_line(logml("run", "--input", tmp_path / "a.log", "--output", tmp_path / "o",
                       "--metrics-port", port), f"port {port}", "in use", "--metrics-port")
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_output_under_a_file(tmp_path):
    (tmp_path / "a.log").write_bytes(LOG)
    (tmp_path / "file").write_bytes(b"")
    one_line(logml("run", "--input", tmp_path / "a.log", "--output", tmp_path / "file" / "o"),
             "not a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_input(tmp_path):
    f = tmp_path / "a.log"
    f.write_bytes(LOG)
    f.chmod(0)
    one_line(logml("run", "--input", f, "--output", tmp_path / "o"), "permission denied")


def test_a_damaged_state_file(tmp_path):
    (tmp_path / "a.log").write_bytes(LOG)
    (tmp_path / "state").write_bytes(b"not a state")
    one_line(logml("run", "--input", tmp_path / "a.log", "--output", tmp_path / "o",
                   "--state", tmp_path / "state"), "state file")


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(tmp_path, where):
    args = ["run", "--input", tmp_path, "--output", tmp_path / "o"]
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    p = logml(*args)
    assert p.returncode == 1 and b"Traceback" in p.stderr and b"InputError" in p.stderr


def test_a_bug_is_not_disguised_as_an_operator_error():
    from logml.cli import operator_error
    from logml.config import ConfigError
    assert operator_error(KeyError("x")) is None
    assert operator_error(ConfigError("k: bad")) == "configuration: k: bad"
    assert "no space left" in operator_error(OSError(28, "No space left on device"))
