"""What a sequence on disk holds: range, gaps, sizes, windows, channels (``actanywhere info``)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..errors import ActAnywhereError
from ..media import frames, imageio


def describe(pattern: str, frame_range: str | None = None) -> dict[str, Any]:
    """A JSON-ready summary of a frame sequence; every frame's header is read."""
    seq = frames.resolve(pattern, frame_range)
    missing = seq.missing()
    gaps = set(missing)
    present = [f for f in seq.frames if f not in gaps]
    sizes: Counter[str] = Counter()
    data_windows: Counter[str] = Counter()
    channels: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    unreadable: dict[int, str] = {}
    flags: dict[int, str] = {}
    serious = False
    metadata: dict[str, object] = {}
    pixel_aspect = 1.0
    layout: dict[str, str] = {}
    for f in present:
        try:
            info = imageio.probe(seq.path(f))
        except ActAnywhereError as exc:
            unreadable[f] = str(exc)
            continue
        found = info.flags()
        if found:
            flags[f] = "; ".join(found)
            serious = serious or any(found.values())
        sizes[str(info.display)] += 1
        data_windows[str(info.data)] += 1
        channels[",".join(info.channels)] += 1
        formats[f"{info.file_format} {info.pixel_format}"] += 1
        pixel_aspect = info.pixel_aspect
        layout = layout or info.layout()
        if not metadata:
            metadata = {k: (v.value if isinstance(v, imageio.Attr) else v)
                        for k, v in info.metadata.items()}
    return {
        "pattern": seq.template,
        "range": frames.compact(list(seq.frames)),
        "frames": len(seq.frames),
        "present": len(present) - len(unreadable),
        "missing": frames.compact(missing),
        "unreadable": {str(k): v for k, v in unreadable.items()},
        "flags": {str(k): v for k, v in flags.items()},
        "display_windows": dict(sizes),
        "data_windows": dict(data_windows),
        "channels": dict(channels),
        "formats": dict(formats),
        "pixel_aspect": pixel_aspect,
        **layout,
        "metadata": {k: v if isinstance(v, (str, int, float)) else list(v)  # type: ignore
                     for k, v in metadata.items()},
        "consistent": len(sizes) <= 1 and len(channels) <= 1 and not missing and not unreadable
        and not serious,
    }
