"""A text chunk in a PNG, added and read without decoding the pixels.

The batch records what made each output (options, input hashes, model hash, pack version) in
the output itself. The chunk goes right after IHDR, before the image data, so reading it back
needs only the file's first few hundred bytes and the pixels stay byte for byte as ComfyUI
saved them (with its own prompt and workflow chunks).

A rerun trusts an output only when `chunks_are_whole` holds for it (and its pixels decode): a
file cut short, a chunk whose CRC does not match, or bytes after IEND mean it is written again.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

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


def chunks_are_whole(png: bytes) -> bool:
    """The signature, IHDR first, every chunk whole with a matching CRC, IEND last and nothing
    after it. Says nothing of whether the image data decompresses: decode it for that."""
    if not png.startswith(SIGNATURE) or png[12:16] != b"IHDR":
        return False
    view = memoryview(png)
    offset = len(SIGNATURE)
    while offset + 12 <= len(png):
        length, kind = struct.unpack_from(">I4s", png, offset)
        end = offset + 8 + length
        if end + 4 > len(png):
            return False
        (crc,) = struct.unpack_from(">I", png, end)
        if zlib.crc32(view[offset + 4 : end]) != crc:
            return False
        offset = end + 4
        if kind == b"IEND":
            return offset == len(png)
    return False


def read_text_chunk(path: Path, keyword: str) -> str | None:
    """The tEXt `keyword` before the image data, or None (no such chunk, or not a PNG)."""
    try:
        with open(path, "rb") as file:
            if file.read(len(SIGNATURE)) != SIGNATURE:
                return None
            return _find_text(file, keyword.encode("latin-1") + b"\0")
    except OSError:
        return None


def text_chunk_in(png: bytes, keyword: str) -> str | None:
    """As read_text_chunk, of a PNG in memory."""
    if not png.startswith(SIGNATURE):
        return None
    file = io.BytesIO(png)
    file.seek(len(SIGNATURE))
    return _find_text(file, keyword.encode("latin-1") + b"\0")


def _find_text(file: BinaryIO, prefix: bytes) -> str | None:
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
