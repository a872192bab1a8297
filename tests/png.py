"""Reading the pixels of a PNG (8-bit RGB or RGBA, as Chromium writes screenshots), to check that a
screenshot shows something. Only the standard library: zlib and the five PNG row filters."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks += body
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6), f"unsupported PNG: depth {depth}, color type {color}"
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(chunks)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            add = {0: 0, 1: left, 2: up, 3: (left + up) // 2, 4: _paeth(left, up, corner)}[kind]
            line[i] = (line[i] + add) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, rows


def ink(path: Path) -> tuple[float, int]:
    """The share of pixels that are not (near) white, and how many distinct colours there are."""
    width, _, rows = read_png(path)
    channels = len(rows[0]) // width
    dark = 0
    colours: set[bytes] = set()
    for row in rows[::4]:  # every fourth row is plenty
        for x in range(0, width * channels, channels):
            pixel = row[x : x + 3]
            colours.add(pixel)
            dark += 1 if min(pixel) < 235 else 0
    sampled = len(rows[::4]) * width
    return dark / sampled, len(colours)
