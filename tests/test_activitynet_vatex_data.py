"""ActivityNet Captions and VATEX: converters from the official files, and the builders on mp4s."""

import json

import retrieval_ext  # noqa: F401
from retrieval_ext.datasets.converters import convert_activitynet, convert_vatex

import pytest
from conftest import load_tool
from lavis.common.registry import registry

from plugins.video import moving_square_clip, write_mp4

# ActivityNet Captions' train.json / val_1.json: video id -> duration, timestamps, sentences
# (the sentences keep the files' leading spaces)
ACTIVITYNET_TRAIN = {
    "v_QOlSCBRmfWY": {
        "duration": 82.73,
        "timestamps": [[0.83, 19.86], [17.37, 60.81], [56.26, 79.42]],
        "sentences": [
            "A young woman is seen standing in a room.",
            " She then begins dancing around.",
            " She continues dancing.",
        ],
    },
    "v_ehGHCYKzyZ8": {
        "duration": 61.72,
        "timestamps": [[0, 4.63], [4.01, 61.72]],
        "sentences": ["The man is on a bike.", " He rides along a trail."],
    },
}
ACTIVITYNET_VAL_1 = {
    "v_uqiMw7tQ1Cc": {
        "duration": 55.15,
        "timestamps": [[0.28, 55.15]],
        "sentences": ["A weight lifting tutorial is given."],
    }
}


def _vatex_entry(video_id, n=10):
    return {
        "videoID": video_id,
        "enCap": [f"{video_id} english caption {i}." for i in range(n)],
        "chCap": [f"中文描述 {i}" for i in range(n)],
    }


def _write_json(path, data):
    path.write_text(json.dumps(data))
    return path


def _official_activitynet(folder):
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / "train.json", ACTIVITYNET_TRAIN)
    _write_json(folder / "val_1.json", ACTIVITYNET_VAL_1)
    return folder


def _official_vatex(folder):
    """Official files (training and validation lists) and TeachCLIP-style split csvs."""
    folder.mkdir(parents=True, exist_ok=True)
    train_ids = ["Ptf_2VRj-V0_000122_000132", "--07WQ2iBlw_000001_000011"]
    val_ids = ["-9fPP4Ej_Mo_000017_000027", "zzzz0lwRyH0_000090_000100"]
    _write_json(folder / "vatex_training_v1.0.json", [_vatex_entry(i) for i in train_ids])
    _write_json(folder / "vatex_validation_v1.0.json", [_vatex_entry(i) for i in val_ids])
    (folder / "VATEX_train.csv").write_text("video_id\n" + "\n".join(train_ids) + "\n")
    (folder / "VATEX_val.csv").write_text(f"video_id,sentence\n{val_ids[0]},a\n{val_ids[0]},b\n")
    (folder / "test_list.txt").write_text(f"{val_ids[1]}\n\n")  # a plain id list, blank line
    splits = {
        "train": folder / "VATEX_train.csv",
        "val": folder / "VATEX_val.csv",
        "test": folder / "test_list.txt",
    }
    return train_ids, val_ids, splits


def _tool():
    return load_tool("convert_video_text_annotations")


def test_activitynet_joins_each_videos_sentences_into_one_paragraph(tmp_path):
    ann = _official_activitynet(tmp_path / "official")
    counts = convert_activitynet(ann, tmp_path / "out")
    assert counts == {"paragraph_train": 2, "paragraph_val_1": 1}
    train = json.loads((tmp_path / "out" / "paragraph_train.json").read_text())
    assert train[0] == {
        "video": "v_QOlSCBRmfWY.mp4",  # the key keeps its v_ prefix, as the files do
        "caption": [
            "A young woman is seen standing in a room. She then begins dancing around. "
            "She continues dancing."
        ],
        "video_id": "v_QOlSCBRmfWY",
    }
    test = json.loads((tmp_path / "out" / "paragraph_val_1.json").read_text())
    assert [e["video_id"] for e in test] == ["v_uqiMw7tQ1Cc"]


def test_activitynet_finds_each_videos_file_with_or_without_v_and_any_extension(tmp_path):
    ann = _official_activitynet(tmp_path / "official")
    convert_activitynet(ann, tmp_path / "bare", strip_v_prefix=True)  # CLIP4Clip's naming
    bare = json.loads((tmp_path / "bare" / "paragraph_train.json").read_text())
    assert [e["video"] for e in bare] == ["QOlSCBRmfWY.mp4", "ehGHCYKzyZ8.mp4"]
    assert bare[0]["video_id"] == "v_QOlSCBRmfWY"
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "v_QOlSCBRmfWY.mkv").write_bytes(b"")  # TeachCLIP's naming
    (videos / "uqiMw7tQ1Cc.webm").write_bytes(b"")  # CLIP4Clip's
    convert_activitynet(ann, tmp_path / "out", video_dir=videos)
    train = json.loads((tmp_path / "out" / "paragraph_train.json").read_text())
    # found on disk; absent from disk: the default name, for the builder to report
    assert [e["video"] for e in train] == ["v_QOlSCBRmfWY.mkv", "v_ehGHCYKzyZ8.mp4"]
    test = json.loads((tmp_path / "out" / "paragraph_val_1.json").read_text())
    assert test[0]["video"] == "uqiMw7tQ1Cc.webm"
    (videos / "QOlSCBRmfWY.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match=r"key 'v_QOlSCBRmfWY': several files .*\.mp4.*\.mkv"):
        convert_activitynet(ann, tmp_path / "out", video_dir=videos)
    with pytest.raises(FileNotFoundError, match="video folder not found: .*nowhere"):
        convert_activitynet(ann, tmp_path / "out", video_dir=tmp_path / "nowhere")


def test_activitynet_names_the_file_and_key_of_a_malformed_entry(tmp_path):
    ann = _official_activitynet(tmp_path / "official")
    (ann / "val_1.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"val_1.json not found: .*official/val_1.json"):
        convert_activitynet(ann, tmp_path / "out")
    bad = {"v_a": {"duration": 3.0, "timestamps": [[0, 1]]}}
    _write_json(ann / "val_1.json", bad)
    with pytest.raises(KeyError, match=r"val_1.json, key 'v_a': needs 'sentences'"):
        convert_activitynet(ann, tmp_path / "out")
    bad["v_a"]["sentences"] = ["one.", "two."]
    _write_json(ann / "val_1.json", bad)
    with pytest.raises(ValueError, match=r"val_1.json, key 'v_a': 1 timestamps for 2 sentences"):
        convert_activitynet(ann, tmp_path / "out")
    bad["v_a"].update(timestamps=[[0, 1], [1, 2]], sentences=["one.", "  "])
    _write_json(ann / "val_1.json", bad)
    with pytest.raises(ValueError, match=r"key 'v_a', 'sentences': caption 1 is empty"):
        convert_activitynet(ann, tmp_path / "out")
    _write_json(ann / "val_1.json", [ACTIVITYNET_VAL_1])
    with pytest.raises(ValueError, match="val_1.json: expected an object mapping video id"):
        convert_activitynet(ann, tmp_path / "out")


def test_vatex_pools_the_official_files_and_splits_by_the_id_lists(tmp_path):
    train_ids, val_ids, splits = _official_vatex(tmp_path / "official")
    official = tmp_path / "official"
    counts = convert_vatex(
        official / "vatex_training_v1.0.json",
        official / "vatex_validation_v1.0.json",
        splits,
        tmp_path / "out",
    )
    assert counts == {"train": 2, "val": 1, "test": 1}  # val.csv lists its video twice
    train = json.loads((tmp_path / "out" / "train.json").read_text())
    assert train[1] == {
        "video": "--07WQ2iBlw_000001_000011.mp4",
        "caption": [f"--07WQ2iBlw_000001_000011 english caption {i}." for i in range(10)],
        "video_id": "--07WQ2iBlw_000001_000011",
    }
    test = json.loads((tmp_path / "out" / "test.json").read_text())
    assert [e["video_id"] for e in test] == [val_ids[1]]
    assert all("中文" not in c for e in train + test for c in e["caption"])  # English only


def test_vatex_names_the_file_and_record_of_bad_input(tmp_path):
    train_ids, val_ids, splits = _official_vatex(tmp_path / "official")
    official = tmp_path / "official"
    training = official / "vatex_training_v1.0.json"
    validation = official / "vatex_validation_v1.0.json"

    def convert():
        return convert_vatex(training, validation, splits, tmp_path / "out")

    (official / "test_list.txt").write_text(f"{val_ids[1]}\nnot_in_vatex_000000_000010\n")
    with pytest.raises(ValueError, match=r"test_list.txt: 1 id\(s\) .*line 2: not_in_vatex"):
        convert()
    (official / "test_list.txt").write_text(f"{val_ids[1]}\n{val_ids[1]}\n")
    with pytest.raises(ValueError, match=r"test_list.txt, line 2: .* already on line 1"):
        convert()
    (official / "VATEX_train.csv").write_text("vid\nx\n")
    with pytest.raises(KeyError, match=r"VATEX_train.csv: no column 'video_id'"):
        convert()
    (official / "VATEX_train.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"train id list not found: .*VATEX_train.csv"):
        convert()
    entries = [_vatex_entry(train_ids[0]), {"videoID": "x_000000_000010", "chCap": ["只有中文"]}]
    _write_json(training, entries)
    with pytest.raises(KeyError, match=r"vatex_training_v1.0.json: entry 1 needs 'videoID'"):
        convert()
    entries[1] = {**_vatex_entry("x_000000_000010"), "enCap": []}
    _write_json(training, entries)
    with pytest.raises(ValueError, match=r"entry 1 \(x_000000_000010\), 'enCap': expected a non-"):
        convert()
    _write_json(training, [_vatex_entry(val_ids[0])])
    with pytest.raises(ValueError, match=r"validation_v1.0.json: entry 0 .* already seen"):
        convert()
    training.unlink()
    with pytest.raises(FileNotFoundError, match=r"VATEX annotation file not found: .*training"):
        convert()


def test_the_conversion_tool_has_activitynet_and_vatex_subcommands(tmp_path, capsys):
    tool = _tool()
    ann = _official_activitynet(tmp_path / "anet")
    out = tmp_path / "anet_out"
    tool.main(["activitynet", "--ann-dir", str(ann), "--out", str(out), "--strip-v-prefix"])
    assert json.loads(capsys.readouterr().out)["entries"] == {
        "paragraph_train": 2,
        "paragraph_val_1": 1,
    }
    assert json.loads((out / "paragraph_val_1.json").read_text())[0]["video"] == "uqiMw7tQ1Cc.mp4"
    _, _, splits = _official_vatex(tmp_path / "vatex")
    argv = ["vatex", "--training-json", str(tmp_path / "vatex" / "vatex_training_v1.0.json")]
    argv += ["--validation-json", str(tmp_path / "vatex" / "vatex_validation_v1.0.json")]
    argv += ["--train-ids", str(splits["train"]), "--val-ids", str(splits["val"])]
    argv += ["--test-ids", str(splits["test"]), "--out", str(tmp_path / "vatex_out")]
    argv += ["--video-ext", ".avi"]
    tool.main(argv)
    assert json.loads(capsys.readouterr().out)["entries"] == {"train": 2, "val": 1, "test": 1}
    test = json.loads((tmp_path / "vatex_out" / "test.json").read_text())
    assert test[0]["video"].endswith(".avi")


def _write_videos(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(names):
        write_mp4(folder / name, moving_square_clip(num_frames=8, size=32, seed=seed), fps=4)


def test_activitynet_builder_reads_the_converted_files_with_its_shipped_config(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the default config's relative data/activitynet paths
    ids = [*ACTIVITYNET_TRAIN, *ACTIVITYNET_VAL_1]
    _write_videos(tmp_path / "data" / "activitynet" / "videos", [f"{i}.mp4" for i in ids])
    convert_activitynet(
        _official_activitynet(tmp_path / "official"), "data/activitynet/annotations"
    )
    datasets = registry.get_builder_class("activitynet_text_video")().build_datasets()
    assert set(datasets) == {"train", "val", "test"}
    assert len(datasets["train"]) == 2  # one paragraph a video
    sample = datasets["train"][1]
    assert sample["video"].shape == (64, 3, 224, 224)  # the official 64 frames, padded
    assert sample["video_mask"].sum() == 2  # 8 frames at 4 fps: 1 frame a second
    assert sample["text_input"] == "the man is on a bike he rides along a trail"  # blip_caption
    assert datasets["test"].text == ["a weight lifting tutorial is given"]
    assert datasets["test"][0]["video"].shape == (64, 3, 224, 224)


def test_vatex_builder_reads_the_converted_files_with_its_shipped_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train_ids, val_ids, splits = _official_vatex(tmp_path / "official")
    _write_videos(tmp_path / "data" / "vatex" / "videos", [f"{i}.mp4" for i in train_ids + val_ids])
    official = tmp_path / "official"
    convert_vatex(
        official / "vatex_training_v1.0.json",
        official / "vatex_validation_v1.0.json",
        splits,
        "data/vatex/annotations",
    )
    datasets = registry.get_builder_class("vatex_text_video")().build_datasets()
    assert len(datasets["train"]) == 20  # ten English captions a video
    sample = datasets["train"][10]
    assert sample["video"].shape == (12, 3, 224, 224) and sample["video_index"] == 1
    assert sample["text_input"] == "--07wq2iblw_000001_000011 english caption 0"
    test = datasets["test"]
    assert len(test) == 1 and len(test.text) == 10 and test.video2txt == {0: list(range(10))}
