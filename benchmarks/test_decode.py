"""decode_block throughput on 200k JSON events and 200k plain lines with headers, one block
each way as the file source hands them over (4 MiB blocks)."""
import os
import time

import pytest

from logml.config import DecodeConfig
from logml.decode import Decoder
from logml.generate import generate

from .workload import lines as plain_lines

N = 200_000
BLOCK = 4 << 20
NOW = 1_764_000_000.0 + 86400 * 3


def _blocks(lines: list[bytes]) -> list[bytes]:
    out, cur, size = [], [], 0
    for line in lines:
        cur.append(line)
        size += len(line) + 1
        if size >= BLOCK:
            out.append(b"\n".join(cur) + b"\n")
            cur, size = [], 0
    if cur:
        out.append(b"\n".join(cur) + b"\n")
    return out


@pytest.fixture(scope="module")
def inputs():
    json_lines, _ = generate(seed=4, hours=3, services=6, start=1_764_000_000.0, rate=10.0)
    json_lines = (json_lines * (N // len(json_lines) + 1))[:N]
    return {"json": _blocks(json_lines), "plain": _blocks(plain_lines(N, raw=True))}


@pytest.mark.parametrize("kind", ["json", "plain"])
def test_decode_block_throughput(benchmark, inputs, kind, record):
    blocks = inputs[kind]
    dec = Decoder(DecodeConfig())

    def run():
        n = 0
        for k, b in enumerate(blocks):
            events, errors = dec.decode_block(b, k * 1_000_000, "bench", now=NOW)
            n += len(events) + len(errors)
        return n

    run()  # numba caches loaded
    n = benchmark.pedantic(run, rounds=9, iterations=1)
    assert n >= N
    cpu = []  # CPU seconds of all threads: steadier than wall time on a shared machine
    for _ in range(5):
        t0 = time.process_time()
        run()
        cpu.append(time.process_time() - t0)
    tag = os.environ.get("LOGML_BENCH_TAG", "")
    record(f"decode_block_{kind}{tag}", lines=N, bytes=sum(map(len, blocks)),
           lines_per_s=round(N / benchmark.stats.stats.min),
           mb_per_s=round(sum(map(len, blocks)) / benchmark.stats.stats.min / 1e6, 1),
           lines_per_cpu_s=round(N / min(cpu)))


_RSS_SCRIPT = """
import sys
from logml.decode import Decoder


def kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])


dec = Decoder()
dec.decode_block(b"x\\n\\n\\ny\\n", now=1.764e9)
data = b"\\n" * int(sys.argv[1])
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak (VmHWM) starts again from the current RSS
before = kib("VmHWM")
events, errors = dec.decode_block(data, now=1.764e9)
after = kib("VmHWM")
print(before, after, len(errors))
"""


@pytest.mark.parametrize("n", [1_000_000, 4 << 20])
def test_blank_lines_memory(n, record):
    """Peak RSS growth while decoding one block of n empty lines (the block itself is
    already held)."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(n)], check=True,
                         capture_output=True, text=True).stdout.split()
    before, after, records = (int(x) for x in out)
    tag = os.environ.get("LOGML_BENCH_TAG", "")
    record(f"decode_blank_lines_{n}{tag}", lines=n, block_bytes=n, error_records=records,
           rss_before_mb=round(before / 1024, 1), rss_growth_mb=round((after - before) / 1024, 1))
