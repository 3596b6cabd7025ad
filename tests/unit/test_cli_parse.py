import csv
import io
import subprocess
import sys

import numpy as np
import orjson
from hypothesis import given, settings, strategies as st


def run(args, stdin=b""):
    return subprocess.run([sys.executable, "-m", "logml.cli", *args], input=stdin,
                          capture_output=True, timeout=120)


LOG = (b"2025-11-24T10:00:00Z INFO user 1 logged in\n"
       b"\n"
       b"2025-11-24T10:00:01Z INFO user 2 logged in\n"
       b"2025-11-24T10:00:02Z ERROR disk /dev/sda1 full\n")


def test_parse_csv_one_row_per_line_in_order(tmp_path):
    f = tmp_path / "app.log"
    f.write_bytes(LOG)
    p = run(["parse", str(f)])
    assert p.returncode == 0, p.stderr
    rows = list(csv.reader(io.StringIO(p.stdout.decode())))
    assert rows[0] == ["line_no", "template_id", "template"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "3", "4"]
    assert rows[1][1] == rows[3][1] and rows[1][2] == "user <NUM> logged in"
    assert rows[2][1:] == ["", ""]  # the empty line keeps its row
    assert rows[4][2] == "disk <PATH> full"
    assert p.stderr == b""  # no progress bar in a pipe


def test_parse_jsonl_from_stdin_with_json_events():
    events = b"\n".join(orjson.dumps({"message": f"took {n}ms", "service": {"name": s}})
                        for n, s in [(5, "a"), (7, "a"), (9, "b")]) + b"\n[1]\n"
    p = run(["parse", "--json", "--format", "jsonl", "-"], events)
    assert p.returncode == 0, p.stderr
    rows = [orjson.loads(line) for line in p.stdout.splitlines()]
    assert [r["params"] for r in rows[:3]] == [["5ms"], ["7ms"], ["9ms"]]
    assert rows[0]["template_id"] == rows[1]["template_id"] != rows[2]["template_id"]
    assert rows[3]["error"] == "not_an_object"


def test_parse_keeps_one_row_per_line_of_a_blank_run():
    """Decode reports a run of blank lines as one record with a count."""
    p = run(["parse", "--format", "jsonl", "-"], b"a 1\n\n \n\nb 2\n")
    assert p.returncode == 0, p.stderr
    rows = [orjson.loads(line) for line in p.stdout.splitlines()]
    assert [r["line_no"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r.get("error") for r in rows] == [None, "empty", "empty", "empty", None]


def test_parse_missing_file_says_so(tmp_path):
    p = run(["parse", str(tmp_path / "nope.log")])
    assert p.returncode == 2 and b"no such file" in p.stderr


def test_help_lists_commands():
    p = run(["--help"])
    assert p.returncode == 0 and b"parse" in p.stdout


def test_parse_csv_keeps_the_row_of_a_line_with_an_impossible_time(tmp_path):
    """CSV rows carry no reason, so parse skips the dead-letter records: numbering holds."""
    f = tmp_path / "app.log"
    f.write_bytes(b"2025-11-24T10:00:00Z INFO user 1 logged in\n"
                  b"2025-11-24T25:00:00Z INFO user 2 logged in\n"
                  b"2025-11-24T10:00:02Z INFO user 3 logged in\n")
    p = run(["parse", str(f)])
    assert p.returncode == 0, p.stderr
    rows = list(csv.reader(io.StringIO(p.stdout.decode())))
    assert [r[0] for r in rows[1:]] == ["1", "2", "3"]
    assert rows[2][1:] == ["", ""] and rows[1][1] == rows[3][1] != ""
    p = run(["parse", "--format", "jsonl", str(f)])
    assert orjson.loads(p.stdout.splitlines()[1])["error"] == "bad_timestamp"


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 10**12), st.lists(st.text(max_size=12), min_size=1, max_size=5),
       st.lists(st.integers(0, 4), max_size=50))
def test_rows_kernel_matches_a_python_join(first, frags, which):
    from logml.parse import _rows
    which = [w % len(frags) for w in which]
    data = [f.encode() for f in frags]
    got = _rows(first, np.array(which, dtype=np.int64), np.frombuffer(b"".join(data), np.uint8),
                np.cumsum([len(d) for d in data], dtype=np.int64)).tobytes()
    assert got == b"".join(b"%d%s\n" % (first + k, data[w]) for k, w in enumerate(which))
