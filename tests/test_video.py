import numpy as np
import pytest

from plugins.video import decode_decord, decode_pyav, moving_square_clip, write_mp4


def test_mp4_written_by_pyav_decodes_identically_in_decord_and_pyav(tmp_path):
    frames = moving_square_clip(num_frames=6, size=32, seed=3)
    path = write_mp4(tmp_path / "clip.mp4", frames)
    by_pyav, by_decord = decode_pyav(path), decode_decord(path)
    assert by_pyav.shape == frames.shape
    np.testing.assert_array_equal(by_pyav, by_decord)
    assert np.abs(by_pyav.astype(float) - frames).mean() < 5  # lossy, but close


def test_moving_square_moves_right():
    frames = moving_square_clip(num_frames=5, size=32)
    bright = frames.max(axis=(1, 3)) > 120  # [T, W] columns holding the square
    first_columns = [np.flatnonzero(row)[0] for row in bright]
    assert first_columns == sorted(first_columns) and first_columns[0] < first_columns[-1]


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        (np.zeros((2, 32, 32), np.uint8), "expected uint8 frames"),
        (np.zeros((2, 32, 32, 3), np.float32), "expected uint8 frames"),
        (np.zeros((2, 31, 32, 3), np.uint8), "even height and width"),
    ],
)
def test_write_mp4_names_the_file_and_the_problem(tmp_path, frames, match):
    with pytest.raises(ValueError, match=match) as info:
        write_mp4(tmp_path / "bad.mp4", frames)
    assert "bad.mp4" in str(info.value)
