"""UPSR text adaptation on real RecBole datasets: ML-100K, its genre domains, Amazon 2018."""

import gzip
import json

from recbole_ext.data.amazon import convert_amazon2018
from recbole_ext.data.atomic import read_atomic
from recbole_ext.data.ml100k_domains import GENRE_DOMAINS, write_genre_domains
from recbole_ext.text import report as upsr_text
from recbole_ext.text.adaptation import TextAdaptation

import pytest
import yaml

from plugins.paths import CONFIG_DIR

UPSR_TEXT = CONFIG_DIR / "recbole" / "upsr_text.yaml"
AMAZON_TEXT = CONFIG_DIR / "recbole" / "upsr_text_amazon.yaml"


def yaml_file(tmp_path, name, content: dict):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(content))
    return path


@pytest.fixture(scope="module")
def ml100k_report(tmp_path_factory):
    """`plugzoo upsr-text` on the bundled ML-100K (sentence embeddings off for speed)."""
    tmp = tmp_path_factory.mktemp("upsr_text")
    fast = yaml_file(tmp, "fast.yaml", {"text_consistency_embedder": "none"})
    out = tmp / "out"
    assert (
        upsr_text.main(
            ["--out", str(out), "--config-file", str(UPSR_TEXT), "--config-file", str(fast)]
        )
        == 0
    )
    return json.loads((out / "report.json").read_text()), (out / "report.md").read_text()


def test_ml100k_report_surfaces_the_real_ambiguities(ml100k_report):
    report, markdown = ml100k_report
    report = report["report"]
    noise = report["dataset_noise"]
    assert report["items"] == 1682
    assert noise["repeated_titles"] == 22
    assert noise["identical_on_all_fields"] == 18
    assert set(noise["noise_values"]["release_year:pattern_mismatch"]["examples"]) == {
        "V",
        "unkonwn",
    }
    assert noise["noise_values"]["movie_title:null_value"]["examples"] == ["unkonwn"]
    assert noise["noise_values"]["movie_title:article_suffix"]["items"] > 300
    by_name = {c["name"]: c for c in report["item_candidates"]}
    raw = by_name["title_raw"]["overall"]["noise_ambiguity"]
    finetune = by_name[report["chosen"]["finetune"]["item"]]["overall"]["noise_ambiguity"]
    assert raw["collision_groups"] == 22 and raw["noisy_items"] > 300
    assert finetune["collision_groups"] == 0
    # only item 267 (title, year and genre all junk) is left: it reads "unknown item 267"
    assert finetune["noise_kinds"] == {"item:empty_text": 1}
    assert "What the chosen constructions leave of the ambiguity" in markdown


def test_ml100k_indicators_per_domain_and_stage_choice(ml100k_report):
    report = ml100k_report[0]["report"]
    assert report["domains"] == {"action": 378, "comedy": 598, "drama": 704}
    for candidate in report["item_candidates"]:
        assert set(candidate["per_domain"]) == {"action", "comedy", "drama"}
        assert 0.0 <= candidate["overall"]["domain_consistency"] <= 1.0
        for stage in ("pretrain", "finetune"):
            assert 0.0 <= candidate["stages"][stage]["score"] <= 1.0
    chosen = report["chosen"]
    by_name = {c["name"]: c for c in report["item_candidates"]}
    # pre-training picks shorter texts than fine-tuning, fine-tuning the more informative ones
    pre, fine = by_name[chosen["pretrain"]["item"]], by_name[chosen["finetune"]["item"]]
    assert pre["overall"]["text_length"]["mean"] < fine["overall"]["text_length"]["mean"]
    assert fine["overall"]["informativeness"]["score"] >= pre["overall"]["informativeness"]["score"]
    config = ml100k_report[0]["config"]
    assert config["load_col"]["item"] == ["item_id", "movie_title", "release_year", "class"]


def test_separator_collisions_in_histories_are_counted_and_penalised_at_every_stage(
    ml100k_report,
):
    report = ml100k_report[0]["report"]
    for stage in ("pretrain", "finetune"):
        by_name = {h["name"]: h for h in report["history_candidates"][stage]}
        comma = by_name["list_comma"]["indicators"]["noise_ambiguity"]
        semicolon = by_name["list_semicolon"]["indicators"]["noise_ambiguity"]
        assert comma["separator"] == "," and semicolon["value"] == 0
        if stage == "pretrain":
            # 3.7% of the titles hold a comma ("Fast, Cheap & Out of Control"), but about a
            # third of the 50-item comma-separated histories hold one of them
            assert 0 < comma["items_containing_separator"] < 0.1 < 0.2 < comma["value"]
        else:  # "Sabrina (1995), Comedy and Romance movie": every history collides
            assert comma["value"] == 1.0
        chosen = by_name[report["chosen"][stage]["history"]]
        assert chosen["indicators"]["noise_ambiguity"]["value"] < comma["value"]
        assert chosen["name"] != "list_comma"


def test_missing_item_field_and_small_budget_name_the_key(tmp_path):
    wrong_field = yaml_file(
        tmp_path,
        "f.yaml",
        {"item_text_fields": ["movie_title", "plot"], "text_consistency_embedder": "none"},
    )
    config, dataset = upsr_text.load_config_and_dataset("ml-100k", [UPSR_TEXT, wrong_field])
    with pytest.raises(KeyError, match=r"item_text_candidates\['title_raw'\].fields|'plot'"):
        TextAdaptation(config).evaluate(dataset)
    small = yaml_file(
        tmp_path, "b.yaml", {"history_token_budget": 6, "text_consistency_embedder": "none"}
    )
    config, dataset = upsr_text.load_config_and_dataset("ml-100k", [UPSR_TEXT, small])
    with pytest.raises(ValueError, match="history_token_budget=6 is smaller than one item"):
        TextAdaptation(config).evaluate(dataset)


def test_dataset_without_text_fields_is_refused(tmp_path):
    folder = tmp_path / "notext"
    folder.mkdir()
    (folder / "notext.inter").write_text(
        "user_id:token\titem_id:token\ttimestamp:float\n"
        + "".join(f"{u}\t{i}\t{u * 10 + i}\n" for u in range(1, 6) for i in range(1, 6))
    )
    (folder / "notext.item").write_text(
        "item_id:token\tprice:float\n" + "".join(f"{i}\t{i}.5\n" for i in range(1, 6))
    )
    extra = yaml_file(
        tmp_path,
        "d.yaml",
        {
            "data_path": str(tmp_path),
            "load_col": {
                "inter": ["user_id", "item_id", "timestamp"],
                "item": ["item_id", "price"],
            },
            "text_consistency_embedder": "none",
        },
    )
    config, dataset = upsr_text.load_config_and_dataset("notext", [UPSR_TEXT, extra])
    with pytest.raises(ValueError, match="dataset 'notext' has no text field.*price"):
        TextAdaptation(config).evaluate(dataset)


def test_genre_domains_are_disjoint_recbole_datasets(tmp_path):
    summary = write_genre_domains(tmp_path)
    assert summary["unassigned"]["items"] == ["1373", "267"]  # genre 'unknown' only
    seen = set()
    for name in GENRE_DOMAINS:
        header, rows = read_atomic(tmp_path / f"ml-100k-{name}" / f"ml-100k-{name}.item")
        items = {row[0] for row in rows}
        assert not items & seen
        seen |= items
        assert len(items) == summary[name]["items"]
    assert len(seen) == 1682 - 2
    extra = yaml_file(
        tmp_path, "d.yaml", {"data_path": str(tmp_path), "text_consistency_embedder": "none"}
    )
    config, dataset = upsr_text.load_config_and_dataset("ml-100k-drama", [UPSR_TEXT, extra])
    assert dataset.item_num - 1 == summary["drama"]["items"]
    assert dataset.inter_num == summary["drama"]["interactions"]


def write_jsonl(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for line in lines:
            f.write((line if isinstance(line, str) else json.dumps(line)) + "\n")


def amazon_fixture(tmp_path):
    """Small files in the Amazon 2018 format, with one of every kind of bad record."""
    meta = [
        {
            "asin": "B001",
            "title": "Fender Guitar Strings",
            "brand": "Fender",
            "category": ["Musical Instruments", "Strings"],
            "price": "$9.99",
        },
        {
            "asin": "B002",
            "title": "<span class='a'>Capo</span> for Guitar",
            "brand": "Kyser",
            "category": ["Musical Instruments", "Accessories"],
        },
        {"asin": "B003", "title": "Guitar Tuner", "brand": "", "category": ["Musical Instruments"]},
        {
            "asin": "B004",
            "title": "Guitar Tuner",
            "brand": "Snark",
            "category": ["Musical Instruments"],
        },
        {"asin": "B005", "title": "", "brand": "NoName"},
        {"asin": "B001", "title": "a repeated asin", "brand": "Other"},
        {"title": "no asin at all"},
        '{"asin": "B006", "title": "broken',
    ]
    users = ["U1", "U2", "U3"]
    reviews = [
        {"reviewerID": u, "asin": a, "overall": 5.0, "unixReviewTime": 1_500_000_000 + k}
        for k, (u, a) in enumerate((u, a) for u in users for a in ["B001", "B002", "B003", "B004"])
    ]
    reviews += [
        {"reviewerID": "U1", "asin": "B001", "overall": 3.0, "unixReviewTime": 1_600_000_000},
        {"reviewerID": "U4", "asin": "B999", "overall": 4.0, "unixReviewTime": 1_600_000_001},
        {"reviewerID": "U4", "asin": "B001", "unixReviewTime": 1_600_000_002},
        {"reviewerID": "U5", "asin": "B003", "overall": 4.0, "unixReviewTime": 1_600_000_003},
        "not json at all",
    ]
    write_jsonl(tmp_path / "meta_Musical_Instruments.json.gz", meta)
    write_jsonl(tmp_path / "Musical_Instruments.json.gz", reviews)
    return tmp_path / "Musical_Instruments.json.gz", tmp_path / "meta_Musical_Instruments.json.gz"


def test_amazon2018_converter_counts_every_skip(tmp_path):
    reviews, meta = amazon_fixture(tmp_path)
    summary = convert_amazon2018(reviews, meta, tmp_path / "data", "amazon-mi", k=2)
    skipped = {reason: entry["count"] for reason, entry in summary["skipped"].items()}
    assert skipped == {
        "malformed_meta_line": 1,
        "malformed_review_line": 1,
        "meta_missing_title": 1,
        "meta_repeated_asin": 1,
        "meta_without_asin": 1,
        "review_missing_keys": 1,
        "review_repeated_pair": 1,
        "review_unknown_item": 1,
    }
    assert "B999" in summary["skipped"]["review_unknown_item"]["examples"][0]
    assert summary["interactions_removed_by_k_core"] == 1  # U5 has one interaction
    assert (summary["users"], summary["items"], summary["interactions"]) == (3, 4, 12)
    header, rows = read_atomic(tmp_path / "data" / "amazon-mi" / "amazon-mi.item")
    assert header == ["item_id:token", "title:token_seq", "brand:token", "categories:token_seq"]
    assert rows[0] == ["B001", "Fender Guitar Strings", "Fender", "Musical Instruments|Strings"]


def test_amazon2018_text_adaptation_end_to_end(tmp_path):
    reviews, meta = amazon_fixture(tmp_path)
    convert_amazon2018(reviews, meta, tmp_path / "data", "amazon-mi", k=2)
    generated = tmp_path / "data" / "amazon-mi" / "amazon-mi.yaml"
    fast = yaml_file(tmp_path, "fast.yaml", {"text_consistency_embedder": "none"})
    config, dataset = upsr_text.load_config_and_dataset("amazon-mi", [generated, AMAZON_TEXT, fast])
    adaptation = TextAdaptation(config, log=lambda *_: None)
    table = adaptation.item_table(dataset)
    assert table.values["categories"][1] == ["Musical Instruments", "Strings"]
    report = adaptation.evaluate(dataset)
    by_name = {c["name"]: c for c in report["item_candidates"]}
    # the HTML title is noise until the markup cleaner runs; the two "Guitar Tuner" collide
    assert by_name["title_raw"]["overall"]["noise_ambiguity"]["noise_kinds"] == {"title:markup": 1}
    assert by_name["title_raw"]["overall"]["noise_ambiguity"]["collision_groups"] == 1
    finetune = adaptation.for_stage(dataset, "finetune", report)
    assert finetune.item_texts.collision_groups() == []
    capo = finetune.item_texts.texts[2]
    assert capo.startswith("Capo for Guitar by Kyser") and "<span" not in capo
    text, kept = finetune.history.build([1, 2, 3])
    assert kept == 3 and capo in text


@pytest.mark.slow
def test_plugzoo_upsr_text_command_with_defaults(tmp_path):
    """The documented command, sentence embeddings included, in a fresh process."""
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "plugins.cli",
            "upsr-text",
            "--dataset",
            "ml-100k",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "## Chosen per stage" in result.stdout
    report = json.loads((tmp_path / "report.json").read_text())["report"]
    assert report["item_candidates"][0]["overall"]["domain_consistency"] is not None
