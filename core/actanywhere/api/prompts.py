"""Key-frame prompts written on a command line (``FRAME:X,Y[,LABEL]``, ``FRAME:X0,Y0,X1,Y1``,
``FRAME:PATH``), on the CLI or in a host's knob, turned into the ``matte`` section of a
ShotSpec (standard library only)."""

from __future__ import annotations

from ..errors import SpecError


def _frame_and(value: str, flag: str) -> tuple[int, str]:
    frame, sep, rest = value.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(frame), rest
    except ValueError:
        raise SpecError(f"{flag} {value!r}: write FRAME:VALUES, e.g. {flag} 1001:812,440") \
            from None


def _numbers(text: str, count: tuple[int, ...], flag: str, value: str) -> list[float]:
    try:
        nums = [float(x) for x in text.split(",")]
    except ValueError:
        nums = []
    if len(nums) not in count:
        raise SpecError(f"{flag} {value!r}: expected {' or '.join(map(str, count))} "
                        "comma-separated numbers after FRAME:")
    return nums


def key_frames(points: list[str] | None, boxes: list[str] | None,
               key_mattes: list[str] | None = None, base: list | None = None,
               names: tuple[str, str, str] = ("--point", "--box", "--key-matte")) -> list[dict]:
    """``matte.keys`` from prompt strings (``base``: key frames they are added to), sorted by
    frame; SpecError naming the flag or knob (``names``) and the value when one cannot be
    read."""
    point, box, key_matte = names
    keys = {k["frame"]: dict(k) for k in base or [] if isinstance(k, dict)}

    def key(frame: int) -> dict:
        return keys.setdefault(frame, {"frame": frame})

    for value in points or []:
        frame, rest = _frame_and(value, point)
        x, y, *label = _numbers(rest, (2, 3), point, value)
        key(frame).setdefault("points", []).append([x, y, int(label[0]) if label else 1])
    for value in boxes or []:
        frame, rest = _frame_and(value, box)
        key(frame).setdefault("boxes", []).append(_numbers(rest, (4,), box, value))
    for value in key_mattes or []:
        frame, rest = _frame_and(value, key_matte)
        key(frame)["matte"] = rest
    return sorted(keys.values(), key=lambda k: k["frame"])


def matte_overrides(base: dict, source, path, channel, points, boxes, key_mattes, checkpoint,
                     screen) -> dict:
    """Matte flags over the spec file's matte section; prompts are added to its key frames."""
    if path and not source:
        source = "file"
    out = {"source": source, "path": path, "channel": channel,
           "sam": {"checkpoint": checkpoint}, "keyer": {"screen": screen}}
    if points or boxes or key_mattes:
        out["keys"] = key_frames(points, boxes, key_mattes, base.get("keys"))
    return out
