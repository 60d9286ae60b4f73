import pytest

from actanywhere.errors import InputError, SpecError
from actanywhere.media import frames


@pytest.mark.parametrize("pattern", ["s/plate.####.exr", "s/plate.%04d.exr", "s/plate.$F4.exr"])
def test_padded_patterns_name_the_same_files(pattern):
    seq = frames.resolve(pattern, "1001-1003")
    assert seq.paths() == ["s/plate.1001.exr", "s/plate.1002.exr", "s/plate.1003.exr"]
    assert seq.template == "s/plate.####.exr"


def test_at_and_single_hash_are_unpadded():
    assert frames.resolve("plate.@.exr", "7").path(7) == "plate.7.exr"
    assert frames.resolve("plate.#.exr", "7").path(7) == "plate.7.exr"


def test_ranges_with_step_and_lists():
    assert frames.parse_frames("1-9x2") == [1, 3, 5, 7, 9]
    assert frames.parse_frames("1,5,9") == [1, 5, 9]
    assert frames.resolve("plate.1-5x2####.exr").frames == (1, 3, 5)


def test_negative_and_zero_frames(tmp_path):
    for f in (-2, -1, 0, 1):
        (tmp_path / f"p.{f:04d}.exr").write_bytes(b"x")  # printf style: -002, -001, 0000
    assert frames.frames_on_disk(str(tmp_path / "p.####.exr")) == [-2, -1, 0, 1]
    seq = frames.resolve(str(tmp_path / "p.####.exr"))
    assert seq.frames == (-2, -1, 0, 1)
    assert seq.path(-2).endswith("p.-002.exr")
    assert not seq.missing()


def test_discovery_ignores_other_padding(tmp_path):
    for name in ("p.0001.exr", "p.0002.exr", "p.00003.exr", "p.3.exr", "q.0004.exr"):
        (tmp_path / name).write_bytes(b"x")
    assert frames.frames_on_disk(str(tmp_path / "p.####.exr")) == [1, 2]


def test_gaps_are_listed(tmp_path):
    for f in (1, 2, 5, 6, 9):
        (tmp_path / f"p.{f:04d}.exr").write_bytes(b"x")
    seq = frames.resolve(str(tmp_path / "p.####.exr"))
    assert seq.frames == tuple(range(1, 10))
    with pytest.raises(InputError) as err:
        frames.plan(seq)
    msg = str(err.value)
    assert "3-4,7-8" in msg and "p.####.exr" in msg and "--missing" in msg
    assert "\n" not in msg


def test_missing_policies(tmp_path):
    for f in (1, 2, 5):
        (tmp_path / f"p.{f:04d}.exr").write_bytes(b"x")
    seq = frames.resolve(str(tmp_path / "p.####.exr"), "1-5")
    held = frames.plan(seq, "hold")
    assert [(s.frame, s.held_from) for s in held] == [(1, None), (2, None), (3, 2), (4, 2),
                                                      (5, None)]
    assert held[2].path.endswith("p.0002.exr")
    black = frames.plan(seq, "black")
    assert [s.path is None for s in black] == [False, False, True, True, False]
    # A leading gap holds the first frame that exists.
    early = frames.plan(frames.resolve(str(tmp_path / "p.####.exr"), "0-1"), "hold")
    assert early[0].held_from == 1


def test_bad_patterns_and_ranges():
    with pytest.raises(SpecError, match="placeholder"):
        frames.resolve("plate.exr", "1-2")
    with pytest.raises(SpecError, match="not a frame range"):
        frames.parse_frames("1001-abc")
    with pytest.raises(InputError, match="no frames found"):
        frames.resolve("/nonexistent/plate.####.exr")
