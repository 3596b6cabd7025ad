"""The line splitting that the decoders' compiled splitters must agree with, in plain Python
(shared by the plain-text and JSON scanner tests)."""


def reference_split(data: bytes):
    """(kept (index, line) pairs, blank runs [first, count, text of the first], lines)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    kept, runs = [], []
    for k, line in enumerate(lines):
        line = line.removesuffix(b"\r").removeprefix(b"\xef\xbb\xbf")
        if line.strip(b" \t\n\r\x0b\x0c"):
            kept.append((k, line))
        elif runs and runs[-1][0] + runs[-1][1] == k:
            runs[-1][1] += 1
        else:
            runs.append([k, 1, line])
    return kept, runs, len(lines)
