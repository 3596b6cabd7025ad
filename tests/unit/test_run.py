"""The embedded runner in process: cut lines reported with their real length, outputs cut
back to the state's committed lengths on resume, dead-letter line numbers that go on, every
line of a grown file counted once across runs."""
import orjson
import pytest

from logml.config import load
from logml.run import run_file
from logml.sources.file import InputError


def docs(path):
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def line(t: int, text: str) -> bytes:
    return f"2025-11-24T10:{t // 60:02d}:{t % 60:02d}Z INFO {text}\n".encode()


def cfg(tmp_path, **kw):
    return load(overrides={"output.dir": str(tmp_path / "out"), **kw})


def test_a_cut_line_is_dead_lettered_once_with_its_real_length(tmp_path):
    f = tmp_path / "a.log"
    big = line(1, "big " + "y" * 300_000)
    f.write_bytes(line(0, "before") + big + line(2, "after"))
    pipe = run_file(cfg(tmp_path, **{"decode.max_line_bytes": 1000}), str(f), progress=False)
    (d,) = docs(tmp_path / "out" / "dlq.jsonl")
    assert d["reason"] == "too_long" and d["kept"] and d["offset"] == 1
    assert d["line_bytes"] == len(big) - 1 and d["bytes"] == 1001
    assert d["detail"].startswith(f"{len(big) - 1} bytes")  # the line's, not what was kept
    assert sum(pipe.stats.lines.values()) == 3  # the cut line was still counted


def test_resume_cuts_outputs_back_and_dead_letter_lines_go_on(tmp_path):
    f = tmp_path / "a.log"
    first = b"".join(line(t, f"req {t % 7}") for t in range(0, 600, 2)) + b"\xff bad\n"
    f.write_bytes(first)
    state = str(tmp_path / "state")
    run_file(cfg(tmp_path), str(f), state, keep_open=True, progress=False)
    out = tmp_path / "out"
    committed = {p.name: p.read_bytes() for p in out.iterdir()}
    with open(out / "windows.jsonl", "ab") as w:  # written after the checkpoint, then a crash
        w.write(b'{"half a document')
    with open(f, "ab") as w:
        w.write(b"".join(line(t, f"req {t % 7}") for t in range(600, 1200, 2)) + b"\n")
    run_file(cfg(tmp_path), str(f), state, progress=False)
    windows = (out / "windows.jsonl").read_bytes()
    assert windows.startswith(committed["windows.jsonl"]) and b"half a document" not in windows
    # the bad line, then the empty last line: numbered on from the first run, not from 0
    assert [(d["offset"], d["reason"]) for d in docs(out / "dlq.jsonl")] == \
        [(300, "invalid_utf8"), (601, "empty")]


def test_a_grown_file_rerun_from_its_state_counts_every_line_once(tmp_path):
    """Without --keep-open a run closes its last window; a line the file then gains for
    that window is dead-lettered late by the next run (it was silently lost)."""
    f = tmp_path / "a.log"
    f.write_bytes(b"".join(line(t, "tick") for t in range(0, 60, 10)))
    state = str(tmp_path / "state")
    run_file(cfg(tmp_path), str(f), state, progress=False)
    with open(f, "ab") as w:
        w.write(line(55, "tick") + line(65, "tick"))
    run_file(cfg(tmp_path), str(f), state, progress=False)
    out = tmp_path / "out"
    counted = sum(d["logml"]["lines"] for d in docs(out / "windows.jsonl"))
    dead = docs(out / "dlq.jsonl")
    assert [(d["reason"], d["raw"]) for d in dead] == [("late", line(55, "tick").decode().strip())]
    assert counted + len(dead) == 8


@pytest.mark.parametrize("clash", ["input", "state"])
def test_an_input_or_state_that_is_an_output_file_is_refused_untouched(tmp_path, clash):
    """The outputs are opened for writing first: an input or state file that is one of
    them was emptied, and the run said 0 lines and exit 0."""
    out = tmp_path / "out"
    out.mkdir()
    f = tmp_path / "a.log"
    f.write_bytes(b"".join(line(t, "tick") for t in range(0, 60, 10)))
    victim = out / ("dlq.jsonl" if clash == "input" else "windows.jsonl")
    victim.write_bytes(f.read_bytes())
    path, state = (victim, None) if clash == "input" else (f, victim)
    with pytest.raises(InputError, match="is the output file"):
        run_file(cfg(tmp_path), str(path), state and str(state), progress=False)
    assert victim.read_bytes() == f.read_bytes()


def test_a_late_line_is_dead_lettered_with_its_own_bytes(tmp_path):
    """The window stage decides late and absurd_timestamp after decoding; the dead letter
    still carries the record as it came (it carried the message only: service, time and
    every other field were lost)."""
    def event(t: int, text: str, extra: str = "") -> bytes:
        return (f'{{"@timestamp": "2025-11-24T10:{t // 60:02d}:{t % 60:02d}Z", "message": '
                f'"{text}", "service": {{"name": "api"}}{extra}}}\n').encode()
    late = event(5, "a late one", ', "trace": {"id": "abc"}')
    f = tmp_path / "a.jsonl"
    f.write_bytes(b"".join(event(t, "tick") for t in range(0, 600, 5)) + late)
    run_file(cfg(tmp_path), str(f), progress=False)
    (d,) = docs(tmp_path / "out" / "dlq.jsonl")
    assert d["reason"] == "late" and d["raw"].encode() == late.rstrip(b"\n")


def test_a_state_from_another_output_directory_is_said(tmp_path, capsys):
    """The state's position says what was already written, elsewhere: the new directory
    gets only what follows, and the run says so (it said nothing and wrote empty files)."""
    f = tmp_path / "a.log"
    f.write_bytes(b"".join(line(t, "tick") for t in range(0, 60, 10)))
    state = str(tmp_path / "state")
    run_file(cfg(tmp_path), str(f), state, progress=False)
    capsys.readouterr()
    run_file(load(overrides={"output.dir": str(tmp_path / "elsewhere")}), str(f), state,
             progress=False)
    err = capsys.readouterr().err
    assert "was saved with --output" in err and str(tmp_path / "out") in err


def test_the_run_summary_adds_up_to_the_lines_read(tmp_path, capsys):
    """Lines read = counted + dead-lettered (a too_long line is both): a late line was
    once among the 'lines' and among the dead letters."""
    from logml import cli
    f = tmp_path / "a.log"
    f.write_bytes(b"".join(line(t, "tick") for t in range(0, 600, 30)) + line(0, "late")
                  + b"\xff not utf-8\n")
    assert cli.main(["run", "--input", str(f), "--output", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "22 lines: 20 counted, 2 dead-lettered;" in err, err


def test_the_window_the_input_ends_in_is_counted_not_judged(tmp_path):
    """A file that ends 15 s into a window: judged as a whole window it was a critical
    drop of every service at the end of every such run. It is written with its lines and
    the share it covers, its expectation scaled to it, score 0 and no anomaly."""
    f = tmp_path / "a.log"
    stamp = lambda s: f"2025-11-24T10:{s // 60:02d}:{s % 60:02d}Z"  # noqa: E731
    f.write_bytes("".join(f"{stamp(s)} INFO req {k} served\n"
                          for s in range(0, 30 * 60 + 15) for k in range(2)).encode())
    run_file(cfg(tmp_path), str(f), progress=False)
    windows = docs(tmp_path / "out" / "windows.jsonl")
    last, before = windows[-1]["logml"], windows[-2]["logml"]
    assert windows[-1]["@timestamp"] == "2025-11-24T10:30:00.000Z" and last["lines"] == 30
    assert 0.2 <= last["window"]["covered"] <= 0.26 and last["anomaly_score"] == 0.0
    assert 0.8 * 30 <= last["expected_lines"] <= 1.2 * 30
    assert "covered" not in before["window"] and before["lines"] == 120
    assert not (tmp_path / "out" / "anomalies.jsonl").read_bytes()


def test_a_cron_job_beside_a_busy_service_has_every_line_counted(tmp_path):
    """A job that logs once every 90 minutes, in a file with a busy service: 13 of its
    18 lines were dead-lettered (absurd_timestamp when its first clock formed and at the
    end, late when a line was held past its window's close)."""
    events = []
    for t in range(0, 27 * 3600, 4):
        events.append((t, "api", f"GET /items/{t % 7} 200"))
    for k in range(18):
        events.append((k * 5400 + 600 + 37 * (k % 5), "cron", f"sync done: {k} items"))
    f = tmp_path / "a.jsonl"
    f.write_bytes(b"".join(orjson.dumps({"@timestamp": 1.764e9 + t, "message": m,
                                         "service": {"name": s}}) + b"\n"
                           for t, s, m in sorted(events)))
    pipe = run_file(cfg(tmp_path), str(f), progress=False)
    assert not docs(tmp_path / "out" / "dlq.jsonl")
    assert pipe.stats.lines["cron"] == 18
    cron = [w for w in docs(tmp_path / "out" / "windows.jsonl")
            if w["service"]["name"] == "cron"]
    assert sum(w["logml"]["lines"] for w in cron) == 18


def test_an_access_log_is_windowed_by_its_own_times(tmp_path):
    """nginx's access log, 3 hours of it: every line went into one window at the wall
    time (its time was not read), so nothing could be detected."""
    import time as _time
    f = tmp_path / "access.log"
    t0 = 1_764_000_000
    f.write_bytes(b"".join(
        f'10.0.{k % 7}.{k % 250} - - [{_time.strftime("%d/%b/%Y:%H:%M:%S", _time.gmtime(t0 + 2 * k))}'
        f' +0000] "GET /items/{k % 97} HTTP/1.1" 200 {k % 5000} "-" "curl/8"\n'.encode()
        for k in range(5400)))
    run_file(cfg(tmp_path), str(f), progress=False)
    windows = docs(tmp_path / "out" / "windows.jsonl")
    assert len(windows) == 180 and windows[0]["@timestamp"] == "2025-11-24T16:00:00.000Z"
    assert all(w["logml"]["lines"] == 30 for w in windows)


def _logfmt(stamp: str, k: int, level: str) -> str:
    return f'ts={stamp}Z caller=scrape.go:{k % 9} level={level} msg="scrape done" t={k % 13}'


def _ruby(stamp: str, k: int, level: str) -> str:
    return f"{level[0].upper()}, [{stamp}456 #1234] {level.upper():>5} -- : job {k % 13} done"


def _log4j(stamp: str, k: int, level: str) -> str:
    return f"{stamp.replace('T', ' ')} [pool-{k % 4}] {level.upper():<5} c.e.Jobs - job done"


def _python(stamp: str, k: int, level: str) -> str:
    return f"{stamp.replace('T', ' ').replace('.', ',')} - app.jobs - {level.upper()} - job done"


def _cri(stamp: str, k: int, level: str) -> str:  # Kubernetes nodes: the runtime's time first
    return f"{stamp}999999Z {'stderr' if k % 2 else 'stdout'} F {_log4j(stamp, k, level)}"


@pytest.mark.parametrize("line_of", [_logfmt, _ruby, _log4j, _python, _cri])
def test_common_formats_are_windowed_by_their_own_times_and_levels(tmp_path, line_of):
    """logrus, Go kit, Prometheus and Loki write logfmt (ts=... level=error msg=...), Ruby
    services their Logger's lines (E, [time #pid] ERROR -- : ...): neither time nor level
    was read, so a file was one window at the wall time, with no errors. log4j's pattern
    (time [thread] LEVEL) and Python's cookbook one (time - logger - LEVEL -) had their
    time read but no level: no error was counted. The container runtime's lines of a
    Kubernetes node (time stdout F line) had their own time read, the line's level not."""
    import time as _time
    f = tmp_path / "app.log"
    t0 = 1_764_000_000
    f.write_bytes(b"".join((line_of(
        f'{_time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(t0 + 2 * k))}.{k % 1000:03d}', k,
        "error" if k % 10 == 0 else "info") + "\n").encode() for k in range(1800)))
    run_file(cfg(tmp_path), str(f), progress=False)
    windows = docs(tmp_path / "out" / "windows.jsonl")
    assert len(windows) == 60 and windows[0]["@timestamp"] == "2025-11-24T16:00:00.000Z"
    assert all(w["logml"]["lines"] == 30 and w["logml"]["errors"] == 3 for w in windows)


def test_a_file_without_times_is_said(tmp_path, capsys):
    """Lines in a format logml reads no time from all took the run's wall time: one
    window, and nothing said. The run now says so, and where the formats are."""
    from logml import cli
    f = tmp_path / "a.log"
    f.write_bytes(b"".join(b"worker %d picked job %d\n" % (k % 4, k) for k in range(300)))
    assert cli.main(["run", "--input", str(f), "--output", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "note: 300 of 300 lines had no time logml reads" in err and "event-time.md" in err
    f.write_bytes(b"".join(line(t, "tick") for t in range(0, 600, 2)))
    assert cli.main(["run", "--input", str(f), "--output", str(tmp_path / "out2")]) == 0
    assert "no time" not in capsys.readouterr().err
    # timeless lines that take a late neighbour's time are late too: counted among the
    # lines read, not against the lines counted in windows ("300 of 262" before)
    f.write_bytes(b"".join(line(1800 + t, "tick") for t in range(100)) + b"".join(
        line(k, "old") + b"worker %d picked job %d\n" % (k % 4, k) * 6
        for k in range(50)))
    assert cli.main(["run", "--input", str(f), "--output", str(tmp_path / "out3")]) == 0
    err = capsys.readouterr().err
    assert "logml run: 450 lines: " in err and "note: 300 of 450 lines had no time" in err, err


def test_journald_json_export_is_read(tmp_path):
    """`journalctl -o json | logml run --input -`: every entry was dead-lettered
    missing_message (journald names its fields MESSAGE, __REALTIME_TIMESTAMP, PRIORITY,
    _SYSTEMD_UNIT)."""
    t0 = 1_764_000_000
    rows = []
    for k in range(1800):
        entry = {"__CURSOR": f"s=1;i={k}", "__REALTIME_TIMESTAMP": str((t0 + 2 * k) * 10**6),
                 "__MONOTONIC_TIMESTAMP": str(k), "PRIORITY": "3" if k % 10 == 0 else "6",
                 "_HOSTNAME": "web1", "MESSAGE": f"request {k % 7} served"}
        if k % 2:  # a unit's entries; the kernel's and a cron job's carry no unit
            entry |= {"_SYSTEMD_UNIT": "nginx.service", "SYSLOG_IDENTIFIER": "nginx"}
        else:
            entry["SYSLOG_IDENTIFIER"] = "CRON"
        rows.append(orjson.dumps(entry))
    rows.append(orjson.dumps({"__REALTIME_TIMESTAMP": str(t0 * 10**6), "MESSAGE": [255, 0]}))
    f = tmp_path / "journal.json"
    f.write_bytes(b"\n".join(rows) + b"\n")
    run_file(cfg(tmp_path, **{"output.write_logs": True}), str(f), progress=False)
    out = tmp_path / "out"
    windows = docs(out / "windows.jsonl")
    by = {}
    for w in windows:
        by.setdefault(w["service"]["name"], []).append(w)
    assert sorted(by) == ["CRON", "nginx.service"]
    assert all(len(ws) == 60 and all(w["logml"]["lines"] == 15 for w in ws)
               for ws in by.values())
    assert sum(w["logml"]["errors"] for w in windows) == 180
    assert windows[0]["@timestamp"] == "2025-11-24T16:00:00.000Z"
    (dead,) = docs(out / "dlq.jsonl")  # a binary MESSAGE (an array of bytes) has no text
    assert dead["reason"] == "missing_message"
    log = docs(out / "logs.jsonl")[1]
    assert log["message"] == "request 1 served" and log["MESSAGE"] == "request 1 served"
    assert log["service"]["name"] == "nginx.service" and log["host"]["name"] == "web1"
    assert log["log"]["level"] == "info" and log["@timestamp"] == "2025-11-24T16:00:02.000Z"


def test_docker_json_file_logs_are_read(tmp_path):
    """/var/lib/docker/containers/*/*-json.log: every line was dead-lettered
    missing_message (Docker names the line "log"); its per-line document must not keep
    the string "log" (an object in ECS: Elasticsearch would refuse the document)."""
    rows = [orjson.dumps({"log": (f"2025-11-24T{16 + k // 1800:02d}:{k // 30 % 60:02d}:"
                                  f"{2 * k % 60:02d}Z {'ERROR' if k % 10 == 0 else 'INFO'} "
                                  f"request {k % 7} served\n"),
                          "stream": "stdout", "time": f"2025-11-24T16:00:00.{k:09d}Z"})
            for k in range(1800)]
    rows.append(orjson.dumps({"log": "no time of its own\n", "stream": "stderr",
                              "time": "2025-11-24T16:59:59.5Z"}))
    f = tmp_path / "c0ffee-json.log"
    f.write_bytes(b"\n".join(rows) + b"\n")
    run_file(cfg(tmp_path, **{"output.write_logs": True}), str(f), progress=False)
    out = tmp_path / "out"
    windows = docs(out / "windows.jsonl")
    assert len(windows) == 60 and windows[0]["@timestamp"] == "2025-11-24T16:00:00.000Z"
    assert all(w["logml"]["errors"] == 3 for w in windows)
    assert sum(w["logml"]["lines"] for w in windows) == 1801
    logs = docs(out / "logs.jsonl")
    assert logs[0]["message"] == "2025-11-24T16:00:00Z ERROR request 0 served"
    assert logs[0]["log"] == {"level": "error"} and logs[0]["stream"] == "stdout"
    assert logs[-1]["message"] == "no time of its own" and "log" not in logs[-1]
    assert logs[-1]["@timestamp"] == "2025-11-24T16:59:59.500Z"
