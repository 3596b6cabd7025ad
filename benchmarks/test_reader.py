"""The embedded reader: CPU throughput of ``Input.blocks`` (lines cut at max_line_bytes,
positions and line numbers kept) against the unbounded reader it replaced (85a0870's
``read_blocks`` with the line count ``run.py`` made per block, kept below as the
reference), and the memory one 200 MB line costs each way."""
import subprocess
import sys
import time
from pathlib import Path

from logml.generate import generate
from logml.sources.file import Input

BLOCK = 4 << 20


def old_read_blocks(stream, size=BLOCK):
    """85a0870: blocks of whole lines; a line is held whole however long it is."""
    rest = b""
    while True:
        chunk = stream.read(size)
        if not chunk:
            if rest:
                yield rest
            return
        chunk = rest + chunk
        cut = chunk.rfind(b"\n") + 1
        if cut == 0:
            rest = chunk
            continue
        rest = chunk[cut:]
        yield chunk[:cut]


def _old(path):
    """As 85a0870's run.py used it: it counted each block's lines for the next one's
    first line number (the new reader counts them itself)."""
    n = lines = 0
    with open(path, "rb") as f:
        for b in old_read_blocks(f):
            n += len(b)
            lines += b.count(b"\n")
    return n


def _new(path):
    inp = Input(str(path))
    try:
        return sum(len(b.data) for b in inp.blocks(65536))
    finally:
        inp.close()


def _best_cpu(fn, path, rounds=5):
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()
        fn(path)
        best = min(best, time.process_time() - t0)
    return best


_PEAK = """
import sys
sys.path.insert(0, sys.argv[3])
from benchmarks.test_reader import _new, _old
fn = {"old": _old, "new": _new}[sys.argv[1]]
def kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1])
before = kib()
fn(sys.argv[2])
print(kib() - before)
"""


def test_reader_throughput_and_long_line_memory(tmp_path, record):
    lines, _ = generate(seed=5, hours=2, services=4, start=1_764_000_000.0, rate=10.0)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines * 2) + b"\n")
    size = events.stat().st_size
    assert _old(events) == _new(events) == size  # no line is over the limit here
    old_cpu, new_cpu = _best_cpu(_old, events), _best_cpu(_new, events)

    huge = tmp_path / "huge.log"
    with open(huge, "wb") as f:
        f.write(b"2025-11-24T10:00:00Z INFO before\n2025-11-24T10:00:01Z INFO big ")
        for _ in range(200):
            f.write(b"y" * (1 << 20))
        f.write(b"\n2025-11-24T10:00:02Z INFO after\n")
    root = str(Path(__file__).resolve().parents[1])
    peak = {k: int(subprocess.run([sys.executable, "-c", _PEAK, k, str(huge), root],
                                  capture_output=True, text=True, check=True).stdout) // 1024
            for k in ("old", "new")}
    assert peak["new"] < 64 < peak["old"]
    record("reader", bytes=size, old_mb_per_cpu_s=round(size / old_cpu / 1e6),
           new_mb_per_cpu_s=round(size / new_cpu / 1e6),
           line_200mb_peak_growth_mb_old=peak["old"],
           line_200mb_peak_growth_mb_new=peak["new"])
