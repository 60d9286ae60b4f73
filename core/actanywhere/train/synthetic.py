"""Procedural training and evaluation clips whose truth is known.

Each clip is a small scene (sky or wall gradient, a horizon, textured ground, buildings, hills,
a sun, a tiled wall, bright lights whose glow reaches the top of the range as an HDR plate's
highlights do after the model's roll-off) seen by a camera that pans, tilts and zooms, with a
jointed figure (small to frame-filling, hiding much of the ground) walking across it and a soft
contact shadow under its feet. The camera follows the figure by a random amount, so the
background's motion is tied to the subject's (the cue AnimateAnywhere learns from). Everything
is in the model's display-referred sRGB [0, 1]; the matte, the clean background, the true
camera path and the per-frame subject are returned with the frames. A clip is a pure function
of its seed. ``carry`` moves a condition image along the camera path (the model's spatial
condition pathway).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Clip:
    frames: np.ndarray  # (T, H, W, 3) float32, the composited frames
    mattes: np.ndarray  # (T, H, W) float32 subject coverage
    backgrounds: np.ndarray  # (T, H, W, 3) the same view with no subject and no shadow
    seed: int
    #: (T, 3, 3) the true background motion: frame 0's pixels -> frame t's (pixel centres at
    #: integers, as motion.json), for measuring motion sources and engines against the truth
    camera: np.ndarray | None = None


def _smooth(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _value_noise(h: int, w: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """Bilinear value noise with about ``cells`` cells across the width, in [0, 1]."""
    gw = max(2, cells) + 2
    gh = max(2, round(cells * h / w)) + 2
    grid = rng.random((gh, gw)).astype(np.float32)
    ys = np.linspace(0, gh - 1.001, h, dtype=np.float32)
    xs = np.linspace(0, gw - 1.001, w, dtype=np.float32)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _colour(rng: np.random.Generator, lo: float = 0.1, hi: float = 0.9) -> np.ndarray:
    return rng.uniform(lo, hi, 3).astype(np.float32)


def _world(h: int, w: int, horizon: float, rng: np.random.Generator) -> np.ndarray:
    """The scene canvas (h, w, 3): upper backdrop, ground below ``horizon`` (0..1 of h)."""
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    xx = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    top, mid = _colour(rng, 0.2, 0.95), _colour(rng, 0.2, 0.95)
    backdrop = top + (mid - top) * np.clip(yy / horizon, 0, 1)
    backdrop = backdrop * (0.85 + 0.3 * _value_noise(h, w, 6, rng)[..., None])
    canvas = np.broadcast_to(backdrop, (h, w, 3)).copy()
    kind = rng.integers(0, 4)
    if kind == 0:  # buildings
        x = 0.0
        while x < 1.0:
            bw = rng.uniform(0.04, 0.12)
            bh = rng.uniform(0.15, 0.6) * horizon
            col = _colour(rng, 0.1, 0.7)
            inside = (xx >= x) & (xx < x + bw) & (yy > horizon - bh) & (yy <= horizon)
            windows = ((np.floor(xx * w / 3) + np.floor(yy * h / 3)) % 3 == 0) * 0.15
            canvas = np.where(inside, col * (0.9 + windows), canvas)
            x += bw + rng.uniform(0.0, 0.08)
    elif kind == 1:  # hills
        phase, freq = rng.uniform(0, 6.3), rng.uniform(6, 18)
        ridge = horizon - (0.12 + 0.08 * np.sin(freq * xx + phase)) * horizon
        col = _colour(rng, 0.1, 0.6)
        canvas = np.where(yy > ridge, col * (0.8 + 0.4 * _value_noise(h, w, 20, rng)[..., None]),
                          canvas)
    elif kind == 2:  # a sun or moon
        cx, cy, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.6) * horizon, rng.uniform(0.03, 0.08)
        d = np.sqrt(((xx - cx) * w / h) ** 2 + (yy - cy) ** 2)
        glow = _smooth(-d, -r * 1.05, -r * 0.95)
        canvas = canvas * (1 - glow) + _colour(rng, 0.7, 1.0) * glow
    else:  # a tiled or panelled wall: sharp, regular structure
        cols_n, rows_n = rng.integers(8, 30), rng.integers(3, 10)
        grout = _colour(rng, 0.05, 0.5)
        u, v = (xx * cols_n) % 1.0, (yy / horizon * rows_n) % 1.0
        line = (u < 0.08) | (v < 0.08 * cols_n / rows_n * horizon * w / h)
        shade = 0.8 + 0.4 * rng.random((rows_n + 1, cols_n + 1)).astype(np.float32)
        tile = shade[np.minimum((yy / horizon * rows_n).astype(int), rows_n)[..., 0],
                     np.minimum((xx * cols_n).astype(int), cols_n)[..., 0]][..., None]
        canvas = np.where((yy <= horizon) & line, grout, canvas * tile)
    for _ in range(int(rng.integers(0, 4)) if rng.random() < 0.5 else 0):  # lights
        cx, cy = rng.uniform(0.02, 0.98), rng.uniform(0.05, 0.95) * horizon
        r = rng.uniform(0.004, 0.02)
        d = np.sqrt(((xx - cx) * w / h) ** 2 + (yy - cy) ** 2)
        core = _smooth(-d, -r * 1.2, -r * 0.8)
        halo = np.exp(-((d / (r * rng.uniform(2.5, 5))) ** 2)) * 0.6
        tint = 1.0 - 0.15 * rng.random(3).astype(np.float32)
        canvas = canvas + halo * (1 - core) * tint
        canvas = canvas * (1 - core) + core * tint * 1.2
    ground = _colour(rng, 0.1, 0.8)
    tex = 0.7 + 0.5 * _value_noise(h, w, 40, rng)[..., None] * _value_noise(h, w, 8, rng)[..., None]
    shade = 0.75 + 0.35 * np.clip((yy - horizon) / (1 - horizon), 0, 1)
    return np.where(yy > horizon, ground * tex * shade, canvas).clip(0, 1).astype(np.float32)


def _sample(canvas: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear lookup of ``canvas`` at fractional pixel positions (clamped at the edges)."""
    h, w = canvas.shape[:2]
    xs = np.clip(xs, 0, w - 1.001)
    ys = np.clip(ys, 0, h - 1.001)
    x0, y0 = xs.astype(int), ys.astype(int)
    fx, fy = (xs - x0)[..., None], (ys - y0)[..., None]
    top = canvas[y0, x0] * (1 - fx) + canvas[y0, x0 + 1] * fx
    bottom = canvas[y0 + 1, x0] * (1 - fx) + canvas[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _capsule(px: np.ndarray, py: np.ndarray, a: tuple[float, float], b: tuple[float, float],
             ) -> np.ndarray:
    abx, aby = b[0] - a[0], b[1] - a[1]
    t = np.clip(((px - a[0]) * abx + (py - a[1]) * aby) / max(abx * abx + aby * aby, 1e-6), 0, 1)
    return np.hypot(px - (a[0] + t * abx), py - (a[1] + t * aby))


#: a leg's horizontal reach per radian of swing, in units of height / 6 (thigh 1.4 + shin 1.35 / 2)
STRIDE = 1.4 + 1.35 * 0.5


def _figure(px: np.ndarray, py: np.ndarray, foot: tuple[float, float], height: float,
            phase: float, cols: list[np.ndarray], amp: float = 0.55, facing: float = 1.0,
            bob: float = 0.12) -> tuple[np.ndarray, np.ndarray]:
    """A walking figure standing on ``foot`` (its hip above it): (colour (H, W, 3), coverage
    (H, W)). ``amp``: the legs' swing (radians), ``facing`` 1 right, -1 left."""
    s = height / 6.0
    fx, fy = foot
    hip = (fx, fy - 2.8 * s + bob * s * np.sin(2 * phase))
    neck = (fx + facing * 0.15 * s, hip[1] - 2.2 * s)
    head = (fx + facing * 0.25 * s, neck[1] - 0.65 * s)
    swing = amp * np.sin(phase)
    parts = [(hip, neck, 0.55 * s, cols[0])]
    for sign, shade in ((1, 1.0), (-1, 0.75)):
        knee = (hip[0] + facing * 1.4 * s * np.sin(sign * swing),
                hip[1] + 1.4 * s * np.cos(swing))
        toe = (knee[0] + facing * 1.35 * s * np.sin(sign * swing * 0.5), fy)
        elbow = (neck[0] - facing * 1.0 * s * np.sin(sign * swing), neck[1] + 1.0 * s)
        hand = (elbow[0] - facing * 0.9 * s * np.sin(sign * swing - 0.4), elbow[1] + 0.9 * s)
        parts += [(hip, knee, 0.3 * s, cols[1] * shade), (knee, toe, 0.26 * s, cols[1] * shade),
                  (neck, elbow, 0.22 * s, cols[0] * shade), (elbow, hand, 0.2 * s, cols[2])]
    parts.append((head, head, 0.5 * s, cols[2]))
    colour = np.zeros((*px.shape, 3), np.float32)
    cover = np.zeros(px.shape, np.float32)
    edge = max(0.5, 0.06 * s)
    for a, b, radius, col in parts:
        d = _capsule(px, py, a, b) - radius
        alpha = _smooth(-d, -edge, edge)
        lit = 0.6 + 0.4 * np.clip(-d / radius, 0, 1) ** 0.5
        colour = colour * (1 - alpha[..., None]) + (col * lit[..., None]) * alpha[..., None]
        cover = cover + alpha * (1 - cover)
    return colour.astype(np.float32), cover.astype(np.float32)


def make_clip(seed: int, frames: int = 8, height: int = 64, width: int = 64) -> Clip:
    """One procedural clip of ``frames`` frames at ``width`` x ``height``."""
    rng = np.random.default_rng(seed)
    horizon = rng.uniform(0.45, 0.7)
    world_w, world_h = int(width * 2.5), int(height * 1.25)
    canvas = _world(world_h, world_w, horizon, rng)
    walk = rng.uniform(0.6, 2.2) * width / 32 * rng.choice([-1, 1])  # world px per frame
    follow = rng.uniform(0.0, 1.0)  # how much the camera tracks the figure
    zoom0 = rng.uniform(1.0, 1.15)
    zoom_rate = rng.uniform(-0.01, 0.015) if rng.random() < 0.7 else rng.uniform(-0.02, 0.03)
    tilt = rng.uniform(-0.008, 0.008) * height if rng.random() < 0.4 else 0.0  # world px/frame
    cam0 = world_w / 2 + rng.uniform(-0.2, 0.2) * world_w
    start = cam0 + rng.uniform(-0.25, 0.25) * width - walk * frames / 2
    fig_h = rng.uniform(0.35, 0.65 if rng.random() < 0.7 else 0.9) * height
    foot_y_view = rng.uniform(min(max(horizon * height + 4, fig_h), height - 2), height - 2)
    cols = [_colour(rng, 0.05, 0.95) for _ in range(3)]
    phase0, cadence = rng.uniform(0, 6.3), rng.uniform(0.5, 0.9)
    shadow_k = rng.uniform(0.3, 0.6)

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out_f = np.empty((frames, height, width, 3), np.float32)
    out_m = np.empty((frames, height, width), np.float32)
    out_b = np.empty_like(out_f)
    out_c = np.empty((frames, 3, 3))
    for t in range(frames):
        subject_x = start + walk * t
        cam_x = cam0 + follow * (subject_x - start - walk * frames / 2)
        zoom = zoom0 + zoom_rate * t
        cam_y = world_h * 0.5 + tilt * (t - frames / 2)
        if t == 0:
            cam_x0, cam_y0, zoom_0 = cam_x, cam_y, zoom
        # view x = (world x - cam_x) * zoom + width / 2: frame 0's pixel -> world -> frame t
        k = zoom / zoom_0
        out_c[t] = [[k, 0.0, (cam_x0 - cam_x) * zoom + width / 2 * (1 - k)],
                    [0.0, k, (cam_y0 - cam_y) * zoom + height / 2 * (1 - k)], [0.0, 0.0, 1.0]]
        bg = _sample(canvas, cam_x + (xx - width / 2) / zoom, cam_y + (yy - height / 2) / zoom)
        foot = ((subject_x - cam_x) * zoom + width / 2, foot_y_view)
        colour, cover = _figure(xx, yy, foot, fig_h * zoom / zoom0, phase0 + cadence * t, cols)
        dx, dy = (xx - foot[0]) / (0.35 * fig_h), (yy - foot[1]) / (0.06 * fig_h)
        shadow = shadow_k * np.exp(-(dx * dx + dy * dy))
        shaded = bg * (1 - shadow[..., None])
        out_f[t] = shaded * (1 - cover[..., None]) + colour * cover[..., None]
        out_m[t] = cover
        out_b[t] = bg
    return Clip(out_f.clip(0, 1), out_m, out_b.clip(0, 1), seed, out_c)


def carry(camera: np.ndarray, image: np.ndarray, source: int,
          frames: np.ndarray | None = None) -> np.ndarray:
    """``image`` as frame ``source`` sees it, moved along ``camera`` (``Clip.camera``) to each of
    ``frames`` (default: every frame): (T, H, W, 3). Where a frame sees past the image's edges,
    the edge pixels repeat (as the engine's overscan canvas does when the plate runs out)."""
    h, w = image.shape[:2]
    back = np.linalg.inv(camera[source])
    picks = range(len(camera)) if frames is None else frames
    return np.stack([cv2.warpPerspective(image, camera[t] @ back, (w, h), flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_REPLICATE)
                     for t in picks]).astype(np.float32)
