"""``bagformer_retrieval`` on LAVIS's ALBEF parts: built from the embedded config on tiny
generated images, its losses and their config weights, the clamped temperature, the
interaction switch, and the three inference score sets against independent computations."""

import retrieval_ext  # noqa: F401
from retrieval_ext.models.bagformer import BELOW_TOP_K, BagFormerRetrieval
from retrieval_ext.models.bagging import EntityBagger, bagwise_similarity

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO_ROOT
from omegaconf import OmegaConf

CONFIG = REPO_ROOT / "configs" / "lavis" / "bagformer" / "embedded.yaml"


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from retrieval_ext.datasets.image_text_synthetic import write_image_text_dataset

    root = tmp_path_factory.mktemp("image_text")
    write_image_text_dataset(root, {"train": 8, "val": 2, "test": 5}, seed=3)
    return root


def _options(data, out, *extra):
    ann = data / "annotations"
    prefix = "datasets.embedded_image_text.build_info"
    return [
        *(
            f"{prefix}.annotations.{s}.storage={ann / f'{s}.json'}"
            for s in ("train", "val", "test")
        ),
        f"{prefix}.images.storage={data / 'images'}",
        f"model.entity_dictionary={data / 'entities.txt'}",
        f"run.output_dir={out}",
        "run.k_test=3",
        "run.batch_size_train=8",
        "model.vit_depth=1",
        *extra,
    ]


@pytest.fixture(scope="module")
def built(tiny_data, tmp_path_factory):
    from retrieval_ext.launch import build

    cfg, task, model, datasets, runner = build(
        str(CONFIG), _options(tiny_data, tmp_path_factory.mktemp("runs"))
    )
    model.eval()
    return task, model, datasets["embedded_image_text"], runner


def _model_cfg(tiny_data, **overrides):
    cfg = OmegaConf.load(CONFIG).model
    cfg.entity_dictionary = str(tiny_data / "entities.txt")
    cfg.vit_depth = 1
    return OmegaConf.merge(cfg, overrides)


def _batch(dataset, count=6):
    batch = dataset["train"].collater([dataset["train"][i] for i in range(count)])
    return batch


def test_the_model_is_registered_in_lavis():
    from lavis.common.registry import registry

    assert registry.get_model_class("bagformer_retrieval") is BagFormerRetrieval


def test_an_unknown_interaction_or_fusion_is_named(tiny_data):
    with pytest.raises(ValueError, match=r"model.interaction: 'colbert' is not one of bagwise"):
        BagFormerRetrieval.from_config(_model_cfg(tiny_data, interaction="colbert"))
    with pytest.raises(ValueError, match=r"model.bag_fusion: 'middle'"):
        BagFormerRetrieval.from_config(_model_cfg(tiny_data, bag_fusion="middle"))
    with pytest.raises(ValueError, match="model.entity_dictionary is required"):
        BagFormerRetrieval.from_config(_model_cfg(tiny_data, entity_dictionary=""))
    with pytest.raises(ValueError, match=r"model.temp=0.01 must lie in \[temp_min=0.05"):
        BagFormerRetrieval.from_config(_model_cfg(tiny_data, temp=0.01))


def test_losses_follow_their_config_weights(tiny_data, built):
    _, _, dataset, _ = built
    batch = _batch(dataset)
    outputs = {}
    for name, weights in {
        "equal": {},
        "weighted": {"ita_weight": 2.0, "itm_weight": 0.5, "twc_weight": 0.0},
    }.items():
        torch.manual_seed(0)
        model = BagFormerRetrieval.from_config(_model_cfg(tiny_data, **weights))
        torch.manual_seed(1)  # the same ITM negatives
        with torch.no_grad():
            outputs[name] = model(batch)
    equal, weighted = (
        {k: float(v) for k, v in o.items() if k.startswith("loss")}
        for o in (outputs["equal"], outputs["weighted"])
    )
    assert equal["loss"] == pytest.approx(equal["loss_ita"] + equal["loss_itm"] + equal["loss_twc"])
    assert equal["loss_twc"] > 0 and outputs["equal"].sim_t2i_bagwise.shape == (6, 6)
    assert weighted["loss_ita"] == pytest.approx(2 * equal["loss_ita"], rel=1e-5)
    assert weighted["loss_itm"] == pytest.approx(0.5 * equal["loss_itm"], rel=1e-5)
    assert weighted["loss_twc"] == 0
    assert weighted["loss"] == pytest.approx(weighted["loss_ita"] + weighted["loss_itm"], rel=1e-5)


def test_the_temperature_is_learnable_and_clamped(tiny_data, built):
    _, _, dataset, _ = built
    model = BagFormerRetrieval.from_config(_model_cfg(tiny_data))
    assert model.temp.requires_grad and model.temp.item() == pytest.approx(0.07)
    for start, clamped in ((0.01, 0.05), (0.9, 0.5)):
        model.temp.data.fill_(start)
        model(_batch(dataset))
        assert model.temp.item() == pytest.approx(clamped)


@pytest.mark.parametrize("interaction", ["bagwise", "tokenwise", "cls_token"])
@pytest.mark.parametrize("fusion", ["late", "early"])
def test_every_interaction_trains_every_part(tiny_data, built, interaction, fusion):
    _, _, dataset, _ = built
    model = BagFormerRetrieval.from_config(
        _model_cfg(tiny_data, interaction=interaction, bag_fusion=fusion)
    )
    output = model(_batch(dataset))
    output.loss.backward()
    assert torch.isfinite(output.loss)
    assert (output.loss_twc > 0) == (interaction != "cls_token")
    for name in ("visual_encoder.patch_embed.proj.weight", "text_proj.weight", "itm_head.weight"):
        assert model.get_parameter(name).grad.abs().sum() > 0, name
    word_embeddings = model.text_encoder.embeddings.word_embeddings.weight.grad
    assert word_embeddings.abs().sum() > 0


def _single_caption_recall(model, captions, images):
    """Bag-wise scores from each caption and image encoded alone (no batch padding), in
    float32 throughout; and each caption's count of scored bags."""
    t2i, counted = torch.zeros(len(captions), len(images)), torch.zeros(len(captions))
    with torch.no_grad():
        tokens = [
            F.normalize(model.vision_proj(model.visual_encoder.forward_features(im[None])), dim=-1)
            for im in images
        ]
        for t, caption in enumerate(captions):
            _, _, bags, bag_mask = model.encode_text(model.tokenize([caption]))
            bags = F.normalize(model.text_proj(bags), dim=-1)
            counted[t] = bag_mask.sum()
            for i, image_tokens in enumerate(tokens):
                t2i[t, i] = bagwise_similarity(bags, bag_mask, image_tokens)[0][0, 0]
    return t2i, counted


def test_three_score_sets_against_independent_computations(built):
    from types import SimpleNamespace

    _, model, _, runner = built
    loader = runner.dataloaders["test"]
    dataset = loader.dataset
    scores = model.compute_sim_matrix(loader, SimpleNamespace(k_test=3))
    assert set(scores) == {"recall", "rank", "merge", "cls"}
    recall_i2t, recall_t2i = (torch.from_numpy(s) for s in scores["recall"])
    images = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
    expected, counted = _single_caption_recall(model, dataset.text, images)
    # the gallery's unit image tokens are stored in float16: each moves by at most 2^-11
    # (relative rounding), so each bag's best dot product by at most that, a caption's
    # score by its bag count times that
    bound = counted[:, None] * 2.0**-11
    assert ((recall_t2i - expected).abs() <= bound + 1e-6).all()
    rank_i2t, rank_t2i = (torch.from_numpy(s) for s in scores["rank"])
    merge_i2t, merge_t2i = (torch.from_numpy(s) for s in scores["merge"])
    for recall, rank, merge in (
        (recall_i2t, rank_i2t, merge_i2t),
        (recall_t2i, rank_t2i, merge_t2i),
    ):
        top = rank > BELOW_TOP_K
        assert (top.sum(1) == 3).all()  # k_test candidates re-scored per row
        recall_top = torch.zeros_like(top)
        recall_top.scatter_(1, recall.topk(3, dim=1).indices, True)
        assert torch.equal(top, recall_top)  # ... the recall stage's top k_test
        assert torch.allclose(merge[top], rank[top] + recall[top])
        assert (merge[~top] == BELOW_TOP_K).all()
    # one rank entry recomputed with the fusion encoder alone
    row = 0
    col = int(rank_t2i[row].argmax())
    text = model.tokenize([dataset.text[row]])
    sequence, mask, _, _ = model.encode_text(text)
    with torch.no_grad():
        image_embeds = model.visual_encoder.forward_features(images[col][None])
        stored = image_embeds.half().float()  # as the gallery keeps them
        logit = model.fusion_itm_logits(sequence, mask, stored)[0, 1]
        full_precision = model.fusion_itm_logits(sequence, mask, image_embeds)[0, 1]
    assert rank_t2i[row, col].item() == pytest.approx(logit.item(), abs=1e-4)
    assert rank_t2i[row, col].item() == pytest.approx(full_precision.item(), abs=1e-2)


def test_captions_without_an_entity_bag_are_scored_and_counted(built, tmp_path):
    from types import SimpleNamespace

    _, model, _, runner = built
    loader = runner.dataloaders["test"]
    texts = loader.dataset.text
    dictionary = tmp_path / "one.txt"
    dictionary.write_text("fire truck\n")
    original = model.bagger
    model.bagger = EntityBagger.from_file(dictionary, model.tokenizer)
    try:
        scores = model.compute_sim_matrix(loader, SimpleNamespace(k_test=2))
    finally:
        model.bagger = original
    without = sum("fire truck" not in caption for caption in texts)
    assert 0 < without < len(texts)
    assert model.last_bag_stats == {"captions": len(texts), "captions_without_entity_bag": without}
    recall_t2i = scores["recall"][1]
    assert recall_t2i.shape == (len(texts), len(loader.dataset.image))
    assert (recall_t2i != 0).all()  # every caption scored, with or without an entity


def test_the_task_reports_every_score_set(built):
    task, model, _, runner = built
    metrics = task.evaluation(model, runner.dataloaders["test"])
    for name in ("txt_r1", "img_r10", "r_mean"):
        for prefix in ("", "recall_", "rank_", "cls_"):
            assert f"{prefix}{name}" in metrics
    assert metrics["agg_metrics"] == metrics["r_mean"]  # merge, the set selected on


def _adjacent_entities_bagger(model, caption):
    """A dictionary of the caption's tokens 1-2 and 3-4: two adjacent entities."""
    ids = model.tokenize([caption]).input_ids[0].tolist()
    return EntityBagger([ids[1:3], ids[3:5]], rule="official")


def test_the_released_empty_bag_counts_as_the_projected_bias(built):
    _, model, dataset, _ = built
    caption = dataset["test"].text[0]
    original = model.bagger
    model.bagger = _adjacent_entities_bagger(model, caption)
    try:
        with torch.no_grad():
            text = model.tokenize([caption])
            _, _, bags, bag_mask = model.encode_text(text)
            hidden = model.text_encoder.forward_text(text).last_hidden_state
    finally:
        model.bagger = original
    # [CLS] (t1 t2) () (t3 t4) t5 ...: bag 2 sums no token and is counted
    assert bag_mask[0, :4].tolist() == [False, True, True, True]
    assert torch.equal(bags[0, 2], torch.zeros_like(bags[0, 2]))
    assert torch.allclose(bags[0, 1], hidden[0, 1] + hidden[0, 2], atol=1e-6)
    feature = F.normalize(model.text_proj(bags), dim=-1)[0, 2]
    assert torch.allclose(feature, F.normalize(model.text_proj.bias, dim=-1), atol=1e-6)


def test_early_fusion_goes_through_the_embedding_layer_again(tiny_data, built):
    _, _, dataset, _ = built
    model = BagFormerRetrieval.from_config(_model_cfg(tiny_data, bag_fusion="early")).eval()
    caption = dataset["test"].text[0]
    model.bagger = _adjacent_entities_bagger(model, caption)
    text = model.tokenize([caption])
    length = int(text.attention_mask.sum())
    with torch.no_grad():
        sequence, sequence_mask, bags, bag_mask = model.encode_text(text)
        inputs = model.text_encoder.embeddings(input_ids=text.input_ids)[0]
        # the bagger's bags ([CLS] first; an empty bag sums nothing), summed one by one
        bags_of_caption = model.bagger.bags(text.input_ids[0, 1:length].tolist())
        assert bags_of_caption[:3] == [[0, 1], [], [2, 3]]
        pooled = [inputs[0]] + [inputs[[1 + p for p in bag]].sum(0) for bag in bags_of_caption]
        pooled = torch.stack(pooled)[None]
        embeddings = model.text_encoder.embeddings
        positions = embeddings.position_embeddings.weight[: pooled.size(1)]
        mask = torch.ones(1, pooled.size(1), dtype=torch.long)
        mask[0, 0] = 0  # [CLS] is masked from attention, as released
        expected = model.text_encoder(
            encoder_embeds=embeddings.LayerNorm(pooled + positions),
            attention_mask=mask,
            return_dict=True,
            mode="text",
        ).last_hidden_state
    assert sequence.shape == expected.shape and torch.equal(sequence_mask, mask)
    assert torch.allclose(sequence, expected, atol=1e-5) and bags is sequence
    assert bag_mask[0].tolist() == [False] + [True] * (pooled.size(1) - 1)


def test_tokenwise_scores_every_position_as_released(tiny_data, built):
    _, _, dataset, _ = built
    model = BagFormerRetrieval.from_config(_model_cfg(tiny_data, interaction="tokenwise")).eval()
    text = model.tokenize(dataset["test"].text[:2])
    assert not text.attention_mask.all()  # the captions are padded
    with torch.no_grad():
        sequence, sequence_mask, bags, bag_mask = model.encode_text(text)
        hidden = model.text_encoder.forward_text(text).last_hidden_state
    # [CLS] and padding included, none masked
    assert bag_mask.shape == (2, model.max_txt_len) and bag_mask.all()
    assert torch.allclose(bags, hidden) and torch.equal(sequence_mask, text.attention_mask)


def test_the_gallery_is_float16_on_the_cpu_under_a_stated_bound(built):
    _, model, _, runner = built
    loader = runner.dataloaders["test"]
    gallery = model.encode_gallery(loader)
    for key in ("image_embeds", "image_tokens"):
        assert gallery[key].dtype == torch.float16 and gallery[key].device.type == "cpu"
    assert gallery["image_tokens"].shape == (5, 37, 64)  # 5 test images, 36 patches + [CLS]
    bytes_needed = 5 * 37 * (64 + 64) * 2
    model.gallery_memory_gb = bytes_needed / 2**30 * 0.99
    try:
        with pytest.raises(ValueError) as error:
            model.encode_gallery(loader)
    finally:
        model.gallery_memory_gb = 16.0
    message = str(error.value)
    assert "5 images x 37 tokens x (64 + 64) values x 2 bytes" in message
    assert "model.gallery_memory_gb=" in message
    model.gallery_memory_gb = bytes_needed / 2**30  # exactly enough
    try:
        model.encode_gallery(loader)
    finally:
        model.gallery_memory_gb = 16.0
