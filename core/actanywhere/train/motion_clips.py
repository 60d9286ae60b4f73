"""Clips whose camera moves as real shots' cameras do, with the true background motion: the
data of the learned ``subject`` motion source (motion/subject.py) and of every motion
measurement (benchmarks/bench_subject_motion.py).

The scene is ``synthetic``'s (a backdrop, a horizon, textured ground), seen by a camera that
pans, tilts and zooms about the frame centre, with one jointed figure on the ground. Unlike
``synthetic.make_clip`` (the diffusion model's data, unchanged), the figure walks like a
person: it faces its way, and its cadence and stride are tied to its speed so that the foot on
the ground stays (nearly) planted in the world; a standing figure does not step. That planted
foot is the cue AnimateAnywhere's insight rests on: a walker held in the middle of the frame
still shows, by its feet, how fast the ground (and so the camera) moves.

Kinds of shot (``KINDS``):

- ``held``: the camera pans with a walker, keeping it in frame (follow 0.9 to 1.05);
- ``follow``: the camera follows a walker part of the way (follow 0.2 to 0.9);
- ``static``: a locked-off camera, a walker crossing;
- ``standing``: a standing subject, the camera pans and tilts;
- ``push``: a push-in or pull-out (1 to 3% a frame), walking or standing;
- ``tilt``: the camera tilts (and may pan), walking or standing.

A clip is a pure function of (seed, kind, size, frames); the camera is in ``Clip.camera`` as
motion.json's homographies (frame 0's pixels -> frame t's).
"""

from __future__ import annotations

import numpy as np

from .synthetic import STRIDE, Clip, _colour, _figure, _sample, _world

KINDS = ("held", "follow", "static", "standing", "push", "tilt")


def _gait(speed: float, fig_h: float) -> tuple[float, float]:
    """(swing amplitude in radians, cadence in radians of phase per frame) of a figure of
    height ``fig_h`` walking ``speed`` world px per frame, its stance foot planted: the foot's
    speed relative to the hip at mid-stance, STRIDE * s * amp * cadence, equals the walk."""
    if speed == 0:
        return 0.0, 0.0
    rel = abs(speed) / fig_h  # heights per frame: 0.03 a stroll, 0.12 a run (at 24 fps)
    amp = float(np.clip(0.28 + 2.2 * rel, 0.3, 0.62))
    return amp, abs(speed) / (STRIDE * fig_h / 6.0 * amp)


def make_motion_clip(seed: int, kind: str | None = None, frames: int = 16, height: int = 128,
                     width: int = 192, mattes_only: bool = False) -> Clip:
    """One clip of ``kind`` (a random one of KINDS when None). ``mattes_only``: no pictures
    (``frames`` and ``backgrounds`` empty), for training, where only the mattes are used."""
    rng = np.random.default_rng([seed, 1618])
    kind = kind or KINDS[int(rng.integers(len(KINDS)))]
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: one of {', '.join(KINDS)}")
    fig_h = rng.uniform(0.35, 0.7) * height  # world px (at zoom 1)
    direction = float(rng.choice([-1.0, 1.0]))
    walking = kind in ("held", "follow", "static") or (
        kind in ("push", "tilt") and rng.random() < 0.5)
    walk = direction * rng.uniform(0.02, 0.12) * fig_h if walking else 0.0
    follow = {"held": rng.uniform(0.9, 1.05), "follow": rng.uniform(0.2, 0.9)}.get(
        kind, rng.uniform(0.0, 1.0) if walking and kind != "static" else 0.0)
    pan = 0.0
    if kind in ("standing", "tilt") or (kind == "push" and not walking):
        pan = rng.choice([-1.0, 1.0]) * rng.uniform(0.0, 0.06) * fig_h
    tilt = rng.choice([-1.0, 1.0]) * rng.uniform(0.005, 0.03) * fig_h if kind == "tilt" else 0.0
    if kind == "standing" and rng.random() < 0.4:
        tilt = rng.uniform(-0.015, 0.015) * fig_h
    rate = rng.choice([-1.0, 1.0]) * rng.uniform(0.01, 0.03) if kind == "push" else 0.0
    zoom0 = rng.uniform(0.9, 1.1)
    amp, cadence = _gait(walk, fig_h)
    phase0 = rng.uniform(0, 2 * np.pi)
    cols = [_colour(rng, 0.05, 0.95) for _ in range(3)]

    # the camera's path (world px; zoom about the frame centre), the subject's (world px)
    t = np.arange(frames, dtype=np.float64)
    subject_x = walk * t
    cam_x = follow * subject_x + pan * t
    cam_y = tilt * t
    zoom = zoom0 * np.exp(rate * t)
    # the subject in frame at the middle frame (a crossing walker may leave at the ends)
    mid = frames // 2
    lead = rng.uniform(-0.25, 0.25) * width if kind != "static" else rng.uniform(-0.1, 0.1) * width
    subject_x = subject_x - subject_x[mid] + cam_x[mid] + lead / zoom[mid]
    foot_y0 = rng.uniform(max(0.62, fig_h / height + 0.1), 0.95) * height  # in frame 0
    foot_wy = (foot_y0 - height / 2) / zoom[0] + cam_y[0]
    cx, cy = width / 2, height / 2
    camera = np.empty((frames, 3, 3))
    for i in range(frames):
        k = zoom[i] / zoom[0]
        camera[i] = [[k, 0.0, (cam_x[0] - cam_x[i]) * zoom[i] + cx * (1 - k)],
                     [0.0, k, (cam_y[0] - cam_y[i]) * zoom[i] + cy * (1 - k)], [0, 0, 1.0]]

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    mattes = np.empty((frames, height, width), np.float32)
    if mattes_only:
        pictures = backgrounds = np.empty((0, height, width, 3), np.float32)
    else:
        pictures = np.empty((frames, height, width, 3), np.float32)
        backgrounds = np.empty_like(pictures)
        reach = (np.abs(cam_x - cam_x[0]).max() + np.abs(cam_y - cam_y[0]).max()) * zoom.max()
        margin = 1.5 / min(zoom.min(), 1.0)
        world_w = int(width * margin + 2 * reach + 8)
        world_h = int(height * margin + 2 * reach + 8)
        horizon = float(np.clip((foot_wy - cam_y[0] + world_h / 2 - fig_h * 0.6) / world_h,
                                0.3, 0.8))
        canvas = _world(world_h, world_w, horizon, rng)
        ox, oy = world_w / 2 - cam_x[0], world_h / 2 - cam_y[0]  # world -> canvas px
        shadow_k = rng.uniform(0.3, 0.6)
    for i in range(frames):
        foot = ((subject_x[i] - cam_x[i]) * zoom[i] + cx, (foot_wy - cam_y[i]) * zoom[i] + cy)
        h = fig_h * zoom[i]  # drawn in a box around the figure only (the rest is empty)
        x0, x1 = (int(np.clip(foot[0] + d * h, 0, width)) for d in (-0.75, 0.75))
        y0, y1 = (int(np.clip(foot[1] + d * h, 0, height)) for d in (-1.2, 0.15))
        colour = np.zeros((height, width, 3), np.float32)
        cover = np.zeros((height, width), np.float32)
        if x1 > x0 and y1 > y0:
            colour[y0:y1, x0:x1], cover[y0:y1, x0:x1] = _figure(
                xx[y0:y1, x0:x1], yy[y0:y1, x0:x1], foot, h, phase0 + cadence * i, cols,
                amp=amp, facing=direction, bob=0.12 if walking else 0.0)
        mattes[i] = cover
        if mattes_only:
            continue
        bg = _sample(canvas, ox + cam_x[i] + (xx - cx) / zoom[i],
                     oy + cam_y[i] + (yy - cy) / zoom[i])
        dx, dy = (xx - foot[0]) / (0.35 * h), (yy - foot[1]) / (0.06 * h)
        shaded = bg * (1 - shadow_k * np.exp(-(dx * dx + dy * dy)))[..., None]
        pictures[i] = shaded * (1 - cover[..., None]) + colour * cover[..., None]
        backgrounds[i] = bg
    return Clip(pictures.clip(0, 1), mattes, backgrounds.clip(0, 1), seed, camera)


def photo_shot(photo: np.ndarray, seed: int, kind: str = "follow", frames: int = 16,
               width: int = 480, height: int = 270) -> Clip:
    """A shot made from a real photograph (linear RGB, any size) panned and zoomed along the
    camera path of ``make_motion_clip(seed, kind)`` (scaled to ``width`` x ``height``), with
    that clip's walking figure over it, its feet planted on the photograph. The photograph is
    moved as ``generate`` moves a background plate (``motion.backdrop.Backdrop``: fitted over
    the region every frame shows, so no frame leaves it)."""
    import cv2

    from ..motion.backdrop import Backdrop
    from ..motion.format import Motion

    small = make_motion_clip(seed, kind, frames, height=128, width=round(128 * width / height))
    sx, sy = width / small.mattes.shape[2], height / small.mattes.shape[1]
    scale = np.diag([sx, sy, 1.0])
    camera = np.stack([scale @ h @ np.linalg.inv(scale) for h in small.camera])
    rgb = np.ascontiguousarray(photo[..., :3], np.float32)
    moved = Backdrop(rgb, width, height, "cover", motion=Motion(
        "truth", width, height, 0, dict(enumerate(camera)), {i: 1.0 for i in range(frames)}))
    out_f = np.empty((frames, height, width, 3), np.float32)
    out_b = np.empty_like(out_f)
    mattes = np.empty((frames, height, width), np.float32)
    for i in range(frames):
        m = cv2.resize(small.mattes[i], (width, height), interpolation=cv2.INTER_LINEAR)
        fig = cv2.resize(small.frames[i], (width, height), interpolation=cv2.INTER_LINEAR)
        out_b[i] = np.maximum(moved.at(i), 0.0)
        out_f[i] = out_b[i] * (1 - m[..., None]) + (fig ** 2.2) * m[..., None]
        mattes[i] = m
    return Clip(out_f, mattes, out_b, seed, camera)
