"""File, pipe and stdin source: blocks of whole lines with their byte positions, read with
bounded memory.

A line longer than ``max_line_bytes`` costs O(max_line_bytes) memory however long it is:
its first ``max_line_bytes + 1`` bytes are kept (so the decoder sees it is too long, flags
and dead-letters it), the rest is skipped up to the next newline without being held, and
its real length travels with the block. A line that runs on for ``MAX_SKIP_BYTES`` without
a newline is not a log (``/dev/zero``, a binary file): reading stops with an InputError.

Regular files are read in big blocks. Anything else (a pipe, a FIFO, a terminal, a device)
is live: small reads of what is available, and an empty poll at least once a second so the
caller can let time pass (``Pipeline.tick``) and see a stop request.

A file compressed with gzip, bzip2 or xz (logrotate's rotated files) is read decompressed;
its positions count decompressed bytes, and a resumed run decompresses up to its position
again (a stream cannot seek).
"""
from __future__ import annotations

import bz2
import errno
import gzip
import hashlib
import lzma
import os
import select
import stat
import time
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

import numpy as np

BLOCK_BYTES = 4 << 20
# at most this many lines per block, so that a block of empty lines stays small downstream
MAX_BLOCK_LINES = 1 << 17
MAX_SKIP_BYTES = 1 << 30
LIVE_READ = 1 << 20
POLL_S = 1.0
HEAD_BYTES = 4096  # the first bytes whose hash identifies a file (with device and inode)


class InputError(Exception):
    """An input logml cannot read as logs; the message says what to do (one line)."""


def compression(head: bytes) -> str | None:
    """The compression a file's first bytes show (gzip, bzip2, xz, zstd; or UTF-16, not
    compressed but not UTF-8 either), or None. None of these starts a UTF-8 text file:
    0x1f 0x8b, 0xfd, 0xff, 0xfe and 0x28 0xb5 cannot, and bzip2's BZh is followed by a
    level digit and the bytes of pi."""
    if head[:3] == b"\x1f\x8b\x08":
        return "gzip"
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] == b"1AY&SY":
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):  # a byte order mark: Windows' "Unicode"
        return "UTF-16"
    return None


def unreadable(codec: str, name: str) -> InputError:
    """The error of an input logml does not read, with the command that converts it."""
    path = "FILE" if name == "stdin" else name
    if codec == "UTF-16":
        return InputError(f"{name} is UTF-16 text (its first bytes say so), which logml does "
                          f"not read: convert it to UTF-8 into a pipe (iconv -f UTF-16 -t "
                          f"UTF-8 {path} | logml run --input -)")
    return InputError(f"{name} is {codec}-compressed, which logml does not read: decompress "
                      f"it into a pipe ({codec} -dc {path} | logml run --input -)")


def decompressed(raw: BinaryIO, codec: str, name: str) -> "Decompressed":
    """``raw``'s bytes decompressed (a multi-member gzip whole)."""
    if codec == "gzip":
        return Decompressed(gzip.GzipFile(fileobj=raw, mode="rb"))
    if codec == "bzip2":
        return Decompressed(bz2.BZ2File(raw))
    if codec == "xz":
        return Decompressed(lzma.LZMAFile(raw))
    raise unreadable(codec, name)


# what a damaged or cut compressed file raises mid-read
DAMAGED = (EOFError, OSError, zlib.error, lzma.LZMAError)


class Decompressed:
    """A decompressing file read as a plain one, except that damaged or cut data (a file
    copied while it was being compressed) loses nothing before it: ``read`` returns the
    bytes decompressed up to the break, and the next ``read`` raises the error."""

    def __init__(self, f):
        self.f, self.error = f, None

    def read(self, n: int) -> bytes:
        if self.error is not None:
            raise self.error
        out, size = [], 0
        while size < n:
            try:
                piece = self.f.read1(n - size)  # one read of compressed data at most
            except DAMAGED as e:
                self.error = e
                break
            if not piece:
                break
            out.append(piece)
            size += len(piece)
        if self.error is not None and not out:
            raise self.error
        return b"".join(out)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.f.close()


def not_a_file(path: str) -> InputError:
    """The error of an input path that is a directory."""
    return InputError(f"{path} is a directory: give a log file (or - for stdin)")


@dataclass
class Block:
    data: bytes
    first_line: int  # number of lines before this block in the input
    end_offset: int  # byte position in the input after this block
    long_lines: dict[int, int] = field(default_factory=dict)  # line -> real length (cut)
    lines: int = 0  # lines in data (an unterminated last one included)


class LineCutter:
    """Bytes in, blocks of whole lines out; every line longer than max_line_bytes is cut to
    its first max_line_bytes + 1 bytes the same way whatever the chunking, so outputs do
    not depend on read sizes. No per-line objects: one pass of rfind per max_line_bytes."""

    def __init__(self, max_line_bytes: int, offset: int = 0, line: int = 0, name: str = ""):
        self.limit = max_line_bytes
        self.name = name
        self.out: list = []  # pieces of whole lines (joined once per block)
        self.out_lines = 0
        self.long: dict[int, int] = {}
        self.part = b""  # kept bytes of the line being read (at most limit + 1)
        self.part_len = 0  # its real length so far
        self.line = line  # number of the first line in out
        self.offset = offset  # input position after the last whole line in out
        self.pos = offset  # input position after every byte fed

    def feed(self, chunk: bytes, newlines: int | None = None) -> None:
        """newlines: chunk.count(b"\\n"), when the caller has it (one count per chunk)."""
        newlines = chunk.count(b"\n") if newlines is None else newlines
        limit, at = self.limit, self.pos
        self.pos += len(chunk)
        if self.part_len > limit:  # skipping the rest of an over-long line
            nl = chunk.find(b"\n")
            if nl < 0:
                self.part_len += len(chunk)
                self._check_skip()
                return
            self._cut(self.part, self.part_len + nl, self.line + self.out_lines, at + nl + 1)
            self.out_lines += 1
            newlines -= 1
            self.part, self.part_len = b"", 0
            chunk = chunk[nl + 1:]
            at += nl + 1
        data = self.part + chunk if self.part else chunk
        base = at - len(self.part)  # input position of data[0]
        first = self.line + self.out_lines  # number of data's first line
        self.out_lines += newlines  # every newline of data ends a line handed on
        n, i, done = len(data), 0, 0  # data[done:i] are whole lines not yet copied
        while n - i > limit:
            j = data.rfind(b"\n", i, i + limit + 1)
            if j >= 0:  # every line between i and j is short
                i = j + 1
                continue
            self._copy(data, done, i, base)
            end = data.find(b"\n", i + limit + 1)
            if end < 0:
                self.part, self.part_len = data[i:i + limit + 1], n - i
                self._check_skip()
                return
            self._cut(data[i:i + limit + 1], end - i, first + data.count(b"\n", 0, i),
                      base + end + 1)
            i = done = end + 1
        j = data.rfind(b"\n", done)
        if j >= 0:
            self._copy(data, done, j + 1, base)
            done = j + 1
        self.part = data[done:]
        self.part_len = len(self.part)

    def _copy(self, data: bytes, a: int, b: int, base: int) -> None:
        if b > a:
            self.out.append(memoryview(data)[a:b])
            self.offset = base + b

    def _cut(self, kept: bytes, length: int, line: int, end_offset: int) -> None:
        self.long[line] = length
        self.out += (kept, b"\n")
        self.offset = end_offset

    def _check_skip(self) -> None:
        if self.part_len > MAX_SKIP_BYTES:
            raise InputError(
                f"{self.name}: line {self.line + self.out_lines + 1} runs over "
                f"{MAX_SKIP_BYTES >> 20} MiB without a newline: this is not a text log "
                f"(binary data or a device like /dev/zero?); give a log file")

    def take(self, final: bool = False) -> Block | None:
        """The whole lines fed so far; with final (end of input) also an unterminated last
        line."""
        if final and self.part_len:
            if self.part_len > self.limit:
                self.long[self.line + self.out_lines] = self.part_len
            self.out.append(self.part)
            self.offset = self.pos
            self.out_lines += 1
            self.part, self.part_len = b"", 0
        if not self.out:
            return None
        block = Block(b"".join(self.out), self.line, self.offset, self.long, self.out_lines)
        self.line += self.out_lines
        self.out, self.out_lines, self.long = [], 0, {}
        return block


def _pieces(chunk: bytes) -> Iterator[tuple[bytes, int]]:
    """(piece, its newlines): the chunk cut after every MAX_BLOCK_LINES newlines (input
    dense with empty lines), else whole."""
    count = chunk.count(b"\n")
    if count <= MAX_BLOCK_LINES:
        yield chunk, count
        return
    nl = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
    start = 0
    for k, cut in enumerate((nl[MAX_BLOCK_LINES - 1::MAX_BLOCK_LINES] + 1).tolist()):
        yield chunk[start:cut], MAX_BLOCK_LINES
        start = cut
    if start < len(chunk):
        yield chunk[start:], count - MAX_BLOCK_LINES * (k + 1)


def _cut(cut: "LineCutter", chunk: bytes) -> Iterator[Block]:
    """Feed a chunk to the cutter; the blocks it completes."""
    for piece in _pieces(chunk):
        cut.feed(*piece)
        if block := cut.take():
            yield block


def read_blocks(stream: BinaryIO, size: int = BLOCK_BYTES, start_offset: int = 0,
                start_line: int = 0, max_line_bytes: int = MAX_SKIP_BYTES) -> Iterator[Block]:
    """Blocks of whole lines of a stream; a last line without newline ends the input."""
    cut = LineCutter(max_line_bytes, start_offset, start_line, getattr(stream, "name", ""))
    while chunk := stream.read(size):
        yield from _cut(cut, chunk)
    if block := cut.take(final=True):
        yield block


class Input:
    """An opened input. A regular file named by its path is seekable and has an identity;
    stdin is a stream (its positions count on from the previous run's); anything that is
    not a regular file (a pipe, a terminal, a FIFO, a device) is also live."""

    def __init__(self, path: str):
        self.path = path
        self.name = "stdin" if path == "-" else path
        if path == "-":
            try:
                st = os.fstat(0)
            except OSError as e:
                if e.errno == errno.EBADF:
                    raise InputError("stdin is closed: pipe logs in (... | logml run "
                                     "--input -) or give --input FILE") from None
                raise
            self.fd, self.owned = 0, False
        else:
            self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            self.owned = True
            st = os.fstat(self.fd)
            if stat.S_ISDIR(st.st_mode):
                self.close()
                raise not_a_file(path)
        self.regular = stat.S_ISREG(st.st_mode)
        self.seekable = self.regular and path != "-"
        self.live = not self.regular
        self.codec = compression(os.pread(self.fd, 10, 0)) if self.regular else None
        if self.codec in ("zstd", "UTF-16"):
            self.close()
            raise unreadable(self.codec, self.name)
        self._head: bytes | None = None  # a followed file's first bytes, as last looked at
        self._cutter: LineCutter | None = None

    def size(self) -> int | None:
        """Bytes to read, when known (not for a compressed file)."""
        return os.fstat(self.fd).st_size if self.seekable and not self.codec else None

    def identity(self) -> dict:
        """Device, inode, size and a hash of the first bytes: enough to tell the same file
        (grown) from a rotated, replaced or truncated one."""
        st = os.fstat(self.fd)
        head = os.pread(self.fd, HEAD_BYTES, 0)
        return {"dev": st.st_dev, "ino": st.st_ino, "size": st.st_size,
                "head_len": len(head), "head": hashlib.blake2b(head, digest_size=16).hexdigest()}

    def changed(self, saved: dict | None, position: int) -> str | None:
        """Why reading cannot continue at position (a changed file), or None."""
        if not self.seekable or position == 0:
            return None
        st = os.fstat(self.fd)
        if saved and (saved.get("dev"), saved.get("ino")) != (st.st_dev, st.st_ino):
            return f"it was replaced or rotated (inode {saved.get('ino')} -> {st.st_ino})"
        if st.st_size < position and not self.codec:
            return f"it is smaller than the saved position ({st.st_size:,} < {position:,} bytes)"
        if saved:
            head = os.pread(self.fd, int(saved.get("head_len", 0)), 0)
            if hashlib.blake2b(head, digest_size=16).hexdigest() != saved.get("head"):
                return "its first bytes changed (rewritten)"
        if self.codec:  # the same compressed bytes: the same lines at the same positions
            return None
        # (the previous run may have read an unterminated last line up to position)
        if not (saved and saved.get("partial")) and os.pread(self.fd, 1, position - 1) != b"\n":
            return "the saved position is not at the start of a line"
        return None

    def pending(self) -> bytes:
        """A pipe's line begun but not ended when reading stopped: read from the pipe, so
        only a state can keep it for the next run (``blocks(carry=)``)."""
        c = self._cutter
        if self.seekable or c is None or c.part_len != len(c.part):
            return b""
        return c.part

    def blocks(self, max_line_bytes: int, offset: int = 0, line: int = 0,
               keep_partial: bool = False, follow: bool = False,
               say=None, carry: bytes = b"") -> Iterator[Block | None]:
        """Blocks of whole lines from offset. Live inputs also yield None when nothing came
        for a second (or only part of a line), so the caller can tick and check for a stop.
        With keep_partial, an unterminated last line is left for the next run (the writer
        may still be writing it). With follow, a file is read on as it grows and, when
        rotated or truncated, from the start of the new one (``say`` is told); it becomes
        live once caught up. ``carry``: the start of a pipe's line a stopped run read
        (``pending``), fed before what comes."""
        cut = self._cutter = LineCutter(max_line_bytes, offset, line, self.name)
        if carry and not self.seekable:
            cut.feed(carry)
        if follow and self.seekable:  # the first bytes as read, to tell a rewrite
            self._head = os.pread(self.fd, min(HEAD_BYTES, offset), 0)
        if self.codec:
            yield from self._inflated(cut, say)
        elif not self.live:
            while True:
                # once caught up, look before every read: a file rotated, truncated or
                # rewritten since is read from its start, not from the old position
                why = self._moved(cut.pos) if self.live else None
                if why:
                    while "rewritten" not in why and (  # the old rest (gone if rewritten)
                            chunk := os.pread(self.fd, BLOCK_BYTES, cut.pos)):
                        yield from _cut(cut, chunk)
                    if block := cut.take(final=True):
                        yield block
                    if "rotated" in why:
                        self._reopen()
                    cut = LineCutter(max_line_bytes, 0, 0, self.name)
                    if say:
                        say(f"{self.name}: {why}: reading it from the start")
                chunk = os.pread(self.fd, BLOCK_BYTES, cut.pos) if self.seekable \
                    else os.read(self.fd, BLOCK_BYTES)
                if chunk:
                    if self._head is not None and len(self._head) == cut.pos < HEAD_BYTES:
                        self._head += chunk[:HEAD_BYTES - cut.pos]
                    yield from _cut(cut, chunk)
                    continue
                if not (follow and self.seekable):
                    break
                self.live = True  # caught up
                yield None
                time.sleep(POLL_S)
        else:
            eof = False
            while not eof:
                ready, _, _ = select.select([self.fd], [], [], POLL_S)
                got = 0
                while ready and got < BLOCK_BYTES:
                    chunk = os.read(self.fd, LIVE_READ)
                    if not chunk:
                        eof = True
                        break
                    if cut.pos == offset and (codec := compression(chunk[:10])):
                        if codec == "UTF-16":
                            raise unreadable(codec, self.name)
                        raise InputError(
                            f"{self.name} is {codec}-compressed: decompress it into the "
                            f"pipe ({codec} -dc FILE | logml run --input -), or give the "
                            f"file itself (--input FILE)")
                    got += len(chunk)
                    for piece in _pieces(chunk):
                        cut.feed(*piece)
                        if cut.out_lines >= MAX_BLOCK_LINES:
                            yield cut.take()
                    ready, _, _ = select.select([self.fd], [], [], 0)
                if not eof:
                    yield cut.take()
        if block := cut.take(final=not keep_partial):
            yield block

    def _inflated(self, cut: LineCutter, say) -> Iterator[Block]:
        """A compressed file's lines from the cutter's position, which counts decompressed
        bytes (decompressed up to there again). Damaged or cut data ends the input where
        it breaks, said."""
        raw = open(self.fd, "rb", closefd=False)
        left = cut.pos if self.seekable else 0  # stdin's positions count on: no skipping
        if self.seekable:
            raw.seek(0)
        with decompressed(raw, self.codec, self.name) as f:
            try:
                while left and (n := len(f.read(min(left, BLOCK_BYTES)))):
                    left -= n
                while chunk := f.read(BLOCK_BYTES):
                    yield from _cut(cut, chunk)
            except DAMAGED as e:
                why = (f"{self.name}: its {self.codec} data breaks off after {cut.pos:,} "
                       f"bytes of lines ({e}); the lines up to there are read")
                if say is None:
                    raise InputError(why) from None
                say(why)

    def _moved(self, position: int) -> str | None:
        """Followed file: rotated (another file at the path), truncated, or rewritten (cut
        and filled past the position between two looks: its first bytes changed), or
        None."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None  # between the rename and the new file: wait for it
        own = os.fstat(self.fd)
        why = None
        if (st.st_dev, st.st_ino) != (own.st_dev, own.st_ino):
            why = f"rotated (inode {own.st_ino} -> {st.st_ino})"
        elif own.st_size < position:
            why = f"truncated ({own.st_size:,} < {position:,} bytes)"
        elif self._head and os.pread(self.fd, len(self._head), 0) != self._head:
            why = "rewritten (its first bytes changed)"
        if why:
            self._head = b""  # read afresh from the start
        return why

    def _reopen(self) -> None:
        new = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        os.close(self.fd)
        self.fd = new

    def close(self) -> None:
        if self.owned:
            os.close(self.fd)
            self.owned = False
