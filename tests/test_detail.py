"""Plate-resolution detail: the moved plate where the model kept it, the model where it did not."""

from __future__ import annotations

import numpy as np

from actanywhere.engines import detail
from actanywhere.media.color import ColorContext


def _plate(h=96, w=160):
    rng = np.random.default_rng(0)
    plate = (0.05 + 0.5 * rng.random((h, w, 3))).astype(np.float32)
    plate[10:14, 20:24] = 40.0  # a sun: far above the model's ceiling
    return plate


def test_where_the_model_kept_the_plate_the_plate_comes_back_pixel_for_pixel():
    color = ColorContext()
    plate = _plate()
    small = color.to_model(plate[::8, ::8])  # what the model saw and, here, gave back
    agree, gain = detail.agreement(small, small, tolerance=0.1)
    assert np.all(agree == 1.0) and np.allclose(gain, 1.0)
    enlarged = np.full_like(plate, 0.3)  # a soft model frame: must not show
    out = detail.combine(enlarged, plate, agree, gain)
    assert np.allclose(out, plate, rtol=1e-5) and out.max() == 40.0


def test_where_the_model_changed_the_content_its_frame_wins():
    plate = _plate()
    ramp = np.linspace(0.0, 0.3, 20, dtype=np.float32)[None, :, None]
    seen = np.broadcast_to(0.15 + ramp, (12, 20, 3)).copy()
    other = np.broadcast_to(0.85 - ramp, (12, 20, 3)).copy()  # the model painted other things
    agree, gain = detail.agreement(other, seen, tolerance=0.1)
    assert agree.mean() < 0.05
    enlarged = np.full_like(plate, 0.3)
    out = detail.combine(enlarged, plate, agree, gain)
    assert np.abs(out - enlarged).mean() < 0.05 * np.abs(plate - enlarged).mean()


def test_shading_the_model_added_is_kept_on_the_plate_detail():
    plate = _plate()
    seen = np.full((12, 20, 3), 0.6, np.float32)
    darker = seen * 0.95  # a soft contact shadow, within the tolerance
    agree, gain = detail.agreement(darker, seen, tolerance=0.1)
    assert agree.min() > 0.8
    assert np.allclose(gain, 0.95**detail.GAMMA, rtol=1e-3)
    out = detail.combine(np.full_like(plate, 0.3), plate, agree, gain)
    mid = (plate > 0.3) & (plate < 0.55)  # where the soft model frame would brighten, not darken
    ratio = np.median((out / plate)[mid])
    assert 0.8 < ratio < 0.97, ratio  # darker, by about the model's shading in linear light
    # the plate's texture survives: its pixel-to-pixel variation is still there
    assert np.std(np.diff(out[20:, 30:], axis=1)) > 0.7 * np.std(np.diff(plate[20:, 30:], axis=1))


def test_the_subjects_echo_in_the_model_frame_is_filled_from_its_surroundings():
    h, w = 32, 64
    ramp = np.linspace(0.2, 0.8, w, dtype=np.float32)
    background = np.broadcast_to(np.stack([ramp, 0.5 * ramp, 1 - ramp], -1), (h, w, 3)).copy()
    matte = np.zeros((h, w), np.float32)
    matte[8:24, 28:34] = 1.0
    generated = background.copy()
    generated[7:25, 27:35] = [0.9, 0.05, 0.05]  # a red ghost of the subject, a pixel wider
    out = detail.without_subject(generated, matte)
    ghost = np.abs(generated - background)[7:25, 27:35].mean()
    assert np.abs(out - background)[7:25, 27:35].mean() < 0.1 * ghost
    hole = np.zeros((h, w), bool)
    hole[7:25, 27:35] = True
    assert np.array_equal(out[~hole], generated[~hole])  # away from the subject: untouched
    assert detail.without_subject(generated, np.zeros((h, w), np.float32)) is generated
