"""UPSR text adaptation: constructions, the five indicators and the stage policy (units)."""

from recbole_ext.text import indicators as ind
from recbole_ext.text.history_text import HistoryTextBuilder, HistoryTextConstruction
from recbole_ext.text.item_text import (
    ItemTable,
    ItemTextConstruction,
    TextOptions,
    build_item_texts,
    clean_value,
    value_noise,
)
from recbole_ext.text.policy import StagePolicy, choose
from recbole_ext.text.tokenizer import load_text_tokenizer

import numpy as np
import pytest

CLEAN = ["markup", "null_values", "field_patterns", "trailing_year", "article_suffix"]


@pytest.fixture(scope="module")
def tokenizer():
    return load_text_tokenizer("minilm")


@pytest.fixture
def options():
    return TextOptions(
        fields=["title", "year", "genres"],
        null_values=["unknown", "unkonwn"],
        field_patterns={"year": r"(18|19|20)\d\d"},
        list_fields=["genres"],
    )


@pytest.fixture
def table():
    # internal ids 1..6; 2 and 3 share a title, 4 and 5 are identical on every field
    titles = [
        None,
        "Devil's Own, The",
        "Sabrina",
        "Sabrina",
        "Chasing Amy",
        "Chasing Amy",
        "unkonwn",
    ]
    years = [None, "1997", "1954", "1995", "1997", "1997", "V"]
    genres = [None, ["Action", "Drama"], ["Comedy"], ["Comedy"], ["Drama"], ["Drama"], None]
    return ItemTable(
        dataset="toy",
        item_tokens=["[PAD]", "10", "30", "20", "7", "5", "99"],
        values={"title": titles, "year": years, "genres": genres},
    )


def construction(**spec):
    return ItemTextConstruction.from_dict({"name": "c", **spec})


def test_value_noise_finds_the_ml100k_kinds(options):
    assert value_noise("Devil's Own, The", "title", options) == ["article_suffix"]
    assert value_noise("unkonwn", "title", options) == ["null_value"]
    assert value_noise("V", "year", options) == ["pattern_mismatch"]
    assert value_noise("Land Before Time III (1995)", "title", options) == ["trailing_year"]
    assert value_noise("<b>Bold</b> &amp; more", "title", options) == ["markup"]
    assert value_noise("Toy Story", "title", options) == []


def test_cleaners_fix_what_they_name(options):
    assert clean_value("Devil's Own, The", "title", CLEAN, options) == "The Devil's Own"
    assert clean_value("unkonwn", "title", CLEAN, options) is None
    assert clean_value("V", "year", CLEAN, options) is None
    assert (
        clean_value("Land Before Time III (1995)", "title", CLEAN, options)
        == "Land Before Time III"
    )
    assert clean_value("<b>Bold</b> &amp; more", "title", CLEAN, options) == "Bold & more"
    assert clean_value("V", "year", [], options) == "V"


def test_styles_and_optional_template_segments(table, options, tokenizer):
    natural = construction(
        fields=["title", "year", "genres"],
        style="natural",
        template="{title}[ ({year})][, {genres} movie]",
        clean=CLEAN,
    )
    texts = build_item_texts(table, natural, options, tokenizer).texts
    assert texts[1] == "The Devil's Own (1997), Action and Drama movie"
    # every value is junk: the item gets text_empty_item_format, and that is noise
    assert texts[6] == "unknown item 99"
    cleaned = build_item_texts(table, natural, options, tokenizer)
    assert ind.noise_ambiguity(cleaned, [6])["noise_kinds"] == {"item:empty_text": 1}
    key_value = construction(fields=["title", "genres"], style="key_value", clean=CLEAN)
    assert build_item_texts(table, key_value, options, tokenizer).texts[1] == (
        "title: The Devil's Own; genres: Action, Drama"
    )
    concat = construction(fields=["title", "year"], style="concat")
    assert build_item_texts(table, concat, options, tokenizer).texts[6] == "unkonwn V"


def test_disambiguation_is_deterministic_and_complete(table, options, tokenizer):
    none = build_item_texts(table, construction(fields=["title"]), options, tokenizer)
    assert none.collision_groups() == [[2, 3], [4, 5]]
    attributes = build_item_texts(
        table, construction(fields=["title"], disambiguation="attributes"), options, tokenizer
    )
    # the year separates the two Sabrinas; nothing separates the Chasing Amy pair
    assert attributes.texts[2:4] == ["Sabrina (1954)", "Sabrina (1995)"]
    assert attributes.collision_groups() == [[4, 5]]
    both = build_item_texts(
        table,
        construction(fields=["title"], disambiguation="attributes+ordinal"),
        options,
        tokenizer,
    )
    assert both.collision_groups() == []
    # ranks follow original item ids (5 before 7), not internal ids
    assert both.texts[4:6] == ["Chasing Amy #2", "Chasing Amy #1"]
    assert both.disambiguated == 4


def test_token_caps_keep_whole_words(table, options, tokenizer):
    capped = build_item_texts(
        table,
        construction(fields=["title", "genres"], max_item_tokens=3, clean=CLEAN),
        options,
        tokenizer,
    )
    for text in capped.texts[1:]:
        assert tokenizer.count(text) <= 3
    assert capped.texts[1] == "The"  # "Devil's" alone is 3 tokens: devil ' s


def test_construction_config_errors_name_the_key():
    with pytest.raises(ValueError, match=r"item_text_candidates\['c'\].style"):
        construction(fields=["title"], style="prose")
    with pytest.raises(ValueError, match="unknown cleaners"):
        construction(fields=["title"], clean=["spellcheck"])
    with pytest.raises(ValueError, match="template uses fields"):
        construction(fields=["title"], style="natural", template="{title} {year}")
    with pytest.raises(ValueError, match="max_item_tokens"):
        construction(fields=["title"], max_item_tokens=0)
    with pytest.raises(ValueError, match="unknown keys"):
        construction(fields=["title"], colour="red")


def history_builder(item_texts, tokenizer, budget=512, **spec):
    spec = {"name": "h", **spec}
    return HistoryTextBuilder(
        HistoryTextConstruction.from_dict(spec), item_texts, tokenizer, budget
    )


def test_history_token_count_equals_the_tokenizer(tokenizer):
    items = ["", "The Devil's Own (1997)", "Sabrina, Comedy movie", "L.A. Confidential", "Kolya"]
    builder = history_builder(
        items, tokenizer, prompt="A user watched: {history}. Next?", separator="; "
    )
    rng = np.random.default_rng(0)
    for _ in range(20):
        history = rng.integers(1, len(items), size=rng.integers(1, 12))
        text, kept = builder.build(history)
        assert builder.token_count(history) == len(tokenizer.hf(text)["input_ids"])
        assert kept == min(len(history), 50)


def test_history_truncates_oldest_first_and_orders(tokenizer):
    items = [""] + [f"movie number {i}" for i in range(1, 30)]  # 3 tokens each
    builder = history_builder(items, tokenizer, budget=30, prompt="{history}", separator="; ")
    history = list(range(1, 30))
    kept = builder.kept_items(history)
    assert kept == history[-len(kept) :]  # the most recent ones, in time order
    assert builder.token_count(history) <= 30 < builder.token_count(history) + 4
    newest = history_builder(
        items, tokenizer, budget=30, prompt="{history}", separator="; ", order="newest_first"
    )
    assert newest.build(history)[0].startswith("movie number 29; movie number 28")
    limited = history_builder(items, tokenizer, prompt="{history}", max_items=3)
    assert limited.kept_items(history) == [27, 28, 29]


def test_budget_smaller_than_one_item_is_refused(tokenizer):
    items = ["", "a", "a much longer title with many words in it"]
    with pytest.raises(
        ValueError, match=r"history_token_budget=8 is smaller than one item.*item 2"
    ):
        history_builder(items, tokenizer, budget=8, prompt="{history}")
    with pytest.raises(ValueError, match=r"prompt must contain '\{history\}'"):
        HistoryTextConstruction.from_dict({"name": "h", "prompt": "no placeholder"})


def test_text_stats_of_a_history_is_the_sum_of_its_parts(tokenizer):
    stats = ind.TextStats(tokenizer)
    parts = ["The Devil's Own (1997)", "Sabrina, Comedy movie", "B00XYZ12 <b>"]
    joined = "; ".join(parts)
    separators = stats.of([";"])[0] * (len(parts) - 1)
    np.testing.assert_allclose(stats.of([joined])[0], stats.of(parts).sum(axis=0) + separators)


def test_naturalness_prefers_language_over_codes(tokenizer):
    stats = ind.TextStats(tokenizer)
    sentence = ind.naturalness(stats.of(["The Hunt for Red October, an action movie from 1990"]))
    key_value = ind.naturalness(stats.of(["title: hunt_for_red_october; year: 1990; id: B00X7Z"]))
    codes = ind.naturalness(stats.of(["B00X7Z | SKU-7781 | <br/> | qzxv"]))
    assert sentence["score"] > key_value["score"] > codes["score"]
    assert sentence["tokenizer_view"] == 1.0  # words, a number and ordinary punctuation only
    assert codes["token_classes"]["word"] < 0.3


def test_informativeness_and_noise_are_exact(table, options, tokenizer):
    texts = build_item_texts(table, construction(fields=["title"]), options, tokenizer)
    items = range(1, 7)
    info = ind.informativeness(texts, items, options.fields)
    assert info["unique_share"] == pytest.approx(2 / 6)  # Devil's Own and unkonwn
    assert info["coverage"] == pytest.approx(1 / 3)  # one of three fields
    noise = ind.noise_ambiguity(texts, items)
    assert noise["collision_groups"] == 2 and noise["ambiguous_items"] == 4
    assert noise["noise_kinds"] == {"title:article_suffix": 1, "title:null_value": 1}
    assert noise["value"] == pytest.approx((2 / 6 + 4 / 6) / 2)


def test_separator_collisions_count_histories_that_cannot_be_split_back():
    texts = ["", "Fast, Cheap & Out of Control (1997)", "Heat (1995)", "Up (2009)", "Go, Go"]
    kept = [[2, 3], [1, 2], [3], [2, 1, 4], []]
    commas = ind.separator_collisions(kept, texts, ", ")
    assert commas["separator"] == ","
    assert commas["value"] == pytest.approx(2 / 5)  # histories 2 and 4 hold a comma title
    assert commas["histories_with_collision"] == 2 and commas["histories"] == 5
    assert commas["item_slots_with_separator"] == pytest.approx(3 / 8)
    assert commas["items_containing_separator"] == pytest.approx(2 / 4)
    assert (
        ind.separator_collisions(kept, texts, ", ", items=[2, 3])["items_containing_separator"] == 0
    )
    semicolons = ind.separator_collisions(kept, texts, "; ")
    assert semicolons["value"] == semicolons["item_slots_with_separator"] == 0


def test_domain_consistency(tokenizer):
    stats = ind.TextStats(tokenizer)
    a = ind.text_profile(stats.of(["a red car", "the blue sky"]), {"title": 1.0})
    b = ind.text_profile(stats.of(["a red car", "the blue sky"]), {"title": 1.0})
    c = ind.text_profile(stats.of(["id: B00X7Z; sku: 77-81-QZ"]), {"title": 0.0})
    overall, per_domain = ind.domain_consistency({"a": a, "b": b}, None)
    assert overall == pytest.approx(1.0)
    overall, per_domain = ind.domain_consistency({"a": a, "b": b, "c": c}, None)
    assert per_domain["c"] < per_domain["a"] and overall < 1.0
    assert ind.domain_consistency({"a": a}, None) == (None, {})


def candidate(name, naturalness, informativeness, noise, mean, p95):
    return {
        "name": name,
        "eligible": p95 <= 24,
        "indicators": {
            "naturalness": {"score": naturalness},
            "domain_consistency": None,
            "informativeness": {"score": informativeness},
            "noise_ambiguity": {"value": noise},
            "text_length": {"mean": mean, "p95": p95},
        },
    }


def test_policy_follows_the_weights_and_the_budget():
    candidates = [
        candidate("short_natural", 0.9, 0.6, 0.2, 5, 8),
        candidate("rich", 0.6, 1.0, 0.0, 15, 22),
        candidate("too_long", 1.0, 1.0, 0.0, 30, 40),
    ]
    pretrain = {"naturalness": 0.7, "domain_consistency": 0.2, "text_length": 0.1}
    finetune = {"informativeness": 0.5, "noise_ambiguity": 0.5}
    assert choose([dict(c) for c in candidates], pretrain, 24)["name"] == "short_natural"
    assert choose([dict(c) for c in candidates], finetune, 24)["name"] == "rich"
    with pytest.raises(ValueError, match="over the stage's length budget"):
        choose([candidates[2]], finetune, 24)


def test_policy_config_errors():
    with pytest.raises(ValueError, match="unknown indicators"):
        StagePolicy.from_dict("pretrain", {"weights": {"fluency": 1.0}})
    with pytest.raises(ValueError, match="at least one weight"):
        StagePolicy.from_dict("pretrain", {"weights": {"naturalness": 0}})
    with pytest.raises(ValueError, match="max_item_tokens"):
        StagePolicy.from_dict("finetune", {"weights": {"naturalness": 1}, "max_item_tokens": 0})
