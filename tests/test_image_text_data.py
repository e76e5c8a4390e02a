"""Image-text data: the embedded generator, LAVIS-format datasets and builders, converters
from each official format, bad input."""

import base64
import io
import json
from pathlib import Path

import retrieval_ext  # noqa: F401  (registers the builders)
from retrieval_ext.datasets.image_text import (
    ImageReadError,
    ImageTextEvalDataset,
    ImageTextTrainDataset,
    read_records,
)
from retrieval_ext.datasets.image_text_converters import convert_karpathy, convert_muge
from retrieval_ext.datasets.image_text_synthetic import (
    COLOURS,
    OBJECTS,
    POSITIONS,
    write_image_text_dataset,
)

import numpy as np
import pytest
from conftest import REPO_ROOT
from lavis.common.registry import registry
from lavis.processors.blip_processors import BlipCaptionProcessor, BlipImageEvalProcessor
from PIL import Image

SMALL = {"train": 8, "val": 4, "test": 4}


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    root = tmp_path_factory.mktemp("image_text")
    write_image_text_dataset(root, SMALL, seed=3)
    return root


def _processors(max_words=40):
    return BlipImageEvalProcessor(image_size=48), BlipCaptionProcessor(max_words=max_words)


def _png_bytes(colour=(10, 200, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------- embedded generator
def test_generator_is_seeded_and_writes_lavis_format(embedded, tmp_path):
    again = tmp_path / "again"
    summary = write_image_text_dataset(again, SMALL, seed=3)
    assert summary["splits"] == SMALL
    assert summary["captions"] == {"train": 24, "val": 12, "test": 12}  # 3 captions an image
    for name in ("annotations/train.json", "annotations/test.json", "images/test_0003.png"):
        assert (again / name).read_bytes() == (embedded / name).read_bytes(), name
    other = write_image_text_dataset(tmp_path / "other", SMALL, seed=4)
    assert (Path(other["root"]) / "annotations/test.json").read_text() != (
        embedded / "annotations/test.json"
    ).read_text()
    train = json.loads((embedded / "annotations/train.json").read_text())
    assert len(train) == 24 and all(isinstance(r["caption"], str) for r in train)
    test = json.loads((embedded / "annotations/test.json").read_text())
    assert all(len(r["caption"]) == 3 for r in test)
    # every scene is unique across splits
    keys = {r["caption"][0] for r in test} | {r["caption"] for r in train}
    assert len(keys) == len(test) + len(train)


def test_lavis_own_retrieval_datasets_read_the_embedded_files(embedded):
    from lavis.datasets.datasets.retrieval_datasets import RetrievalEvalDataset

    vis, text = _processors()
    lavis_eval = RetrievalEvalDataset(
        vis, text, str(embedded / "images"), [str(embedded / "annotations/test.json")]
    )
    ours = ImageTextEvalDataset(vis, text, embedded / "annotations/test.json", embedded / "images")
    assert lavis_eval.text == ours.text and lavis_eval.txt2img == ours.txt2img
    assert lavis_eval.img2txt == ours.img2txt
    assert np.allclose(lavis_eval[2]["image"].numpy(), ours[2]["image"].numpy())


def test_captions_are_made_of_the_entity_phrases_and_images_show_the_colours(embedded):
    entities = (embedded / "entities.txt").read_text().splitlines()
    assert set(entities) == {*OBJECTS, *COLOURS, *POSITIONS}
    assert all(len(phrase.split()) == 2 for phrase in entities)  # multi-word on purpose
    # words shared between entities: only the phrase identifies the object
    assert {"fire truck", "fire hydrant"} <= set(entities)
    assert {"traffic light", "light bulb", "light blue"} <= set(entities)
    for record in json.loads((embedded / "annotations/test.json").read_text()):
        full = record["caption"][0]
        named = [kind for kind in OBJECTS if kind in full]
        assert 2 <= len(named) <= 3, full
        pixels = np.asarray(Image.open(embedded / "images" / record["image"]))
        for colour_name, rgb in COLOURS.items():
            present = bool((pixels == np.array(rgb, dtype=np.uint8)).all(-1).any())
            assert present == (colour_name in full), (record["image"], colour_name)


# ---------------------------------------------------------------- datasets and builders
def test_train_and_eval_items_match_lavis_retrieval_datasets(embedded):
    vis, text = _processors()
    train = ImageTextTrainDataset(
        vis, text, embedded / "annotations/train.json", embedded / "images"
    )
    assert len(train) == 24
    item = train[4]
    assert item["image"].shape == (3, 48, 48) and item["image_id"] == 1
    batch = train.collater([train[i] for i in range(6)])
    assert batch["image_id"].tolist() == [0, 0, 0, 1, 1, 1]  # captions of one image: positives
    evaluation = ImageTextEvalDataset(
        vis, text, embedded / "annotations/val.json", embedded / "images"
    )
    assert len(evaluation) == 4 and len(evaluation.text) == 12
    assert evaluation.img2txt[1] == [3, 4, 5] and evaluation.txt2img[5] == 1
    # a training file (one record per caption) is grouped per image for evaluation
    grouped = ImageTextEvalDataset(
        vis, text, embedded / "annotations/train.json", embedded / "images"
    )
    assert len(grouped) == 8 and grouped.img2txt[7] == [21, 22, 23]


def _build(name, config_overrides):
    from omegaconf import OmegaConf

    builder_cls = registry.get_builder_class(name)
    cfg = OmegaConf.merge(
        OmegaConf.load(builder_cls.default_config_path()).datasets[name], config_overrides
    )
    return builder_cls(cfg).build_datasets()


def test_every_shipped_image_text_dataset_config_builds_on_tiny_files(tmp_path):
    """COCO Karpathy, Flickr30k and MUGE defaults, read through their builders from files
    written by the converters; one batch drawn from each split."""
    karpathy = tmp_path / "karpathy.json"
    karpathy.write_text(json.dumps(_karpathy_images()))
    convert_karpathy(karpathy, tmp_path / "coco_ann")
    for image in _karpathy_images()["images"]:
        path = tmp_path / "coco_images" / image.get("filepath", "") / image["filename"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_png_bytes())
    _write_muge(tmp_path / "muge")
    convert_muge(tmp_path / "muge", tmp_path / "muge_out")
    small = {"image_size": 32}
    cases = {
        "coco_karpathy_image_text": (tmp_path / "coco_ann", tmp_path / "coco_images", "val"),
        "flickr30k_image_text": (tmp_path / "coco_ann", tmp_path / "coco_images", "val"),
        "muge_image_text": (
            tmp_path / "muge_out/annotations",
            tmp_path / "muge_out/images",
            "valid",
        ),
    }
    for name, (ann, images, val) in cases.items():
        datasets = _build(
            name,
            {
                "vis_processor": {"train": small, "eval": small},
                "build_info": {
                    "annotations": {
                        "train": {"storage": str(ann / "train.json")},
                        "val": {"storage": str(ann / f"{val}.json")},
                        "test": {"storage": str(ann / f"{val}.json")},
                    },
                    "images": {"storage": str(images)},
                },
            },
        )
        assert set(datasets) == {"train", "val", "test"}, name
        batch = datasets["train"].collater([datasets["train"][i] for i in range(2)])
        assert batch["image"].shape == (2, 3, 32, 32), name
        assert datasets["test"][0]["image"].shape == (3, 32, 32), name


def test_builders_refuse_urls_and_name_missing_paths(embedded, tmp_path):
    def build_info(test_storage, images):
        ann = {split: {"storage": test_storage} for split in ("train", "val", "test")}
        return {"build_info": {"annotations": ann, "images": {"storage": images}}}

    test_json, images = str(embedded / "annotations/test.json"), str(embedded / "images")
    with pytest.raises(ValueError, match="https://x.org/test.json.*is a URL"):
        _build("embedded_image_text", build_info("https://x.org/test.json", images))
    with pytest.raises(ValueError, match="build_info.images.storage.*is a URL"):
        _build("embedded_image_text", build_info(test_json, "s3://bucket/images"))
    with pytest.raises(FileNotFoundError, match="image root not found.*build_info.images.storage"):
        _build("embedded_image_text", build_info(test_json, str(tmp_path / "no")))
    with pytest.raises(FileNotFoundError, match="annotation file not found: .*nothing.json"):
        _build("embedded_image_text", build_info(str(tmp_path / "nothing.json"), images))


# ---------------------------------------------------------------- bad input
def test_malformed_records_name_the_file_and_line(tmp_path):
    (tmp_path / "a.png").write_bytes(_png_bytes())
    vis, text = _processors()
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('[\n {"image": "a.png", "caption": "ok"},\n {"image": "a.png"}\n]\n')
    with pytest.raises(ValueError, match=r"bad.json, line 3: .*missing \['caption'\]"):
        ImageTextTrainDataset(vis, text, bad_json, tmp_path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"image": "a.png", "caption": "ok"}\n\n{"image": "a.png", "caption": []}\n')
    with pytest.raises(ValueError, match=r"empty.jsonl, line 3: 'caption' must be"):
        ImageTextEvalDataset(vis, text, empty, tmp_path)
    syntax = tmp_path / "syntax.json"
    syntax.write_text('[\n {"image": "a.png", "caption": "ok"},\n {"image": "a.png" "caption"}\n]')
    with pytest.raises(ValueError, match=r"syntax.json, line 3: invalid JSON"):
        read_records(syntax)


def test_missing_and_unreadable_images_raise_by_default_and_are_counted_when_skipped(tmp_path):
    (tmp_path / "good.png").write_bytes(_png_bytes())
    (tmp_path / "broken.png").write_bytes(_png_bytes()[:40])  # truncated file
    ann = tmp_path / "ann.json"
    ann.write_text(
        json.dumps(
            [
                {"image": "good.png", "caption": ["a green square", "green"]},
                {"image": "broken.png", "caption": ["broken"]},
                {"image": "gone.png", "caption": ["gone"]},
            ]
        )
    )
    vis, text = _processors()
    with pytest.raises(FileNotFoundError, match="gone.png.*bad_image_policy: skip"):
        ImageTextEvalDataset(vis, text, ann, tmp_path)
    ann_no_missing = tmp_path / "ann2.json"
    ann_no_missing.write_text(json.dumps(json.loads(ann.read_text())[:2]))
    dataset = ImageTextEvalDataset(vis, text, ann_no_missing, tmp_path)
    with pytest.raises(ImageReadError, match="cannot read image .*broken.png"):
        dataset[1]
    skipped = ImageTextEvalDataset(vis, text, ann, tmp_path, policy="skip")
    assert len(skipped) == 1 and skipped.text == ["a green square", "green"]
    assert sorted(Path(p).name for p, _ in skipped.skipped) == ["broken.png", "gone.png"]
    with pytest.raises(ValueError, match="bad_image_policy must be one of"):
        ImageTextTrainDataset(vis, text, ann, tmp_path, policy="ignore")


def _truncated_files(tmp_path) -> list[Path]:
    """A noisy PNG and JPEG, each cut to 60% of its bytes: PIL loads both (greyed or
    blacked-out rest) when ``ImageFile.LOAD_TRUNCATED_IMAGES`` is on."""
    noise = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    paths = []
    for name, fmt in (("cut.png", "PNG"), ("cut.jpg", "JPEG")):
        buffer = io.BytesIO()
        Image.fromarray(noise).save(buffer, format=fmt)
        data = buffer.getvalue()
        path = tmp_path / name
        path.write_bytes(data[: int(len(data) * 0.6)])
        paths.append(path)
    return paths


def test_truncated_images_are_refused_whatever_lavis_sets(tmp_path):
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES  # switched on by importing lavis
    cut_png, cut_jpg = _truncated_files(tmp_path)
    for path in (cut_png, cut_jpg):
        assert Image.open(path).convert("RGB").size == (96, 96)  # PIL alone lets it through
    (tmp_path / "good.png").write_bytes(_png_bytes())
    ann = tmp_path / "ann.json"
    ann.write_text(
        json.dumps(
            [
                {"image": "good.png", "caption": ["a green square"]},
                {"image": "cut.png", "caption": ["noise"]},
                {"image": "cut.jpg", "caption": ["noise"]},
            ]
        )
    )
    vis, text = _processors()
    dataset = ImageTextEvalDataset(vis, text, ann, tmp_path)  # raise: named when read
    assert dataset[0]["image"].shape == (3, 48, 48)
    for index, name in ((1, "cut.png"), (2, "cut.jpg")):
        with pytest.raises(ImageReadError, match=rf"cannot read image .*{name}: .*truncated"):
            dataset[index]
    skipped = ImageTextTrainDataset(vis, text, ann, tmp_path, policy="skip")
    assert len(skipped) == 1 and skipped[0]["text_input"] == "a green square"
    reasons = {Path(p).name: reason for p, reason in skipped.skipped}
    assert set(reasons) == {"cut.png", "cut.jpg"} and all(
        "truncated" in r for r in reasons.values()
    )
    assert ImageFile.LOAD_TRUNCATED_IMAGES  # the global flag is left as LAVIS set it


def test_captions_empty_after_the_text_processor_are_refused_or_counted(tmp_path):
    (tmp_path / "a.png").write_bytes(_png_bytes())
    (tmp_path / "b.png").write_bytes(_png_bytes((200, 10, 10)))
    ann = tmp_path / "ann.json"
    ann.write_text(
        '[\n {"image": "a.png", "caption": ["a green square", "..."]},\n'
        ' {"image": "b.png", "caption": ["!!"]}\n]\n'
    )
    vis, text = _processors()
    assert text("...") == ""  # LAVIS's blip_caption drops the punctuation
    with pytest.raises(ValueError, match=r"ann.json, line 2: caption '\.\.\.' is empty after"):
        ImageTextEvalDataset(vis, text, ann, tmp_path)
    dataset = ImageTextEvalDataset(vis, text, ann, tmp_path, policy="skip")
    assert dataset.text == ["a green square"] and len(dataset) == 1
    assert dataset.empty_captions == [(f"{ann}, line 2", "..."), (f"{ann}, line 3", "!!")]
    assert dataset.skipped == [
        (str(tmp_path / "b.png"), "no caption left after the text processor")
    ]


def test_captions_over_the_word_limit_are_truncated_and_counted(tmp_path, caplog):
    (tmp_path / "a.png").write_bytes(_png_bytes())
    ann = tmp_path / "ann.json"
    long_caption = " ".join(f"word{i}" for i in range(12))
    ann.write_text(json.dumps([{"image": "a.png", "caption": ["short one", long_caption]}]))
    vis, text = _processors(max_words=8)
    dataset = ImageTextEvalDataset(vis, text, ann, tmp_path)
    assert dataset.truncated == [(str(tmp_path / "a.png"), 1)]
    assert dataset.text[1] == " ".join(f"word{i}" for i in range(8))
    assert "1 caption(s) have more than max_words=8 words" in caplog.text


# ---------------------------------------------------------------- converters
def _karpathy_images() -> dict:
    """Karpathy's split file format (dataset_coco.json): filepath + filename, split,
    sentences with raw text, cocoid."""
    images = []
    for i, split in enumerate(["train", "train", "restval", "val", "val", "test", "test"]):
        images.append(
            {
                "filepath": "val2014" if split != "train" else "train2014",
                "filename": f"COCO_{i:012d}.jpg",
                "split": split,
                "cocoid": 100 + i,
                "sentences": [{"raw": f"Image {i} caption {k}.", "tokens": []} for k in range(2)],
            }
        )
    return {"images": images, "dataset": "coco"}


def test_karpathy_converter_writes_lavis_format(tmp_path):
    source = tmp_path / "dataset_coco.json"
    source.write_text(json.dumps(_karpathy_images()))
    counts = convert_karpathy(source, tmp_path / "out")
    assert counts == {"train": (3, 6), "val": (2, 4), "test": (2, 4)}  # restval joins train
    train = json.loads((tmp_path / "out/train.json").read_text())
    assert train[0] == {
        "image": "train2014/COCO_000000000000.jpg",
        "caption": "Image 0 caption 0.",
        "image_id": "100",
    }
    test = json.loads((tmp_path / "out/test.json").read_text())
    assert test[1]["caption"] == ["Image 6 caption 0.", "Image 6 caption 1."]
    # Flickr30k's file: no filepath, imgid instead of cocoid
    flickr = {
        "images": [
            {"filename": "1000.jpg", "split": s, "imgid": i, "sentences": [{"raw": "a dog"}]}
            for i, s in enumerate(["train", "val", "test"])
        ]
    }
    (tmp_path / "dataset_flickr30k.json").write_text(json.dumps(flickr))
    convert_karpathy(tmp_path / "dataset_flickr30k.json", tmp_path / "flickr")
    assert json.loads((tmp_path / "flickr/val.json").read_text()) == [
        {"image": "1000.jpg", "caption": ["a dog"], "image_id": "1"}
    ]
    bad = _karpathy_images()
    del bad["images"][4]["sentences"]
    source.write_text(json.dumps(bad))
    with pytest.raises(KeyError, match=r"dataset_coco.json, images\[4\]: missing \['sentences'\]"):
        convert_karpathy(source, tmp_path / "bad")


def _write_muge(folder: Path, bad_query_line: bool = False, bad_image_line: bool = False):
    """MUGE's official files: <split>_imgs.tsv (id TAB base64) and <split>_queries.jsonl."""
    folder.mkdir(parents=True, exist_ok=True)
    colours = {"1001": (200, 10, 10), "1002": (10, 200, 10), "1003": (10, 10, 200)}
    for split in ("train", "valid", "test"):
        lines = [f"{i}\t{base64.b64encode(_png_bytes(c)).decode()}" for i, c in colours.items()]
        if bad_image_line and split == "valid":
            lines.append("1004\tnot-an-image")
        (folder / f"{split}_imgs.tsv").write_text("\n".join(lines) + "\n")
        queries = [
            {"query_id": 1, "query_text": "红色连衣裙", "item_ids": [1001]},
            {"query_id": 2, "query_text": "绿色 背包", "item_ids": [1002, 1003]},
        ]
        if split == "test":  # the official test queries carry no answers
            queries = [{"query_id": q["query_id"], "query_text": q["query_text"]} for q in queries]
            for q in queries:
                q["item_ids"] = []
        text = "\n".join(json.dumps(q, ensure_ascii=False) for q in queries) + "\n"
        if bad_query_line and split == "train":
            text += '{"query_id": 3, "query_txt": "typo"}\n'
        (folder / f"{split}_queries.jsonl").write_text(text, encoding="utf-8")


def test_muge_converter_decodes_images_and_writes_lavis_format(tmp_path):
    _write_muge(tmp_path / "muge")
    summary = convert_muge(tmp_path / "muge", tmp_path / "out")
    assert summary["train"] == {"images": 3, "captions": 3}
    assert summary["test"] == {"images": 3, "captions": 0}
    assert not (tmp_path / "out/annotations/test.json").exists()  # no answers to score
    train = json.loads((tmp_path / "out/annotations/train.json").read_text(encoding="utf-8"))
    assert {"image": "train/1003.png", "caption": "绿色 背包", "image_id": "1003"} in train
    valid = json.loads((tmp_path / "out/annotations/valid.json").read_text(encoding="utf-8"))
    assert valid[0] == {"image": "valid/1001.png", "caption": ["红色连衣裙"], "image_id": "1001"}
    decoded = np.asarray(Image.open(tmp_path / "out/images/valid/1002.png"))
    assert (decoded == (10, 200, 10)).all()
    _write_muge(tmp_path / "bad_q", bad_query_line=True)
    with pytest.raises(ValueError, match=r"train_queries.jsonl, line 3: expected"):
        convert_muge(tmp_path / "bad_q", tmp_path / "o1")
    _write_muge(tmp_path / "bad_i", bad_image_line=True)
    with pytest.raises(ValueError, match=r"valid_imgs.tsv, line 4: image '1004' is not a readable"):
        convert_muge(tmp_path / "bad_i", tmp_path / "o2")


def test_converter_tools_run_from_the_command_line(tmp_path):
    from conftest import run_python

    _write_muge(tmp_path / "muge")
    result = run_python(
        f"import sys; sys.argv = ['convert_muge.py', '--muge-dir', '{tmp_path / 'muge'}', "
        f"'--out', '{tmp_path / 'out'}']\n"
        f"exec(open('{REPO_ROOT / 'tools/data/lavis/convert_muge.py'}').read())",
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["valid"]["images"] == 3
