import numpy as np
import pytest

from actanywhere.errors import SpecError
from actanywhere.media import color


def srgb_encode(x):
    """The sRGB transfer function, written from IEC 61966-2-1 for an independent check."""
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def test_pinned_builtin_config_and_spaces():
    ctx = color.ColorContext()
    assert ctx.ref == color.DEFAULT_CONFIG
    assert ctx.working_space == "Linear Rec.709 (sRGB)"
    assert ctx.model_space == "sRGB Encoded Rec.709 (sRGB)"


def test_ocio_env_is_honoured(monkeypatch):
    other = "ocio://cg-config-v2.2.0_aces-v1.3_ocio-v2.4"
    monkeypatch.setenv("OCIO", other)
    assert color.ColorContext().ref == other
    assert color.ColorContext(config=color.DEFAULT_CONFIG).ref == color.DEFAULT_CONFIG


def test_bad_config_and_colourspace_name_the_field(monkeypatch):
    monkeypatch.setenv("OCIO", "/nonexistent/config.ocio")
    with pytest.raises(SpecError, match="cannot load the OCIO config"):
        color.ColorContext()
    monkeypatch.delenv("OCIO")
    with pytest.raises(SpecError, match="plate.colorspace 'Nope'"):
        color.ColorContext().check("Nope", "plate.colorspace")


def test_to_model_matches_srgb_below_knee():
    ctx = color.ColorContext(highlight="clip")
    x = np.linspace(0, 1, 101, dtype=np.float32).reshape(-1, 1, 1).repeat(3, axis=2)
    np.testing.assert_allclose(ctx.to_model(x), srgb_encode(x), atol=2e-4)


def test_model_round_trip_and_policies():
    ctx = color.ColorContext(highlight="softclip", knee=0.8)
    x = np.array([[[0.0, 0.18, 0.5], [0.79, 1.0, 4.0], [-0.2, 20.0, 0.01]]], np.float32)
    m = ctx.to_model(x)
    assert m.min() >= 0 and m.max() <= 1
    back = ctx.from_model(m)
    # Exact below the knee; above it, highlights come back (compressed then expanded).
    np.testing.assert_allclose(back[0, 0], x[0, 0], atol=1e-3)
    assert back[0, 1, 1] == pytest.approx(1.0, rel=2e-2) and back[0, 1, 2] > 2.0
    assert back[0, 2, 0] == 0.0  # negatives (out of gamut) are clipped in model space
    # Monotonic: brighter in, brighter (or equal) out.
    ramp = np.linspace(0, 10, 500, dtype=np.float32)[None, :, None].repeat(3, axis=2)
    assert np.all(np.diff(ctx.to_model(ramp)[0, :, 0]) >= 0)


def test_soft_clip_is_invertible():
    # Invertible in float32 up to about knee + 10 * (1 - knee); beyond, it saturates at 1.
    x = np.linspace(0, 2.5, 200, dtype=np.float32)
    y = color.soft_clip(x, 0.8)
    assert y.max() < 1.0 and np.all(np.diff(y) > 0)
    np.testing.assert_allclose(color.soft_unclip(y, 0.8), x, rtol=2e-3, atol=1e-5)


def test_convert_srgb_to_linear_is_inverse():
    ctx = color.ColorContext()
    x = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    lin = ctx.to_working(x, color.SRGB_SPACE)
    np.testing.assert_allclose(ctx.from_working(lin, color.SRGB_SPACE), x, atol=1e-4)
    assert color.default_colorspace("openexr") == color.WORKING_SPACE
    assert color.default_colorspace("png") == color.SRGB_SPACE


def test_the_baked_view_matches_the_ocio_view_it_was_sampled_from():
    from actanywhere.media.color import ColorContext

    color = ColorContext()
    rng = np.random.default_rng(3)
    hdr = (rng.random((200, 300, 3)).astype(np.float32) ** 4) * 60  # 0 .. 60, mostly dark
    exact, baked = color.to_display(hdr), color.to_display_baked(hdr)
    assert np.abs(exact - baked).mean() < 1e-3 and np.abs(exact - baked).max() < 0.06
    grey = color.to_display(np.array([[[0.18] * 3, [1.0] * 3, [2.0] * 3, [30.0] * 3]],
                                     np.float32))[0, :, 0]
    assert np.all(np.diff(grey) > 0) and grey[2] < 0.95 < grey[3]  # a tone curve, no clamp
    raw = color.to_display_baked(hdr, "sRGB - Display/Un-tone-mapped")
    assert np.abs(raw - color.to_display(hdr, "Un-tone-mapped")).mean() < 1e-3
