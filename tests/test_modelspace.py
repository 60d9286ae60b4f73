"""Plate space <-> model space: the model frame keeps the plate's aspect and lines up with it."""

from __future__ import annotations

import numpy as np
import pytest

from actanywhere.media.color import ColorContext
from actanywhere.model import modelspace


@pytest.mark.parametrize("w,h,res,pa,expect", [
    (2048, 1080, 256, 1.0, (485, 256, 512, 256)),
    (1920, 1080, 512, 1.0, (910, 512, 960, 512)),
    (1080, 1920, 256, 1.0, (256, 455, 256, 512)),
    (1828, 1556, 256, 2.0, (602, 256, 640, 256)),  # anamorphic: physical aspect 2.35
])
def test_geometry_keeps_physical_aspect(w, h, res, pa, expect):
    g = modelspace.Geometry.fit(w, h, res, pa)
    assert (g.content_w, g.content_h, g.model_w, g.model_h) == expect
    assert g.model_w % 64 == 0 and g.model_h % 64 == 0
    assert abs(g.content_w / g.content_h - w * pa / h) < 0.01
    assert 0 <= g.left <= g.model_w - g.content_w and 0 <= g.top <= g.model_h - g.content_h


def blob(w, h, cx, cy, sigma):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    return np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2)).astype(np.float32)


def centroid(a):
    y, x = np.mgrid[0 : a.shape[0], 0 : a.shape[1]] + 0.5
    return float((a * x).sum() / a.sum()), float((a * y).sum() / a.sum())


@pytest.mark.parametrize("pa", [1.0, 2.0])
def test_round_trip_lines_up_with_the_plate(pa):
    """A feature placed in the plate comes back at the same plate position (sub-pixel), through
    the model frame's scaling and padding and the full colour path."""
    w, h = 1024, 540
    geo = modelspace.Geometry.fit(w, h, 256, pa)
    color = ColorContext()
    for cx, cy in [(100.0, 80.0), (700.5, 300.25), (990.0, 500.0)]:
        img = np.repeat(blob(w, h, cx, cy, 24.0)[..., None], 3, axis=2) * 0.6
        small = geo.to_model(color.to_model(img), 0.0)  # what the model sees (padded)
        assert small.shape == (geo.model_h, geo.model_w, 3)
        back = modelspace.background(geo, color, small)
        assert back.shape == (h, w, 3)
        (bx, by), (ox, oy) = centroid(back[..., 1]), centroid(img[..., 1])
        assert abs(bx - ox) < 0.25 and abs(by - oy) < 0.25, (bx, by, ox, oy)
        assert np.abs(back - img).max() < 0.03


def test_foreground_is_subject_over_gray_with_generate_mask():
    w, h = 256, 128
    geo = modelspace.Geometry.fit(w, h, 64, 1.0)
    color = ColorContext()
    matte = np.zeros((h, w), np.float32)
    matte[32:96, 64:128] = 1.0
    subject = np.zeros((h, w, 3), np.float32)
    subject[matte > 0] = 0.18  # premultiplied mid grey
    seg, mask = modelspace.foreground(geo, color, subject, matte)
    assert seg.shape == (geo.model_h, geo.model_w, 3) and mask.shape == seg.shape[:2]
    inside = geo.content(mask)[geo.content_h // 2, geo.content_w * 3 // 8]
    assert inside == pytest.approx(0.0, abs=1e-5)  # subject: keep
    assert mask[0, 0] == pytest.approx(1.0) and seg[0, 0] == pytest.approx(127 / 255)
    encoded = color.to_model(np.full((1, 1, 3), 0.18, np.float32))[0, 0]
    centre = geo.content(seg)[geo.content_h // 2, geo.content_w * 3 // 8]
    assert np.allclose(centre, encoded, atol=1e-3), "subject colour unpremultiplied, encoded"
    if geo.model_h > geo.content_h:  # padding is background to generate
        assert mask[-1, 0] == 1.0
