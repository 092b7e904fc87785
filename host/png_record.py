"""A text chunk in a PNG, added and read without decoding the pixels.

The batch records what made each output (options, input hashes, model hash, pack version) in
the output itself. The chunk goes right after IHDR, before the image data, so reading it back
needs only the file's first few hundred bytes and the pixels stay byte for byte as ComfyUI
saved them (with its own prompt and workflow chunks).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

SIGNATURE = b"\x89PNG\r\n\x1a\n"
HEADER_END = len(SIGNATURE) + 8 + 13 + 4  # signature, IHDR's length and type, its data, CRC


class NotPng(ValueError):
    pass


def add_text_chunk(png: bytes, keyword: str, text: str) -> bytes:
    """`png` with a tEXt chunk `keyword`=`text` after IHDR (Latin-1: keep `text` ASCII)."""
    if not png.startswith(SIGNATURE) or png[12:16] != b"IHDR":
        raise NotPng("not a PNG file")
    data = keyword.encode("latin-1") + b"\0" + text.encode("latin-1")
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + data))
    return png[:HEADER_END] + chunk + png[HEADER_END:]


def read_text_chunk(path: Path, keyword: str) -> str | None:
    """The tEXt `keyword` before the image data, or None (no such chunk, or not a PNG)."""
    try:
        with open(path, "rb") as file:
            if file.read(len(SIGNATURE)) != SIGNATURE:
                return None
            return _find_text(file, keyword.encode("latin-1") + b"\0")
    except OSError:
        return None


def _find_text(file, prefix: bytes) -> str | None:
    while True:
        head = file.read(8)
        if len(head) < 8:
            return None
        length, kind = struct.unpack(">I4s", head)
        if kind in (b"IDAT", b"IEND"):
            return None
        data = file.read(length)
        file.read(4)  # CRC
        if kind == b"tEXt" and data.startswith(prefix):
            return data[len(prefix) :].decode("latin-1")
