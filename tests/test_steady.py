"""Steady shading (issue 33.11): the model's change to the moved background keeps its light,
loses its hue cast and its boil, and follows the camera; and a whole diffusion take on a grey
photograph-like background keeps the background's hue with the shipped model."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import read_exr, write_exr

from actanywhere import spec
from actanywhere.engines import steady
from actanywhere.model.modelspace import Geometry
from actanywhere.motion.format import Motion
from actanywhere.shot import job
from actanywhere.train import metrics

GEO = Geometry.fit(320, 180, 64)  # content 114x64 in a 128x64 model frame
H, W = GEO.content_h, GEO.content_w


def _texture(seed: int = 0, h: int = H, w: int = W) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grey = 0.2 + 0.6 * rng.random((h, w), np.float32)
    return np.repeat(grey[..., None], 3, axis=2)


def _frame(content: np.ndarray) -> np.ndarray:
    full = np.full((GEO.model_h, GEO.model_w, 3), 0.5, np.float32)
    GEO.content(full)[...] = content
    return full


def _chroma(x: np.ndarray) -> np.ndarray:
    return x - (x @ steady.LUMA)[..., None]


def _shot(n: int = 12, seed: int = 1):
    """A still grey background; the 'model' darkens a fixed region (a shadow it means) and
    adds a purple cast and brightness noise that change every frame."""
    rng = np.random.default_rng(seed)
    moved = _texture()
    gen, shade = {}, np.ones((H, W), np.float32)
    shade[30:50, 40:70] = 0.6
    for f in range(1, n + 1):
        cast = np.array([0.06, -0.04, 0.08]) * (1 + 0.5 * rng.standard_normal())
        boil = 1 + 0.08 * rng.standard_normal((H // 8 + 1, W // 8 + 1))
        boil = np.kron(boil, np.ones((8, 8)))[:H, :W]
        gen[f] = _frame(np.clip(moved * (shade * boil)[..., None] + cast, 0, 1))
    return gen, {f: moved for f in gen}, {f: np.ones((GEO.model_h, GEO.model_w)) for f in gen}


def test_the_plates_hue_is_kept_and_the_models_light_stays():
    gen, moved, bg = _shot()
    out = steady.steady(gen, moved, bg, geo=GEO, motion=None, frames=3.0, colour=0.0,
                        exposure=False)
    for f in gen:
        c = GEO.content(out[f])
        assert np.abs(_chroma(c)).max() < 1e-5  # grey in, grey out: no purple
        # the shadow the model means (0.6 of the light, display) is still there
        inside = (c @ steady.LUMA)[34:46, 44:66].mean() / (moved[f] @ steady.LUMA)[34:46,
                                                                                   44:66].mean()
        assert 0.5 < inside < 0.7, inside
    with_colour = steady.steady(gen, moved, bg, geo=GEO, motion=None, frames=3.0, colour=1.0,
                                exposure=False)
    assert np.abs(_chroma(GEO.content(with_colour[5]))).mean() > 0.03  # the model's hue asked


def test_boil_is_steadied_and_the_exposure_is_the_plates():
    gen, moved, bg = _shot()
    raw = np.stack([GEO.content(gen[f]) for f in sorted(gen)])
    ones = np.ones(raw.shape[:3])
    out = steady.steady(gen, moved, bg, geo=GEO, motion=None, frames=3.0, colour=0.0,
                        exposure=False)
    calm = np.stack([GEO.content(out[f]) for f in sorted(out)])
    assert metrics.flicker(calm, ones) < 0.25 * metrics.flicker(raw, ones)
    # the model brightened the frame overall (the cast): removed, its shadow kept
    lum = (calm @ steady.LUMA).mean(axis=(1, 2))
    plate = (moved[1] @ steady.LUMA).mean()
    assert np.all(lum < plate), (lum, plate)  # only the shadow remains, which darkens
    kept = steady.steady(gen, moved, bg, geo=GEO, motion=None, frames=0.0, colour=1.0,
                         exposure=True)
    # steady 0, colour 1, exposure on: the model's own frame (blurred by one model pixel)
    assert np.abs(GEO.content(kept[3]) - GEO.content(gen[3])).mean() < 0.05


def test_the_change_follows_the_camera_and_ignores_what_the_subject_covered():
    n, step = 9, 3  # content pixels a frame, to the left: the set slides left
    wide = _texture(seed=4, w=W + step * n)
    moved = {f: wide[:, step * (f - 1): step * (f - 1) + W] for f in range(1, n + 1)}
    scale = GEO.plate_w / GEO.content_w
    motion = Motion(source="keys", width=GEO.plate_w, height=GEO.plate_h, reference_frame=1,
                    frames={f: np.array([[1, 0, -step * (f - 1) * scale], [0, 1, 0], [0, 0, 1]])
                            for f in moved})
    gen, bg = {}, {}
    for f, m in moved.items():
        shade = np.ones((H, W), np.float32)
        x = 60 - step * (f - 1)  # a shadow on the set, moving with it
        shade[20:40, x: x + 12] = 0.5
        g = m * shade[..., None]
        mask = np.ones((GEO.model_h, GEO.model_w), np.float32)
        if f == 5:  # the subject covered part of frame 5, where the model echoed it in red
            g = g.copy()
            g[10:50, 30:45] = [0.9, 0.1, 0.1]
            GEO.content(mask)[10:50, 30:45] = 0.0
        gen[f], bg[f] = _frame(g), mask
    out = steady.steady(gen, moved, bg, geo=GEO, motion=motion, frames=2.0, colour=1.0,
                        exposure=True)
    for f in (3, 5, 7):
        c = GEO.content(out[f])
        ratio = (c @ steady.LUMA) / np.maximum(moved[f] @ steady.LUMA, 1e-3)
        x = 60 - step * (f - 1)
        assert ratio[24:36, x + 3: x + 9].mean() < 0.62, f  # the shadow is where it belongs
        assert ratio[24:36, x + 16: x + 24].mean() > 0.9, f  # and not smeared beside it
    # frame 5's covered region comes from its neighbours: no red
    assert np.abs(_chroma(GEO.content(out[5])[14:46, 33:42])).mean() < 0.03


# ------------------------------------------------------------------- a whole diffusion take
def _grey_photo(path, w=480, h=270):
    """A grey 'photograph': soft shapes and fine texture, scene-linear, Y only."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    y = 0.18 + 0.12 * np.sin(xx / 37) * np.cos(yy / 23) + 0.05 * rng.random((h, w))
    y[h // 2:, : w // 3] *= 0.3  # a dark trunk
    write_exr(path, y[..., None].astype(np.float32), channels=("Y",))


def _take(tmp_path, name, **diffusion):
    out = tmp_path / name / "o.####.exr"
    data = {"plate": {"path": str(tmp_path / "plate" / "plate.####.exr")},
            "background": {"path": str(tmp_path / "bg.exr")},
            "engine": {"name": "diffusion"}, "motion": {"source": "none"},
            "diffusion": {"steps": 8, **diffusion},
            "output": {"path": str(out), "layers": ["rgba", "bg"], "proxy": False}}
    job.run(spec.ShotSpec.model_validate(data))
    frames = []
    for f in range(1, 9):
        px, s = read_exr(str(out).replace("####", f"{f:04d}"))
        names = list(s.channelnames)
        rgb = px[..., [names.index(f"bg.{c}") for c in "RGB"]]
        frames.append(np.clip(rgb, 0, 1) ** (1 / 2.2))
    return np.stack(frames)


@pytest.mark.slow
def test_shipped_model_on_a_grey_photograph_keeps_its_hue_and_does_not_boil(tmp_path):
    pytest.importorskip("torch")
    _grey_photo(tmp_path / "bg.exr")
    (tmp_path / "plate").mkdir()
    for f in range(1, 9):  # a figure walking right, the alpha its matte
        rgba = np.zeros((180, 320, 4), np.float32)
        x = 100 + 8 * f
        rgba[60:170, x: x + 30] = [0.5, 0.1, 0.05, 1.0]
        write_exr(tmp_path / "plate" / f"plate.{f:04d}.exr", rgba)
    before = _take(tmp_path, "before", steady=0)
    after = _take(tmp_path, "after")
    hue_before = np.abs(_chroma(before)).mean()
    hue_after = np.abs(_chroma(after)).mean()
    assert hue_before > 0.01, hue_before  # the small model's cast, as it was
    assert hue_after < 0.002, hue_after
    ones = np.ones(after.shape[:3])
    assert metrics.flicker(after, ones) < 0.5 * metrics.flicker(before, ones)
