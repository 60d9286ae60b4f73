"""Subject mattes for a whole shot, one interface over every source.

Sources: ``alpha`` (a plate channel), ``file`` (a matte sequence), ``keyer`` (green/blue
screen), ``sam`` (Segment Anything from key-frame prompts, tracked by optical flow) and
``grabcut`` (the same tracking with OpenCV GrabCut). Every source returns a soft matte in
[0, 1] per frame in the plate's display window, refined by ``refine``. See docs/mattes.md.
"""

from .shot import FrameMatte, ShotMattes, check, files

__all__ = ["FrameMatte", "ShotMattes", "check", "files"]
