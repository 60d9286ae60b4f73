"""The built-in demo shot: synthetic but honest, so ``actanywhere demo`` needs no download.

A 2K plate (2048x1080 display window, a smaller data window, half-float EXR with an alpha
matte) of a walking, deforming figure with soft edges and highlights above 1, over a textured
wall and a perspective floor, with a camera pan (``PAN`` pixels at 2K over the shot, to the
right: the set slides left); plus an HDR background plate of a new
scene (sky with a sun far above 1, hills, grass) at another aspect ratio.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .. import catalog, spec, spec_files
from ..media import imageio, imagewrite
from ..media.color import ColorContext
from ..media.frames import Sequence
from ..media.imageio import Window
from ..media.preview import animated_gif, contact_sheet, thumbnail
from ..progress import ProgressEvent, Reporter, null_reporter
from ..shot import job

FIRST_FRAME = 1001
#: the camera's pan over the whole shot, in pixels of a 2048-wide plate
PAN = 400.0


@dataclass
class DemoPaths:
    root: str
    plate: str
    background: str
    spec: str
    output: str
    contact_sheet: str
    preview: str


def paths(root: str) -> DemoPaths:
    root = os.path.abspath(root)
    return DemoPaths(root, os.path.join(root, "plate", "plate.####.exr"),
                     os.path.join(root, "background.exr"), os.path.join(root, "shot.json"),
                     os.path.join(root, "output", "comp.####.exr"),
                     os.path.join(root, "contact_sheet.png"), os.path.join(root, "preview.gif"))


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _noise(h: int, w: int, rng: np.random.Generator, scale: int) -> np.ndarray:
    """Smooth value noise: random grid upsampled bilinearly."""
    gh, gw = h // scale + 2, w // scale + 2
    grid = rng.random((gh, gw)).astype(np.float32)
    ys = np.linspace(0, gh - 1.001, h)
    xs = np.linspace(0, gw - 1.001, w)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def _scene(h: int, w: int, pan: float, tex: np.ndarray) -> np.ndarray:
    """The plate's own set: a textured wall and a checkered floor in perspective."""
    horizon = int(h * 0.62)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shift = int(pan) % tex.shape[1]
    wall_tex = np.roll(tex, -shift, axis=1)[:h, :w]
    wall = np.stack([0.32, 0.27, 0.22]).astype(np.float32) * (0.7 + 0.6 * wall_tex[..., None])
    wall *= (0.6 + 0.4 * yy / h)[..., None]
    depth = 40.0 / np.maximum(yy - horizon, 1.0)
    u = (xx - w / 2 + pan) * depth / 40.0
    v = depth * 6.0
    checker = (np.floor(u * 0.08) + np.floor(v)) % 2
    floor = np.where(checker[..., None] > 0, [0.45, 0.42, 0.38], [0.12, 0.11, 0.10]).astype(
        np.float32)
    floor *= (0.5 + 0.5 * np.clip((yy - horizon) / (h - horizon), 0, 1))[..., None]
    return np.where((yy > horizon)[..., None], floor, wall).astype(np.float32)


def _segment_distance(px, py, ax, ay, bx, by):
    abx, aby = bx - ax, by - ay
    t = np.clip(((px - ax) * abx + (py - ay) * aby) / max(abx * abx + aby * aby, 1e-6), 0, 1)
    return np.hypot(px - (ax + t * abx), py - (ay + t * aby))


def _figure(h: int, w: int, t: float, n: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Premultiplied colour, alpha and foot position of the walking figure at time t in [0,1)."""
    s = h / 1080.0
    cx = w * (0.25 + 0.5 * t)
    hip_y = h * 0.58 + 12 * s * np.sin(4 * np.pi * t * n / 12)
    swing = 0.6 * np.sin(2 * np.pi * t * n / 12)
    breathe = 1.0 + 0.08 * np.sin(2 * np.pi * t * n / 8)
    neck = (cx + 10 * s, hip_y - 260 * s * breathe)
    head = (cx + 16 * s, hip_y - 330 * s * breathe)
    thigh = 190 * s
    parts = []  # (ax, ay, bx, by, radius, colour)
    for sign, shade in ((1, 1.0), (-1, 0.8)):
        knee = (cx + thigh * np.sin(sign * swing), hip_y + thigh * np.cos(sign * swing))
        foot = (knee[0] + thigh * np.sin(sign * swing * 0.5 - 0.2 * sign),
                knee[1] + thigh * np.cos(sign * swing * 0.5))
        elbow = (neck[0] + 140 * s * np.sin(-sign * swing), neck[1] + 140 * s * np.cos(swing))
        hand = (elbow[0] + 130 * s * np.sin(-sign * swing + 0.5),
                elbow[1] + 120 * s * np.cos(swing * 0.7))
        parts += [(cx, hip_y, *knee, 34 * s, np.array([0.05, 0.08, 0.25]) * shade),
                  (*knee, *foot, 28 * s, np.array([0.05, 0.08, 0.25]) * shade),
                  (*neck, *elbow, 24 * s, np.array([0.5, 0.06, 0.04]) * shade),
                  (*elbow, *hand, 20 * s, np.array([0.6, 0.42, 0.32]) * shade)]
    parts.insert(0, (cx, hip_y, *neck, 62 * s * breathe, np.array([0.55, 0.07, 0.05])))
    parts.append((*head, *head, 52 * s, np.array([0.62, 0.45, 0.35])))
    x0, x1 = int(max(cx - 400 * s, 0)), int(min(cx + 400 * s, w))
    y0, y1 = int(max(head[1] - 80 * s, 0)), int(min(hip_y + 420 * s, h))
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    alpha = np.zeros((y1 - y0, x1 - x0), np.float32)
    colour = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
    edge = 2.5 * s + 6 * s * abs(np.cos(2 * np.pi * t * n / 12))  # motion-softened edges
    for ax, ay, bx, by, radius, col in parts:
        d = _segment_distance(xx, yy, ax, ay, bx, by) - radius
        a = _smoothstep(edge, -edge, d)
        shade = np.clip(0.45 + 0.55 * np.clip(-d / radius, 0, 1) ** 0.5, 0, 1)
        c = col[None, None, :].astype(np.float32) * shade[..., None]
        colour = colour * (1 - a[..., None]) + c * a[..., None]
        alpha = alpha + a * (1 - alpha)
    # A specular highlight on the head, well above 1.0: it must survive the round trip.
    spec = np.exp(-(((xx - head[0] + 18 * s) ** 2 + (yy - head[1] + 22 * s) ** 2) / (180 * s * s)))
    colour += (3.0 * spec)[..., None] * np.array([1.0, 0.95, 0.85], np.float32)
    full_a = np.zeros((h, w), np.float32)
    full_c = np.zeros((h, w, 3), np.float32)
    full_a[y0:y1, x0:x1] = alpha
    full_c[y0:y1, x0:x1] = colour * alpha[..., None]
    return full_c, full_a, (int(cx), int(hip_y + 2 * thigh))


def make_background(path: str, width: int = 2560, height: int = 1440, seed: int = 7) -> None:
    """An HDR new scene: sky gradient, a sun far above 1, hills and grass."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    v = yy / height
    sky = (np.array([0.9, 0.45, 0.2]) * (v[..., None] * 1.4) + np.array([0.12, 0.25, 0.6])
           * (1 - v[..., None])).astype(np.float32)
    sun = np.exp(-(((xx - width * 0.7) ** 2 + (yy - height * 0.42) ** 2) / (2 * (height * 0.03)
                                                                          ** 2)))
    sky += (25.0 * sun)[..., None] * np.array([1.0, 0.85, 0.6], np.float32)
    ridge = height * (0.55 + 0.05 * np.sin(xx[0] / width * 9.0) + 0.03 * np.sin(xx[0] / width
                                                                                 * 23.0 + 1))
    hills = (yy > ridge[None, :])[..., None]
    grass = _noise(height, width, rng, 24)[..., None] * 0.5 + 0.5
    ground = np.array([0.08, 0.16, 0.05], np.float32) * grass * (0.6 + 0.8 * v[..., None])
    img = np.where(hills, ground, sky).astype(np.float32)
    imagewrite.write_exr(path, ["R", "G", "B"], img, Window(0, 0, width, height),
                      {"Software": "actanywhere demo", "Copyright": "CC0 synthetic"})


def make_plate(pattern: str, nframes: int = 24, width: int = 2048, height: int = 1080,
               seed: int = 3, report: Reporter = null_reporter, threads: int = 2) -> None:
    """The plate sequence, frames FIRST_FRAME onward, RGBA half EXR with a smaller data window."""
    rng = np.random.default_rng(seed)
    tex = _noise(height, width * 2, rng, 16) * 0.6 + _noise(height, width * 2, rng, 4) * 0.4
    display = Window(0, 0, width, height)
    data = Window(32, 24, width - 64, height - 48)
    os.makedirs(os.path.dirname(pattern), exist_ok=True)
    seq = Sequence(pattern, tuple(range(FIRST_FRAME, FIRST_FRAME + nframes)))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    s = height / 1080

    def one(i: int) -> int:
        frame = seq.frames[i]
        t = i / max(nframes, 1)
        scene = _scene(height, width, pan=PAN * t * width / 2048, tex=tex)
        colour, alpha, (fx, fy) = _figure(height, width, t, nframes)
        # The plate's own contact shadow, so the set is lit like a real plate.
        shadow = np.exp(-(((xx - fx) / (160 * s)) ** 2 + ((yy - fy) / (26 * s)) ** 2))
        scene *= (1 - 0.6 * shadow)[..., None]
        rgb = colour + scene * (1 - alpha[..., None])
        crop = (slice(data.y, data.y + data.height), slice(data.x, data.x + data.width))
        rgba = np.concatenate([rgb[crop], alpha[crop][..., None]], axis=-1)
        imagewrite.write_exr(seq.path(frame), ["R", "G", "B", "A"], rgba, display,
                          {"Software": "actanywhere demo", "Copyright": "CC0 synthetic",
                           "capDate": "2026:01:01 12:00:00", "owner": "ActAnywhere demo"},
                          data=data)
        return frame

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for done, frame in enumerate(pool.map(one, range(nframes)), start=1):
            report(ProgressEvent("demo shot", done, nframes, frame))


#: Diffusion settings for the shipped small model: it was trained on 8-frame, 64 px clips.
SHIPPED_SETTINGS = {"resolution": 64, "frames_per_window": 8, "overlap": 2, "steps": 25,
                    "guidance": 2.0, "seed": 0}


def build_spec(p: DemoPaths, engine: str = "diffusion") -> spec.ShotSpec:
    data = {
        "plate": {"path": p.plate},
        "matte": {"source": "alpha", "channel": "A"},
        "background": {"path": p.background},
        "engine": {"name": engine},
        # the plate's own set outside the matte shows the pan: the new background follows it
        "motion": {"source": "auto"},
        "output": {"path": p.output, "existing": "overwrite"},
    }
    traits = catalog.engine(engine)
    if traits.model == "actanywhere" and traits.settings:  # it runs the shipped model
        data[traits.settings] = dict(SHIPPED_SETTINGS)
    return spec.from_dict(data)


def run_demo(root: str, nframes: int = 24, width: int = 2048, height: int = 1080,
             engine: str = "diffusion", report: Reporter = null_reporter,
             threads: int = 2) -> DemoPaths:
    """Make the demo shot (once), run it, write a contact sheet and an animated preview."""
    p = paths(root)
    os.makedirs(p.root, exist_ok=True)
    stamp = os.path.join(p.root, ".shot.json")
    wanted = {"frames": nframes, "width": width, "height": height, "version": 2}
    current = None
    if os.path.exists(stamp):
        with open(stamp) as fh:
            current = json.load(fh)
    if current != wanted:
        make_background(p.background)
        make_plate(p.plate, nframes, width, height, report=report, threads=threads)
        with open(stamp, "w") as fh:
            json.dump(wanted, fh)
    shot = build_spec(p, engine)
    shot.threads = threads
    with open(p.spec, "w") as fh:
        fh.write(spec_files.dump_json(shot, set_only=True))
    result = job.run(shot, report)
    write_previews(p, result.frames)
    return p


def write_previews(p: DemoPaths, frame_list: list[int], width: int = 384) -> None:
    """Contact sheet (plate / comp / background rows) and a plate|comp animated GIF."""
    color = ColorContext()
    plate = Sequence(p.plate, tuple(frame_list))
    out = Sequence(p.output, tuple(frame_list))
    picks = [frame_list[round(i * (len(frame_list) - 1) / 5)] for i in range(6)]
    rows: list[list[np.ndarray]] = [[], [], []]
    gif = []
    for f in frame_list:
        pl = imageio.read(plate.path(f), ["R", "G", "B"]).pixels
        img = imageio.read(out.path(f), ["R", "G", "B", "bg.R", "bg.G", "bg.B"]).pixels
        pt, ct = thumbnail(pl, color, width), thumbnail(img[..., :3], color, width)
        gif.append(np.concatenate([pt, ct], axis=1))
        if f in picks:
            rows[0].append(pt)
            rows[1].append(ct)
            rows[2].append(thumbnail(img[..., 3:], color, width))
    contact_sheet(p.contact_sheet, rows)
    animated_gif(p.preview, gif)
