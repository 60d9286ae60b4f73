"""Motion key strings (``FRAME:TX,TY[,SCALE[,ROTATE]]``) read without numpy: the settings
check them when a ShotSpec is validated (in the worker too)."""

from __future__ import annotations

from ..errors import SpecError


def parse(values: list[str]) -> list[dict]:
    """``FRAME:TX,TY[,SCALE[,ROTATE]]`` (pixels, factor, degrees about the frame centre) as
    key dicts."""
    keys = []
    for value in values:
        frame, sep, rest = value.partition(":")
        try:
            nums = [float(x) for x in rest.split(",")] if sep else []
            if not sep or len(nums) not in (2, 3, 4) or (len(nums) > 2 and nums[2] <= 0):
                raise ValueError
            keys.append({"frame": int(frame), "tx": nums[0], "ty": nums[1],
                         "scale": nums[2] if len(nums) > 2 else 1.0,
                         "rotate": nums[3] if len(nums) > 3 else 0.0})
        except ValueError:
            raise SpecError(f"--motion-key {value!r}: write FRAME:TX,TY[,SCALE[,ROTATE]], e.g. "
                            "1010:-40,0,1.05 (scale above 0)") from None
    return keys
