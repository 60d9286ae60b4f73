"""Is an image file whole? An EXR's chunk table checked against the file's size (an
interrupted render or copy), without reading pixels (``imageio`` uses it; ``check_whole`` is
what a job asks before its first frame)."""

from __future__ import annotations

import os
import struct

from ..errors import InputError

EXR_MAGIC = b"\x76\x2f\x31\x01"

#: scanlines per chunk by EXR compression id (none, rle, zips, zip, piz, pxr24, b44, b44a,
#: dwaa, dwab)
_LINES_PER_CHUNK = (1, 1, 1, 16, 32, 16, 32, 32, 32, 256)


def incomplete(path: str) -> str | None:
    """Why the file at ``path`` is not a whole image (0 bytes; for a single-part EXR, a chunk
    table or last chunk that runs past the end of the file, or holes in its chunk table, as
    an interrupted render leaves), or None when nothing is seen wrong. Reads the header and
    the chunk table only, not the pixels."""
    size = os.path.getsize(path)
    if size == 0:
        return "0-byte file (an interrupted render or copy?)"
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
        if head[:4] != EXR_MAGIC or len(head) < 9:
            return None
        flags = struct.unpack("<i", head[4:8])[0]
        if flags & 0x1800:  # multi-part or deep: not checked here
            return None
        tiled, pos, attrs = bool(flags & 0x200), 8, {}
        try:
            while head[pos] != 0:
                name_end = head.index(b"\0", pos)
                type_end = head.index(b"\0", name_end + 1)
                n = struct.unpack("<i", head[type_end + 1 : type_end + 5])[0]
                attrs[head[pos:name_end]] = head[type_end + 5 : type_end + 5 + n]
                pos = type_end + 5 + n
            pos += 1
            if b"chunkCount" in attrs:
                count = struct.unpack("<i", attrs[b"chunkCount"])[0]
            elif tiled:
                return None
            else:
                _, y0, _, y1 = struct.unpack("<4i", attrs[b"dataWindow"])
                count = -(-(y1 - y0 + 1) // _LINES_PER_CHUNK[attrs[b"compression"][0]])
        except (IndexError, ValueError, KeyError, struct.error):
            return None  # OpenImageIO judges headers it cannot parse
        if count <= 0:
            return None
        table_end = pos + 8 * count
        if table_end > size:
            return f"truncated ({size} bytes; its chunk table alone needs {table_end})"
        fh.seek(pos)
        offsets = struct.unpack(f"<{count}Q", fh.read(8 * count))
        if any(o < table_end for o in offsets):
            return "incomplete (holes in its chunk table: the render did not finish)"
        last = max(offsets)
        chunk_head = 20 if tiled else 8  # tile x, y, level x, y + size; or y + size
        if last + chunk_head > size:
            return f"truncated ({size} bytes; its last chunk starts at {last})"
        fh.seek(last)
        raw = fh.read(chunk_head)
        if len(raw) < chunk_head:
            return f"truncated ({size} bytes; its last chunk starts at {last})"
        end = last + chunk_head + struct.unpack("<i", raw[-4:])[0]
        if end > size:
            return f"truncated ({size} bytes; its last chunk ends at {end})"
    return None


def check_whole(path: str) -> None:
    """A one-line InputError when ``path`` is missing, empty or visibly truncated."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: file not found; check the path and frame number")
    why = incomplete(path)
    if why:
        raise InputError(f"{path}: {why}; re-render or replace this frame")
