"""Video processors, annotation checks, datasets and builders of retrieval_ext, on real mp4s."""

import json

import retrieval_ext  # noqa: F401
from retrieval_ext.datasets.video_text import (
    VideoTextEvalDataset,
    VideoTextTrainDataset,
    load_annotations,
)
from retrieval_ext.processors.video import (
    CLIP_MEAN,
    CLIP_STD,
    ClipVideoEvalProcessor,
    ClipVideoTrainProcessor,
    VideoDecodeError,
    read_frames,
    sample_frame_indices,
    sample_frame_indices_by_fps,
)

import numpy as np
import pytest
import torch
from lavis.common.registry import registry
from omegaconf import OmegaConf
from retrieval_helpers import write_tiny_embedded

from plugins.video import moving_square_clip, write_mp4


def test_frame_indices_are_segment_centres_or_random_inside_segments():
    assert sample_frame_indices(16, 4).tolist() == [2, 6, 10, 14]
    rng = np.random.default_rng(0)
    for _ in range(50):
        indices = sample_frame_indices(16, 4, rng)
        assert all(4 * s <= i < 4 * (s + 1) for s, i in enumerate(indices))
    assert sample_frame_indices(3, 8).tolist() == [0, 1, 2]  # short: every frame
    with pytest.raises(ValueError, match="at least one frame"):
        sample_frame_indices(0, 4)


def test_fps_sampling_follows_clip4clip():
    # one frame a second at the truncated rate, then evenly thinned (linspace, truncated)
    assert sample_frame_indices_by_fps(95, 30.0, 12).tolist() == [0, 30, 60, 90]
    assert sample_frame_indices_by_fps(95, 30.0, 3).tolist() == [0, 30, 90]
    assert sample_frame_indices_by_fps(95, 29.97, 12).tolist() == [0, 29, 58, 87]
    assert sample_frame_indices_by_fps(95, 30.0, 12, sample_fps=2).tolist() == [
        0, 15, 30, 45, 60, 75, 90,
    ]  # fmt: skip
    assert sample_frame_indices_by_fps(10, 30.0, 12).tolist() == [0]  # under a second
    with pytest.raises(ValueError, match="frame rate"):
        sample_frame_indices_by_fps(95, 0.0, 12)
    with pytest.raises(ValueError, match="sample_fps must be in"):
        sample_frame_indices_by_fps(95, 4.0, 12, sample_fps=5)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_fps_sampling_on_a_real_video_pads_and_masks(tmp_path, backend):
    clip = moving_square_clip(num_frames=20, size=32)
    path = write_mp4(tmp_path / "clip.mp4", clip, fps=4)  # 5 seconds
    every = read_frames(path, 20, backend, sampling="segments")
    picked = read_frames(path, 8, backend, sampling="fps")
    assert np.array_equal(picked, every[[0, 4, 8, 12, 16]])
    out = ClipVideoTrainProcessor(image_size=32, num_frames=8, backend=backend)(str(path))
    assert out["video_mask"].tolist() == [1] * 5 + [0] * 3  # fps is the default
    again = ClipVideoTrainProcessor(image_size=32, num_frames=8, backend=backend)(str(path))
    assert torch.equal(out["video"], again["video"])  # CLIP4Clip trains on fixed frames
    thinned = ClipVideoEvalProcessor(image_size=32, num_frames=3, backend=backend)(str(path))
    expected = ClipVideoEvalProcessor(image_size=32).transform(every[[0, 8, 16]])
    assert torch.equal(thinned["video"], expected)


def test_preprocessing_matches_clips_pil_pipeline_on_a_decoded_frame(tmp_path):
    from PIL import Image
    from torchvision.transforms import (
        CenterCrop,
        Compose,
        InterpolationMode,
        Normalize,
        Resize,
        ToTensor,
    )

    # 110 x 60: the longer side scales to 58.67, truncated (PIL) to 58, not rounded to 59
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, size=(6, 11, 3), dtype=np.uint8)
    frames = np.repeat(np.kron(texture, np.ones((10, 10, 1), dtype=np.uint8))[None], 2, 0)
    frames[1] = np.roll(frames[1], 7, axis=1)
    path = write_mp4(tmp_path / "wide.mp4", frames, fps=2)
    decoded = read_frames(path, 2, "pyav", sampling="segments")
    ours = ClipVideoEvalProcessor(image_size=32).transform(decoded)
    clip_pipeline = Compose(
        [
            Resize(32, interpolation=InterpolationMode.BICUBIC),
            CenterCrop(32),
            ToTensor(),
            Normalize(CLIP_MEAN, CLIP_STD),
        ]
    )
    reference = torch.stack([clip_pipeline(Image.fromarray(frame)) for frame in decoded])
    difference = (ours - reference).abs()
    # one grey level is 1 / 255 / std ~ 0.015 in normalised units
    assert difference.max() <= 0.016, difference.max()
    assert difference.mean() <= 0.001, difference.mean()


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_processor_decodes_normalises_and_pads_a_short_video(tmp_path, backend):
    clip = moving_square_clip(num_frames=3, size=32)
    path = write_mp4(tmp_path / "short.mp4", clip)
    out = ClipVideoEvalProcessor(image_size=32, num_frames=8, backend=backend, sampling="segments")(
        str(path)
    )
    assert out["video"].shape == (8, 3, 32, 32)
    assert out["video_mask"].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    assert torch.count_nonzero(out["video"][3:]) == 0
    train = ClipVideoTrainProcessor(
        image_size=24, num_frames=2, backend=backend, sampling="segments"
    )(str(path))
    assert train["video"].shape == (2, 3, 24, 24) and train["video_mask"].tolist() == [1, 1]


def test_decord_and_pyav_give_the_same_frames(tmp_path):
    path = write_mp4(tmp_path / "clip.mp4", moving_square_clip(num_frames=8, size=32))
    assert np.array_equal(read_frames(path, 4, "decord"), read_frames(path, 4, "pyav"))


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])  # mkv stores no frame count
def test_pyav_converts_only_the_sampled_frames(tmp_path, suffix, monkeypatch):
    import av

    from plugins.video import decode_pyav

    clip = moving_square_clip(num_frames=64, size=32)
    path = write_mp4(tmp_path / f"long{suffix}", clip)
    every = decode_pyav(path)
    seeded = sample_frame_indices(64, 4, np.random.default_rng(3))
    assert np.array_equal(read_frames(path, 4, "pyav", np.random.default_rng(3)), every[seeded])

    converted = []
    real_open = av.open

    class Frame:
        def __init__(self, frame):
            self.frame = frame

        def to_ndarray(self, **kwargs):
            converted.append(kwargs)
            return self.frame.to_ndarray(**kwargs)

    class Container:
        def __init__(self, *args, **kwargs):
            self.container = real_open(*args, **kwargs)
            self.streams = self.container.streams

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.container.close()

        def decode(self, *args, **kwargs):
            return (Frame(f) for f in self.container.decode(*args, **kwargs))

    monkeypatch.setattr(av, "open", Container)
    frames = read_frames(path, 4, "pyav")
    assert np.array_equal(frames, every[sample_frame_indices(64, 4)])
    assert len(converted) == 4  # not 64: memory stays at the sampled frames


def test_missing_and_undecodable_videos_are_named(tmp_path):
    processor = ClipVideoEvalProcessor(image_size=32, num_frames=4)
    with pytest.raises(VideoDecodeError, match="not found: .*nowhere.mp4"):
        processor(str(tmp_path / "nowhere.mp4"))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    for backend in ("decord", "pyav"):
        with pytest.raises(
            VideoDecodeError, match=f"cannot decode video .*broken.mp4 with {backend}"
        ):
            ClipVideoEvalProcessor(image_size=32, num_frames=4, backend=backend)(str(broken))


def _write_ann(path, entries):
    path.write_text(json.dumps(entries))
    return path


def test_annotation_entries_need_video_and_caption(tmp_path):
    write_mp4(tmp_path / "a.mp4", moving_square_clip(num_frames=4, size=32))
    ann = _write_ann(
        tmp_path / "ann.json", [{"video": "a.mp4", "caption": "x"}, {"video": "a.mp4"}]
    )
    with pytest.raises(
        ValueError, match=r"ann.json, entry 1: missing required key\(s\) \['caption'\]"
    ):
        load_annotations([ann], tmp_path)
    ann = _write_ann(tmp_path / "ann.json", [{"video": "a.mp4", "caption": []}])
    with pytest.raises(ValueError, match="entry 0: 'caption' must be"):
        load_annotations([ann], tmp_path)
    with pytest.raises(FileNotFoundError, match="annotation file not found: .*none.json"):
        load_annotations([tmp_path / "none.json"], tmp_path)


def test_missing_videos_raise_or_are_skipped_and_counted(tmp_path):
    write_mp4(tmp_path / "a.mp4", moving_square_clip(num_frames=4, size=32))
    entries = [{"video": "a.mp4", "caption": ["one", "two"]}, {"video": "gone.mp4", "caption": "x"}]
    ann = _write_ann(tmp_path / "ann.json", entries)
    with pytest.raises(FileNotFoundError, match="1 video file.*gone.mp4.*bad_video_policy: skip"):
        load_annotations([ann], tmp_path)
    kept, skipped = load_annotations([ann], tmp_path, policy="skip")
    assert [e["video_id"] for e in kept] == ["a"] and skipped == [str(tmp_path / "gone.mp4")]


def test_training_skips_undecodable_videos_only_when_asked(tmp_path):
    write_mp4(tmp_path / "a.mp4", moving_square_clip(num_frames=4, size=32))
    (tmp_path / "b.mp4").write_bytes(b"not a video")
    ann = _write_ann(
        tmp_path / "ann.json",
        [{"video": "b.mp4", "caption": "broken"}, {"video": "a.mp4", "caption": "fine"}],
    )
    processor = ClipVideoTrainProcessor(image_size=32, num_frames=4)
    strict = VideoTextTrainDataset(processor, str, [ann], tmp_path)
    with pytest.raises(VideoDecodeError, match="b.mp4"):
        strict[0]
    lenient = VideoTextTrainDataset(processor, str, [ann], tmp_path, policy="skip")
    assert lenient[0]["text_input"] == "fine" and lenient.skipped == [str(tmp_path / "b.mp4")]
    assert lenient.decode_skips == 1


def test_skips_inside_loader_workers_are_counted_in_the_main_process(tmp_path):
    from torch.utils.data import DataLoader

    write_mp4(tmp_path / "a.mp4", moving_square_clip(num_frames=4, size=32))
    (tmp_path / "b.mp4").write_bytes(b"not a video")
    entries = [{"video": "b.mp4", "caption": f"broken {i}"} for i in range(3)]
    ann = _write_ann(tmp_path / "ann.json", [*entries, {"video": "a.mp4", "caption": "fine"}])
    processor = ClipVideoTrainProcessor(image_size=32, num_frames=4, sampling="segments")
    dataset = VideoTextTrainDataset(processor, str, [ann], tmp_path, policy="skip")
    loader = DataLoader(dataset, batch_size=1, num_workers=2, collate_fn=dataset.collater)
    texts = [batch["text_input"][0] for batch in loader]
    assert texts == ["fine"] * 4
    # item i meets 3 - i broken videos before "fine": 3 + 2 + 1 + 0, all in the workers
    assert dataset.skipped == [] and dataset.decode_skips == 6


def test_eval_dataset_maps_several_captions_and_collates_short_videos(tmp_path):
    write_mp4(tmp_path / "long.mp4", moving_square_clip(num_frames=8, size=32))
    write_mp4(tmp_path / "short.mp4", moving_square_clip(num_frames=2, size=32))
    ann = _write_ann(
        tmp_path / "ann.json",
        [{"video": "long.mp4", "caption": ["a", "b"]}, {"video": "short.mp4", "caption": "c"}],
    )
    dataset = VideoTextEvalDataset(
        ClipVideoEvalProcessor(image_size=32, num_frames=6, sampling="segments"),
        str,
        [ann],
        tmp_path,
    )
    assert dataset.text == ["a", "b", "c"]
    assert dataset.txt2video == {0: 0, 1: 0, 2: 1} and dataset.video2txt == {0: [0, 1], 1: [2]}
    assert dataset.txt2img is dataset.txt2video  # LAVIS's names
    batch = dataset.collater([dataset[0], dataset[1]])
    assert batch["video"].shape == (2, 6, 3, 32, 32)
    assert batch["video_mask"].sum(1).tolist() == [6, 2]


def test_builder_reads_local_files_through_lavis_registry(tmp_path, monkeypatch):
    root = write_tiny_embedded(tmp_path / "data" / "video_text", train=2, val=1, test=1)
    monkeypatch.chdir(tmp_path)  # the default config's relative paths
    builder = registry.get_builder_class("embedded_text_video")()
    datasets = builder.build_datasets()
    assert set(datasets) == {"train", "val", "test"}
    assert len(datasets["train"]) == 8 and len(datasets["test"]) == 2  # 2 captions a clip
    sample = datasets["train"][0]
    assert sample["video"].shape == (8, 3, 32, 32) and isinstance(sample["text_input"], str)
    assert (root / "annotations" / "train.json").is_file()


def test_builder_errors_name_the_missing_path_and_refuse_urls(tmp_path):
    cfg = OmegaConf.load(registry.get_builder_class("msvd_text_video").default_config_path())
    cfg = cfg.datasets.msvd_text_video
    cfg.build_info.videos.storage = str(tmp_path)
    cfg.build_info.annotations.train.storage = str(tmp_path / "missing_train.json")
    with pytest.raises(FileNotFoundError, match="missing_train.json"):
        registry.get_builder_class("msvd_text_video")(cfg).build_datasets()
    cfg.build_info.annotations.train.storage = "https://example.com/train.json"
    with pytest.raises(ValueError, match="is a URL; these builders read local files only"):
        registry.get_builder_class("msvd_text_video")(cfg).build_datasets()
    cfg.vis_processor.train.name = "no_such_processor"
    with pytest.raises(KeyError, match="no LAVIS processor named 'no_such_processor'"):
        registry.get_builder_class("msvd_text_video")(cfg).build_datasets()


def test_embedded_dataset_is_seeded_and_pairs_each_clip_with_its_reversal(tmp_path):
    from plugins.video import decode_pyav

    first = write_tiny_embedded(tmp_path / "a", train=3, val=1, test=1)
    second = write_tiny_embedded(tmp_path / "b", train=3, val=1, test=1)
    ann = json.loads((first / "annotations" / "train.json").read_text())
    assert ann == json.loads((second / "annotations" / "train.json").read_text())
    assert len({c for e in ann for c in e["caption"]}) == 2 * len(ann)  # distinct captions
    clip = decode_pyav(first / "videos" / ann[0]["video"])
    twin = decode_pyav(first / "videos" / ann[1]["video"])
    assert clip.shape == (8, 32, 32, 3)
    reversed_gap = np.abs(clip[::-1].astype(int) - twin.astype(int)).mean()  # H.264 noise
    forward_gap = np.abs(clip.astype(int) - twin.astype(int)).mean()
    assert reversed_gap < 4 and reversed_gap < forward_gap / 2
    assert np.array_equal(clip, decode_pyav(second / "videos" / ann[0]["video"]))


def test_embedded_dataset_is_byte_identical_from_run_to_run(tmp_path):
    """x264's rate-control lookahead made ~1 clip in 40 decode differently between runs."""
    first = write_tiny_embedded(tmp_path / "a", train=60, val=10, test=10)
    second = write_tiny_embedded(tmp_path / "b", train=60, val=10, test=10)
    videos = sorted(p.name for p in (first / "videos").iterdir())
    assert len(videos) == 160
    differ = [
        n
        for n in videos
        if (first / "videos" / n).read_bytes() != (second / "videos" / n).read_bytes()
    ]
    assert differ == []
