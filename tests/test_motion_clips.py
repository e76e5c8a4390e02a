"""The embedded direction-of-motion benchmark: real mp4 files, seeded, paired classes."""

from mmaction_ext.datasets import CLASSES, make_clip, write_motion_dataset

import numpy as np
import pytest

from plugins.video import decode_decord


def test_second_class_of_each_pair_is_the_first_played_backwards():
    for pair in range(4):
        forward = make_clip(2 * pair, np.random.default_rng(7))
        backward = make_clip(2 * pair + 1, np.random.default_rng(7))
        np.testing.assert_array_equal(backward, forward[::-1])
        assert not np.array_equal(forward, backward)  # motion, not a static picture


def test_dataset_is_written_as_decodable_mp4_with_videodataset_lists(tmp_path):
    info = write_motion_dataset(tmp_path, {"train": 2, "test": 1}, num_frames=8, size=32)
    assert info["splits"] == {"train": 16, "test": 8}
    lines = (tmp_path / "train_list_videos.txt").read_text().splitlines()
    assert len(lines) == 16
    relative, label = lines[3].split()
    assert CLASSES[int(label)] in relative
    frames = decode_decord(tmp_path / "videos" / relative)
    assert frames.shape == (8, 32, 32, 3)
    again = write_motion_dataset(tmp_path / "again", {"train": 2, "test": 1})
    assert again == {**info}  # same seed, same description
    assert (tmp_path / "again" / "videos" / relative).read_bytes() == (
        tmp_path / "videos" / relative
    ).read_bytes()


def test_unknown_label_is_refused():
    with pytest.raises(ValueError, match=r"label must be in \[0, 8\)"):
        make_clip(8, np.random.default_rng(0))


def test_hard_level_pairs_are_reversals_with_distractor_noise_and_speeds():
    from mmaction_ext.datasets import LEVELS

    classes = LEVELS["hard"]
    assert len(classes) == 14 and LEVELS["quick"] == CLASSES
    for pair in range(7):
        forward = make_clip(2 * pair, np.random.default_rng(3), level="hard")
        backward = make_clip(2 * pair + 1, np.random.default_rng(3), level="hard")
        np.testing.assert_array_equal(backward, forward[::-1])
        assert not np.array_equal(forward, backward)
    # speed is part of the class: a fast clip's object travels farther than a slow one's
    # (the same draws otherwise); per-pixel noise makes no two frames' backgrounds equal

    def travel(label):
        clip = make_clip(label, np.random.default_rng(11), level="hard").astype(int)
        bright = [np.argwhere(frame.min(axis=-1) > 140) for frame in clip[[0, -1]]]
        return abs(bright[1][:, 1].mean() - bright[0][:, 1].mean())

    assert travel(classes.index("right_fast")) > travel(classes.index("right_slow"))
    clip = make_clip(0, np.random.default_rng(0), level="hard")
    assert not np.array_equal(clip[0, :2, :2], clip[1, :2, :2])
    with pytest.raises(ValueError, match=r"level must be one of \['hard', 'quick'\]"):
        make_clip(0, np.random.default_rng(0), level="medium")
    with pytest.raises(ValueError, match=r"label must be in \[0, 14\)"):
        make_clip(14, np.random.default_rng(0), level="hard")


def test_hard_level_dataset_is_written_with_its_classes(tmp_path):
    info = write_motion_dataset(tmp_path, {"train": 1}, level="hard")
    assert info["level"] == "hard" and info["splits"] == {"train": 14}
    assert (tmp_path / "classes.txt").read_text().split() == info["classes"]
    relative, label = (tmp_path / "train_list_videos.txt").read_text().splitlines()[13].split()
    assert info["classes"][int(label)] == "bar_then_square" and "bar_then_square" in relative
    assert decode_decord(tmp_path / "videos" / relative).shape == (8, 32, 32, 3)
