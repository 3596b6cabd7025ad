"""The embedded reader: whole lines in blocks, over-long lines cut the same way whatever the
read sizes, positions and line numbers exact, memory bounded by max_line_bytes."""
import os
import random

import pytest

from logml.sources import file as src
from logml.sources.file import Input, InputError, LineCutter


def reference(data: bytes, limit: int, keep_partial: bool = False):
    """What the reader must hand on: every line cut to limit + 1 bytes, and the cut ones."""
    *lines, last = data.split(b"\n")
    out, long = [], {}
    for k, line in enumerate(lines):
        if len(line) > limit:
            long[k] = len(line)
        out.append(line[:limit + 1] + b"\n")
    if last and not keep_partial:
        if len(last) > limit:
            long[len(lines)] = len(last)
        out.append(last[:limit + 1])
    return b"".join(out), long


def feed_randomly(data: bytes, limit: int, rng: random.Random, keep_partial: bool):
    cut, blocks, pos = LineCutter(limit), [], 0
    while pos < len(data):
        n = rng.randint(1, 3 * limit)
        cut.feed(data[pos:pos + n])
        pos += n
        if rng.random() < 0.5 and (b := cut.take()):
            blocks.append(b)
    if b := cut.take(final=not keep_partial):
        blocks.append(b)
    return blocks


@pytest.mark.parametrize("seed", range(300))
def test_blocks_equal_the_reference_whatever_the_read_sizes(seed):
    rng = random.Random(seed)
    limit = rng.choice([1, 2, 5, 16, 64])
    data = b"\n".join(b"x" * rng.choice([0, 1, limit, limit + 1, 3 * limit, rng.randint(0, 300)])
                      for _ in range(rng.randint(0, 40))) + rng.choice([b"", b"\n", b"tail"])
    keep_partial = rng.random() < 0.3
    blocks = feed_randomly(data, limit, rng, keep_partial)
    want, want_long = reference(data, limit, keep_partial)
    assert b"".join(b.data for b in blocks) == want
    assert {k: v for b in blocks for k, v in b.long_lines.items()} == want_long
    line = 0
    for b in blocks:
        assert b.first_line == line
        line += b.data.count(b"\n")
        if b.data.endswith(b"\n"):  # the position is right after the block's last line
            assert data[b.end_offset - 1] == 10 and data.count(b"\n", 0, b.end_offset) == line
        else:
            assert b.end_offset == len(data)


def test_an_endless_line_stops_with_an_input_error(monkeypatch):
    monkeypatch.setattr(src, "MAX_SKIP_BYTES", 1 << 20)
    cut = LineCutter(100, name="x.log")
    cut.feed(b"ok\n")
    with pytest.raises(InputError, match=r"x.log: line 2 runs over 1 MiB without a newline"):
        for _ in range(20):
            cut.feed(b"\0" * 65536)
    assert len(cut.part) == 101  # what is held stays bounded


def test_lines_dense_blocks_are_cut_in_pieces(tmp_path, monkeypatch):
    monkeypatch.setattr(src, "MAX_BLOCK_LINES", 1000)
    f = tmp_path / "empty.log"
    f.write_bytes(b"a\n" + b"\n" * 4500 + b"b\n")
    inp = Input(str(f))
    blocks = list(inp.blocks(65536))
    assert max(b.data.count(b"\n") for b in blocks) <= 1000
    assert b"".join(b.data for b in blocks) == f.read_bytes()
    assert [b.first_line for b in blocks] == [0, 1000, 2000, 3000, 4000][:len(blocks)]


def test_a_pipe_is_live_and_yields_what_it_has(tmp_path):
    r, w = os.pipe()
    os.write(w, b"one\ntwo\npart")
    inp = Input(f"/proc/self/fd/{r}")
    assert inp.live and not inp.seekable
    it = inp.blocks(65536)
    block = next(it)  # before end of input: the whole lines that came
    assert block.data == b"one\ntwo\n" and block.end_offset == 8
    os.write(w, b"ial\n")
    os.close(w)
    rest = [b for b in it if b]
    assert b"".join(b.data for b in rest) == b"partial\n" and rest[-1].end_offset == 16
    inp.close()
    os.close(r)


def test_identity_tells_grown_from_replaced(tmp_path):
    f = tmp_path / "app.log"
    f.write_bytes(b"line 1\nline 2\n")
    inp = Input(str(f))
    saved = inp.identity()
    inp.close()
    with open(f, "ab") as out:
        out.write(b"line 3\n")
    inp = Input(str(f))
    assert inp.changed(saved, 14) is None  # grown: go on
    assert "not at the start of a line" in inp.changed(saved, 10)
    inp.close()
    f.write_bytes(b"LINE 1\nline 2\nline 3\n")  # rewritten in place
    inp = Input(str(f))
    assert "first bytes changed" in inp.changed(saved, 14)
    inp.close()
    f.write_bytes(b"x\n")
    inp = Input(str(f))
    assert "smaller" in inp.changed(saved, 14)
    inp.close()
    f.rename(tmp_path / "app.log.1")
    f.write_bytes(b"line 1\nline 2\nline 3\n")
    inp = Input(str(f))
    assert "replaced or rotated" in inp.changed(saved, 14)
    inp.close()


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        Input(str(tmp_path))


def test_block_line_counts(tmp_path):
    rng = random.Random(7)
    data = b"\n".join(b"z" * rng.choice([0, 3, 80, 200]) for _ in range(500)) + b"\nend"
    blocks = feed_randomly(data, 64, rng, keep_partial=False)
    assert [b.lines for b in blocks] == [b.data.count(b"\n") + (not b.data.endswith(b"\n"))
                                         for b in blocks]
