import numpy as np

from actanywhere.media import raster


def test_decontaminate_removes_old_set_from_soft_edges():
    h, w = 64, 64
    matte = np.zeros((h, w), np.float32)
    matte[16:48, 16:48] = 1.0
    matte[16:48, 48:52] = 0.5  # a soft edge on the right
    subject = np.array([0.1, 0.1, 0.9], np.float32)
    old_set = np.array([1.0, 1.0, 1.0], np.float32)
    plate = matte[..., None] * subject + (1 - matte[..., None]) * old_set
    fg = raster.decontaminate(plate, matte)
    np.testing.assert_allclose(fg[30, 30], subject, atol=1e-6)  # solid: untouched
    np.testing.assert_allclose(fg[30, 49], 0.5 * subject, atol=0.02)  # edge: subject colour
    naive = plate[30, 49] * 0.5
    assert naive[0] > 0.25 and fg[30, 49, 0] < 0.07  # the white fringe is gone
    assert fg[5, 5].max() == 0  # outside the matte: nothing


def test_contact_shadow_pools_under_the_lowest_point():
    matte = np.zeros((100, 100), np.float32)
    matte[20:80, 45:55] = 1.0  # a post standing on row 79
    s = raster.soft_shadow(matte, (0.0, 2.0), 4.0)
    assert s.max() == 1.0 and s.shape == matte.shape
    peak_row, peak_col = np.unravel_index(np.argmax(s), s.shape)
    assert 79 <= peak_row <= 83 and 45 <= peak_col <= 55
    assert s[30, 50] < 1e-3 and s[81, 5] < 1e-3  # not on the body, not far along the ground
    assert raster.soft_shadow(np.zeros((8, 8), np.float32), (0, 0), 2.0).max() == 0


def test_fit_cover_and_contain_keep_aspect():
    img = np.zeros((10, 40, 1), np.float32)
    img[:, 18:22] = 1.0  # a centred vertical bar
    cover = raster.fit(img, 20, 20, "cover")
    assert cover.shape == (20, 20, 1) and cover[10, 10, 0] > 0.5 and cover[10, 0, 0] < 0.1
    contain = raster.fit(img, 20, 20, "contain")
    assert contain[0, 10, 0] == 0 and contain[10, 10, 0] > 0.3  # letterboxed, bar kept


def test_contact_shadow_on_a_narrow_frame_with_wide_softness():
    matte = np.zeros((400, 40), np.float32)
    matte[100:380, 15:25] = 1.0
    s = raster.soft_shadow(matte, (60.0, 8.0), 40.0)  # blur and offset wider than the frame
    assert s.shape == matte.shape and np.isfinite(s).all()
