"""The plain-text kernels take one signature each: whatever arrays callers hand the public
functions (read-only or writable buffers, strided or int32 positions) run through that one
compiled version, and the results agree with the per-line reference; big blocks (split over
threads) agree with the same lines scanned in small pieces."""
import numpy as np
import pytest

from logml import plaintext
from logml.decode import parse_header
from logml.plaintext import BAD_TIME, PARALLEL_LINES, scan_iso, scan_lines, split_lines
from splitref import reference_split


NOW = 1_764_000_000.0
LINES = [b"2025-11-30T06:07:36.120Z INFO api request GET /v1/items/42 took 12ms",
         b"Nov 30 06:07:38 host sshd[1932]: Failed password for root",
         b"11-30 06:07:39.512  1795  1825 I PowerManager: acquire lock",
         b"[Sun Nov 30 06:07:40 2025] [error] mod_jk child workerEnv in error state 6",
         b"ERROR: disk full", b"2025-02-30 10:00:00 impossible day", b"plain words only",
         "caf\u00e9 2025-11-30 unicode".encode()]


def test_one_compiled_version_per_kernel():
    data = b"\n".join(LINES) + b"\n"
    buf, starts, ends, *_ = split_lines(data)
    writable = buf.copy()
    wide = np.stack([starts, ends], axis=1)  # columns of a 2-d array: strided views
    for b in (buf, writable):
        for s, e in ((starts, ends), (wide[:, 0], wide[:, 1]),
                     (starts.astype(np.int32), ends.astype(np.int32))):
            status, ts, level, cut, end = scan_lines(b, s, e, NOW)
            assert status.tolist()[5] == BAD_TIME
            assert scan_iso(b, s, e).shape == (len(LINES),)
    for kernel in (plaintext._scan, plaintext._scan_iso, plaintext._split):
        assert len(kernel.signatures) == 1, kernel


def test_scan_agrees_with_reference_per_line():
    data = b"\n".join(LINES) + b"\n"
    buf, starts, ends, *_ = split_lines(data)
    status, ts, level, cut, _ = scan_lines(buf, starts, ends, NOW)
    for k, line in enumerate(LINES):
        t, lv, c = parse_header(line.decode(), NOW)
        if status[k] == BAD_TIME:
            assert t == plaintext.BAD_TS
            continue
        assert (None if np.isnan(ts[k]) else ts[k]) == (None if t == plaintext.NO_TS else t)
        assert level[k] == lv
        assert cut[k] == len(line.decode()[:c].encode())


@pytest.mark.parametrize("n", [PARALLEL_LINES - 1, 2 * PARALLEL_LINES + 17,
                               5 * PARALLEL_LINES + 3])
def test_big_blocks_agree_with_small_pieces(n):
    rng = np.random.default_rng(n)
    data = b"\n".join(LINES[k] for k in rng.integers(0, len(LINES), n)) + b"\n"
    buf, starts, ends, *_ = split_lines(data)
    whole = scan_lines(buf, starts, ends, NOW, 40)
    pieces = [scan_lines(buf, starts[a:a + 100], ends[a:a + 100], NOW, 40)
              for a in range(0, n, 100)]
    for k, got in enumerate(whole):
        want = np.concatenate([p[k] for p in pieces])
        np.testing.assert_array_equal(got, want)


def test_split_grows_its_arrays():
    """Many short lines and many blank runs: more than the first guess of either."""
    data = b"a\n\nb\n \r\n\xef\xbb\xbfc\n\t\n\n" * 3000 + b"tail"
    buf, starts, ends, line, runs, n = split_lines(data)
    kept, ref_runs, ref_n = reference_split(data)
    assert n == ref_n
    assert [(int(k), data[s:e]) for k, s, e in zip(line, starts, ends)] == kept
    assert [[f, c, data[s:e]] for f, c, s, e in runs.tolist()] == ref_runs
