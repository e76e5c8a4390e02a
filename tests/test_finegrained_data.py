"""The fine-grained embedded dataset (the caption in k of F frames) and the frame-weight
metrics the text-video task reports on it."""

from __future__ import annotations

import json
from types import SimpleNamespace

from retrieval_ext.datasets.finegrained import (
    COLOURS,
    POSITIONS,
    captions,
    contents,
    write_finegrained_dataset,
)
from retrieval_ext.datasets.video_text import VideoTextEvalDataset, load_annotations
from retrieval_ext.models.teacher import TeacherOutput
from retrieval_ext.tasks.text_video_retrieval import (
    content_mask,
    content_share,
    frame_weight_metrics,
)

import numpy as np
import pytest
import torch

from plugins.video import decode_pyav

SPLITS = {"train": 4, "val": 2, "test": 6}


def _write(root, **kwargs):
    return write_finegrained_dataset(root, SPLITS, **kwargs)


def _colour_pixels(frame: np.ndarray, colour: str, position: str) -> int:
    """Pixels of ``frame`` close to ``colour`` inside the quadrant ``position``."""
    size = frame.shape[0]
    fx, fy = POSITIONS[position]
    x0, y0 = int((fx - 0.25) * size), int((fy - 0.25) * size)
    quadrant = frame[y0 : y0 + size // 2, x0 : x0 + size // 2].astype(np.float64)
    distance = np.linalg.norm(quadrant - np.asarray(COLOURS[colour]), axis=-1)
    return int((distance < 70).sum())


def _content_of(caption: str):
    return next(c for c in contents() if captions(c)[0] == caption)


def test_the_same_seed_writes_the_same_clips_and_another_seed_others(tmp_path):
    _write(tmp_path / "a", seed=3)
    _write(tmp_path / "b", seed=3)
    _write(tmp_path / "c", seed=4)
    for split in SPLITS:
        a = (tmp_path / "a" / "annotations" / f"{split}.json").read_text()
        assert a == (tmp_path / "b" / "annotations" / f"{split}.json").read_text()
        assert a != (tmp_path / "c" / "annotations" / f"{split}.json").read_text()
    for name in ("train_0000.mp4", "test_0005.mp4"):
        first = decode_pyav(tmp_path / "a" / "videos" / name)
        np.testing.assert_array_equal(first, decode_pyav(tmp_path / "b" / "videos" / name))


@pytest.mark.parametrize("k", [1, 2, 4])
def test_every_entry_says_which_k_frames_show_its_content(tmp_path, k):
    summary = _write(tmp_path, k=k, seed=1)
    assert summary["k"] == k and summary["num_frames"] == 8
    entries, _ = load_annotations(
        [tmp_path / "annotations" / f"{s}.json" for s in SPLITS], tmp_path / "videos"
    )
    assert len(entries) == sum(SPLITS.values())
    for entry in entries:
        frames = entry["content_frames"]
        assert len(frames) == k and frames == sorted(set(frames))
        assert all(0 <= f < 8 for f in frames)
    # positions vary between clips: frame order carries no information
    assert len({tuple(e["content_frames"]) for e in entries}) > 1


def test_contents_are_distinct_within_a_split(tmp_path):
    _write(tmp_path, seed=2)
    test = json.loads((tmp_path / "annotations" / "test.json").read_text())
    assert len({e["caption"][0] for e in test}) == len(test)
    with pytest.raises(ValueError, match="distinct contents"):
        write_finegrained_dataset(tmp_path / "big", {"test": len(contents()) + 1})


@pytest.mark.parametrize("distractors", ["neutral", "other-captions"])
def test_the_decoded_content_frames_show_the_captioned_content(tmp_path, distractors):
    _write(tmp_path, k=2, distractors=distractors, seed=5)
    for entry in json.loads((tmp_path / "annotations" / "test.json").read_text()):
        colour, _, position, _ = _content_of(entry["caption"][0])
        frames = decode_pyav(tmp_path / "videos" / entry["video"])
        counts = [_colour_pixels(frame, colour, position) for frame in frames]
        content = [counts[f] for f in entry["content_frames"]]
        assert min(content) >= 20, (entry, counts)
        if distractors == "neutral":  # no distractor draws a caption's colour
            others = [c for f, c in enumerate(counts) if f not in entry["content_frames"]]
            assert max(others) < min(content) / 2, (entry, counts)


def test_other_caption_distractors_show_another_content_at_full_strength(tmp_path):
    _write(tmp_path, k=1, distractors="other-captions", seed=6)
    for entry in json.loads((tmp_path / "annotations" / "test.json").read_text()):
        frames = decode_pyav(tmp_path / "videos" / entry["video"])
        for index, frame in enumerate(frames):
            if index in entry["content_frames"]:
                continue
            strongest = max(
                _colour_pixels(frame, colour, position)
                for colour in COLOURS
                for position in POSITIONS
            )
            assert strongest >= 20, (entry, index)


def test_a_bad_distractor_kind_or_k_is_refused(tmp_path):
    with pytest.raises(ValueError, match="distractors must be one of"):
        _write(tmp_path, distractors="blur")
    with pytest.raises(ValueError, match="k \\(content frames\\) must be in 1..8"):
        _write(tmp_path, k=9)


def test_malformed_content_frames_are_named(tmp_path):
    _write(tmp_path, seed=1)
    path = tmp_path / "annotations" / "val.json"
    entries = json.loads(path.read_text())
    entries[1]["content_frames"] = [2, 2]
    path.write_text(json.dumps(entries))
    with pytest.raises(ValueError, match="val.json, entry 1: 'content_frames'"):
        load_annotations(path, tmp_path / "videos")


# ---------------------------------------------------------------- frame-weight metrics
def test_content_share_is_the_weight_on_content_frames_in_percent():
    weights = np.array([[0.5, 0.25, 0.25, 0.0], [1.0, 1.0, 1.0, 1.0]])
    content = np.array([[True, False, False, False], [False, True, True, False]])
    np.testing.assert_allclose(content_share(weights, content), [50.0, 50.0])


def test_content_mask_refuses_positions_beyond_the_sampled_frames():
    mask = content_mask([[0], [1, 3]], np.array([[1, 1, 0, 0], [1, 1, 1, 1]]), ["a", "b"])
    assert mask.tolist() == [[True, False, False, False], [False, True, False, True]]
    with pytest.raises(ValueError, match="b.mp4: content_frames \\[3\\] name frame 3"):
        content_mask([[0], [3]], np.array([[1, 1, 1, 1], [1, 1, 0, 0]]), ["a.mp4", "b.mp4"])


class _HandMadeModel:
    """Fixed AFA weights per clip and a teacher relevance per caption (one-hot on a frame
    named by the caption's text), so the shares can be worked out by hand."""

    device = torch.device("cpu")

    def __init__(self, weights):
        self.weights = torch.tensor(weights, dtype=torch.float32)

    def frame_weights(self, video, video_mask):
        return self.weights[video[:, 0, 0, 0, 0].long()]

    def teach(self, samples):
        frame = torch.tensor([int(text) for text in samples["text_input"]])
        relevance = torch.nn.functional.one_hot(frame, samples["video_mask"].shape[1])
        return TeacherOutput(logits=None, frame_relevance=relevance.float())


def _loader(entries, texts, batch=2):
    """An evaluation loader over ``len(entries)`` clips of 4 frames; the first pixel of a
    clip holds its index (the hand-made model reads it)."""
    video2txt, text, txt2video = {}, [], {}
    for index, captions_of in enumerate(texts):
        video2txt[index] = list(range(len(text), len(text) + len(captions_of)))
        for t in video2txt[index]:
            txt2video[t] = index
        text += captions_of
    dataset = SimpleNamespace(entries=entries, video2txt=video2txt, text=text, txt2video=txt2video)
    batches = []
    for start in range(0, len(entries), batch):
        rows = list(range(start, min(start + batch, len(entries))))
        video = torch.zeros(len(rows), 4, 3, 2, 2)
        video[:, 0, 0, 0, 0] = torch.tensor(rows, dtype=torch.float32)
        batches.append(
            {"video": video, "video_mask": torch.ones(len(rows), 4), "index": torch.tensor(rows)}
        )
    return _Loader(dataset, batches)


class _Loader(list):
    """Batches, with the dataset beside them as a DataLoader has it."""

    def __init__(self, dataset, batches):
        super().__init__(batches)
        self.dataset = dataset


def test_frame_weight_metrics_on_hand_made_weights():
    entries = [
        {"video": "a.mp4", "content_frames": [0]},
        {"video": "b.mp4", "content_frames": [1, 2]},
        {"video": "c.mp4", "content_frames": [3]},
    ]
    # the teacher puts each caption's relevance on the frame its text names
    texts = [["0", "1"], ["1", "2"], ["0", "0"]]
    weights = [[0.7, 0.1, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]]
    metrics = frame_weight_metrics(_HandMadeModel(weights), _loader(entries, texts))
    assert metrics["afa_content_share"] == pytest.approx((70 + 50 + 25) / 3)
    assert metrics["teacher_content_share"] == pytest.approx((50 + 100 + 0) / 3)
    assert metrics["content_share_chance"] == pytest.approx((25 + 50 + 25) / 3)


def test_a_student_reports_each_of_its_teachers_and_no_positions_report_nothing():
    entries = [{"video": "a.mp4", "content_frames": [2]}, {"video": "b.mp4", "content_frames": [0]}]
    teacher = _HandMadeModel([[1, 0, 0, 0]] * 2)
    student = SimpleNamespace(device=torch.device("cpu"), teachers={"xclip": teacher})
    metrics = frame_weight_metrics(student, _loader(entries, [["2"], ["1"]]))
    assert metrics == {"teacher_xclip_content_share": 50.0, "content_share_chance": 25.0}
    plain = [{"video": "a.mp4"}, {"video": "b.mp4"}]
    assert frame_weight_metrics(student, _loader(plain, [["2"], ["1"]])) == {}
    with pytest.raises(ValueError, match="1 annotation entries have no content_frames"):
        frame_weight_metrics(student, _loader([entries[0], plain[1]], [["2"], ["1"]]))


def test_the_eval_dataset_keeps_the_positions(tmp_path):
    from retrieval_ext.processors.video import ClipVideoEvalProcessor

    _write(tmp_path, k=2, seed=1)
    dataset = VideoTextEvalDataset(
        ClipVideoEvalProcessor(image_size=32, num_frames=8, sampling="segments"),
        str,
        tmp_path / "annotations" / "test.json",
        tmp_path / "videos",
    )
    assert all(len(entry["content_frames"]) == 2 for entry in dataset.entries)


def test_the_students_frame_weights_are_the_ones_it_pools_with():
    from lavis.common.registry import registry
    from retrieval_helpers import tiny_model_cfg

    torch.manual_seed(0)
    cfg = tiny_model_cfg("seqTransf", arch="teachclip_retrieval", max_frames=4)
    student = registry.get_model_class("teachclip_retrieval").from_config(cfg).eval()
    with torch.no_grad():  # logits far from uniform, so the weights differ from the mean
        student.afa.logit.weight.normal_(std=1.0)
    video = torch.randn(2, 4, 3, 32, 32)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    weights = student.frame_weights(video, mask)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2))
    assert weights[1, 2:].abs().sum() == 0 and weights.std() > 0.01
    with torch.no_grad():
        frames = student.temporal_frame_features(student.encode_frames(video), mask)
        pooled = (weights.unsqueeze(-1) * torch.nn.functional.normalize(frames, dim=-1)).sum(1)
        expected = torch.nn.functional.normalize(pooled, dim=-1)
        torch.testing.assert_close(student.extract_video_features(video, mask), expected)
    without = tiny_model_cfg("seqTransf", arch="teachclip_retrieval", max_frames=4, afa=False)
    plain = registry.get_model_class("teachclip_retrieval").from_config(without)
    assert plain.frame_weights(video, mask) is None


def test_teacher_relevance_for_the_metrics_is_scored_on_each_process_alone(monkeypatch):
    # under distributed evaluation a teacher's teach() gathers every process's batch; the
    # frame-weight metrics score each process's shard alone (shards can differ in size)
    from retrieval_ext.models import common

    monkeypatch.setattr(common, "is_dist_avail_and_initialized", lambda: True)
    monkeypatch.setattr(common.dist, "get_world_size", lambda: 2)

    def gather(_):
        raise AssertionError("gathered inside local_batch")

    monkeypatch.setattr(common, "all_gather_with_grad", gather)
    frames, mask = torch.randn(3, 4), torch.ones(3, 4, dtype=torch.long)
    with common.local_batch():
        out = common.all_gather_batch_with_grad(frames, mask)
    assert out[0] is frames and out[1] is mask
    with pytest.raises(AssertionError, match="gathered inside"):
        common.all_gather_batch_with_grad(frames, mask)  # outside: the collective runs
