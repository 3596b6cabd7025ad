"""Rotated logs come compressed (logrotate's gzip, or bzip2 / xz): `logml run` and `logml
parse` read them as their lines. A gzip file was read as its compressed bytes: 91 garbage
"lines" dead-lettered from 6,000 real ones, and nothing said. What logml does not read
(zstd, UTF-16 text, compressed bytes piped into run) is one line saying what to do."""
import bz2
import gzip
import lzma
import subprocess
import sys
import zlib

import pytest

from logml.config import load
from logml.run import run_file
from logml.sources.file import Input, compression

CODECS = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress,
          "gzip, two members": lambda d: gzip.compress(d[:len(d) // 3]) +
          gzip.compress(d[len(d) // 3:])}


def plain_lines(n: int = 6000) -> bytes:
    return b"".join(b"2025-11-24T%02d:%02d:%02dZ INFO request %d served in %d ms\n"
                    % (10 + k // 3600, k // 60 % 60, k % 60, k, k % 50) for k in range(n))


def logml(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "logml.cli", *map(str, args)], stdin=stdin,
                          capture_output=True, timeout=300)


@pytest.mark.parametrize("codec", CODECS)
def test_a_compressed_file_is_read_as_its_lines(tmp_path, codec, monkeypatch):
    from logml.sources import file as src
    monkeypatch.setattr(src, "BLOCK_BYTES", 4096)  # many blocks: pieces joined right
    data = plain_lines()
    f = tmp_path / "app.log.z"
    f.write_bytes(CODECS[codec](data))
    inp = Input(str(f))
    assert inp.codec == codec.split(",")[0] and inp.size() is None
    blocks = list(inp.blocks(1 << 20))
    assert b"".join(b.data for b in blocks) == data
    assert blocks[-1].end_offset == len(data) and sum(b.lines for b in blocks) == 6000


@pytest.mark.parametrize("codec", ["gzip", "xz"])
def test_a_compressed_file_gives_the_windows_of_the_plain_one(tmp_path, codec):
    data = plain_lines()
    (tmp_path / "app.log").write_bytes(data)
    (tmp_path / "app.log.z").write_bytes(CODECS[codec](data))
    for name in ("app.log", "app.log.z"):
        run_file(load(overrides={"output.dir": str(tmp_path / f"out-{name}")}),
                 str(tmp_path / name), progress=False)
    got = (tmp_path / "out-app.log.z" / "windows.jsonl").read_bytes()
    assert got == (tmp_path / "out-app.log" / "windows.jsonl").read_bytes()
    assert got.count(b"\n") == 100  # 6,000 lines a second apart, minute windows


def test_a_compressed_file_cut_short_gives_every_line_before_the_break_and_says_so(tmp_path):
    data = plain_lines()
    whole = gzip.compress(data)
    cut = whole[:len(whole) * 2 // 3]  # copied while it was being written
    f = tmp_path / "app.log.1.gz"
    f.write_bytes(cut)
    there = zlib.decompressobj(31).decompress(cut)  # every byte the cut file still holds
    lines = there.count(b"\n") + (not there.endswith(b"\n"))
    r = logml("run", "--input", f, "--output", tmp_path / "out")
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert f"{f}: its gzip data breaks off after {len(there):,} bytes of lines" in err
    assert f"logml run: {lines:,} lines: {lines:,} counted" in err
    p = logml("parse", f)
    assert p.returncode == 2 and p.stderr.decode().startswith("logml: error: ")
    assert p.stdout.count(b"\n") - 1 == there.count(b"\n")  # the CSV's rows, header aside


def test_parse_reads_a_compressed_file_and_stdin_like_the_plain_file(tmp_path):
    data = plain_lines(500)
    (tmp_path / "a.log").write_bytes(data)
    (tmp_path / "a.log.bz2").write_bytes(bz2.compress(data))
    want = logml("parse", tmp_path / "a.log").stdout
    assert want.count(b"\n") == 501
    assert logml("parse", tmp_path / "a.log.bz2").stdout == want
    assert logml("parse", "-", stdin=subprocess.Popen(
        ["cat", str(tmp_path / "a.log.bz2")], stdout=subprocess.PIPE).stdout).stdout == want


def test_what_logml_does_not_read_is_one_line_that_says_what_to_do(tmp_path):
    f = tmp_path / "app.log.gz"
    f.write_bytes(gzip.compress(plain_lines(100)))
    zst = tmp_path / "app.log.zst"
    zst.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 40)
    cat = subprocess.Popen(["cat", str(f)], stdout=subprocess.PIPE)
    cases = [(("run", "--input", zst, "--output", tmp_path / "o"), None,
              "is zstd-compressed, which logml does not read: decompress it into a pipe (zstd -dc"),
             (("run", "--input", "-", "--output", tmp_path / "o"), cat.stdout,
              "stdin is gzip-compressed: decompress it into the pipe"),
             (("run", "--input", f, "--output", tmp_path / "o", "--follow"), None,
              "is gzip-compressed: a rotated file, complete; read it without --follow")]
    utf16 = tmp_path / "app.log"  # as Windows' "Unicode" text is saved
    utf16.write_bytes("\ufeff2025-11-24T10:00:00Z INFO hello\r\n".encode("utf-16-le"))
    cases += [(("run", "--input", utf16, "--output", tmp_path / "o"), None,
               f"is UTF-16 text (its first bytes say so), which logml does not read: convert "
               f"it to UTF-8 into a pipe (iconv -f UTF-16 -t UTF-8 {utf16} |"),
              (("parse", "-"), subprocess.Popen(["cat", str(utf16)],
                                                stdout=subprocess.PIPE).stdout,
               "stdin is UTF-16 text (its first bytes say so)"),
              (("run", "--input", "-", "--output", tmp_path / "o"), subprocess.Popen(
                  ["cat", str(utf16)], stdout=subprocess.PIPE).stdout, "iconv -f UTF-16")]
    for args, stdin, words in cases:
        r = logml(*args, stdin=stdin)
        err = r.stderr.decode()
        assert r.returncode == 2 and err.startswith("logml: error: ") and words in err, err
        assert err.count("\n") == 1
    with open(f, "rb") as stdin:  # stdin redirected from the file itself: read
        r = logml("run", "--input", "-", "--output", tmp_path / "o2", stdin=stdin)
    assert r.returncode == 0 and b"100 lines: 100 counted" in r.stderr, r.stderr


def test_compression_is_never_seen_in_text():
    assert compression(b"BZh is a word\n") is None and compression(b"\x1f\x8b") is None
    assert compression(b"\xfd7zXZ") is None and compression(b"(\xb5/") is None
    assert [compression(f(b"x")[:10]) for f in (gzip.compress, bz2.compress, lzma.compress)] \
        == ["gzip", "bzip2", "xz"]
