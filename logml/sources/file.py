"""File and stdin source: blocks of whole lines with their byte positions."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import BinaryIO, Iterator

BLOCK_BYTES = 4 << 20


@dataclass
class Block:
    data: bytes
    first_line: int  # number of lines before this block in the input
    end_offset: int  # byte position after this block


def read_blocks(stream: BinaryIO, size: int = BLOCK_BYTES, start_offset: int = 0,
                start_line: int = 0) -> Iterator[Block]:
    """Blocks of whole lines; a last line without newline ends the input."""
    rest = b""
    offset, line = start_offset, start_line
    while True:
        chunk = stream.read(size)
        if not chunk:
            if rest:
                yield Block(rest, line, offset + len(rest))
            return
        chunk = rest + chunk
        cut = chunk.rfind(b"\n") + 1
        if cut == 0:
            rest = chunk
            continue
        rest = chunk[cut:]
        offset += cut
        yield Block(chunk[:cut], line, offset)
        line += chunk.count(b"\n", 0, cut)


def open_input(path: str, offset: int = 0) -> tuple[BinaryIO, int | None]:
    """(stream positioned at offset, total size or None for stdin)."""
    if path == "-":
        return sys.stdin.buffer, None
    f = open(path, "rb")
    if offset:
        f.seek(offset)
    return f, os.path.getsize(path)
