"""The BagFormer stage of ``plugzoo demo``: bag-wise late interaction beside ALBEF.

Writes the embedded image-text dataset (generated images; captions name shapes, colours,
sizes and positions; an entity dictionary of the multi-word names), trains LAVIS's ALBEF and
BagFormer with the same recipe, tests each, and times each inference path per query: ALBEF's
[CLS] dual encoder (ITC) and its ITM re-rank, BagFormer's bag-wise recall and its merge with
the ITM re-rank. ``run_bagformer_demo`` is the stage without the report.
"""

from __future__ import annotations

import time
from pathlib import Path

from retrieval_ext.demo.common import (
    COST_GALLERY,
    COST_KEY,
    COST_QUERIES,
    SIDE_BY_SIDE,
    cost_plot,
    data_options,
    one_thread_ms,
    tile,
)
from retrieval_ext.launch import run
from retrieval_ext.models.bagging import chunked_bagwise_similarity
from retrieval_ext.tasks.image_text_retrieval import itc_text_features

from plugins.demo import check_size
from plugins.paths import CONFIG_DIR
from plugins.processes import run_side_by_side
from plugins.report import StageResult
from plugins.separation import flag, separation_notes

IMAGE_TEXT_CONFIGS = {
    "ALBEF": CONFIG_DIR / "lavis" / "albef" / "embedded.yaml",
    "BagFormer": CONFIG_DIR / "lavis" / "bagformer" / "embedded.yaml",
}
# row: (model, prefix of its score set in the test metrics, the path whose cost is timed)
IMAGE_TEXT_ROWS = {
    "ALBEF ITC (dual encoder, [CLS])": ("ALBEF", "itc_", "cls"),
    "ALBEF ITM re-rank (single encoder)": ("ALBEF", "", "cls+itm"),
    "BagFormer recall (bag-wise dual encoder)": ("BagFormer", "recall_", "bagwise"),
    "BagFormer merge (recall + ITM re-rank)": ("BagFormer", "", "bagwise+itm"),
}
# images per split, epochs, warm-up steps and whether the two models train side by side (a
# process each), per demo size; full is the recipe of configs/lavis/{albef,bagformer}/embedded.yaml
SETTINGS = {
    "quick": {
        "images": {"train": 160, "val": 20, "test": 40},
        "epochs": 4,
        "warmup_steps": 20,
        "side_by_side": True,
    },
    "default": {
        "images": {"train": 240, "val": 40, "test": 100},
        "epochs": 5,
        "warmup_steps": 30,
        "side_by_side": True,
    },
    "full": {
        "images": {"train": 480, "val": 60, "test": 100},
        "epochs": 10,
        "warmup_steps": 100,
        "side_by_side": False,
    },
}


def image_text_data_options(root: Path) -> list[str]:
    """``--options`` pointing the embedded image-text configs at a dataset in ``root``."""
    return data_options(root, builder="embedded_image_text")


def _image_text_query_costs(model, name: str, loader, k_test: int) -> dict[str, tuple]:
    """``{path: (ms per query, bytes stored per image)}`` of text-to-image search for each
    of the model's paths: ``COST_QUERIES`` test captions, encoded beforehand, each scored
    alone against ``COST_GALLERY`` stored images (the test images tiled), one thread. The
    re-ranking paths run the fusion encoder on the query's top ``k_test`` images, as the
    LAVIS evaluation does."""
    import torch
    import torch.nn.functional as F

    texts = list(loader.dataset.text)[:COST_QUERIES]
    with torch.no_grad():
        feats = torch.cat(
            [model.visual_encoder.forward_features(s["image"].to(model.device)) for s in loader]
        )
        feats = tile(feats, COST_GALLERY)  # the fusion encoder's image input
        tokens, width = feats.shape[1], feats.shape[2]
        dim = model.vision_proj.out_features
        if name == "ALBEF":
            text, queries = itc_text_features(model, texts)
            image_cls = F.normalize(model.vision_proj(feats[:, 0, :]), dim=-1)

            def recall(q):
                return image_cls @ queries[q]

            def itm(q, top):
                k = len(top)
                fused = model.text_encoder(
                    text.input_ids[q : q + 1].expand(k, -1),
                    attention_mask=text.attention_mask[q : q + 1].expand(k, -1),
                    encoder_hidden_states=feats[top],
                    encoder_attention_mask=torch.ones(feats[top].shape[:-1], dtype=torch.long),
                    return_dict=True,
                ).last_hidden_state
                return model.itm_head(fused[:, 0, :])[:, 1]

            paths = {"cls": (recall, None, dim * 4), "cls+itm": (recall, itm, dim * 4)}
        else:
            sequence, sequence_mask, bags, bag_mask = model.encode_text(model.tokenize(texts))
            bags = F.normalize(model.text_proj(bags), dim=-1)
            image_tokens = F.normalize(model.vision_proj(feats), dim=-1)

            def recall(q):
                query = bags[q][bag_mask[q]][None]  # its own bags, not the batch's padding
                mask = torch.ones(query.shape[:2], dtype=torch.bool)
                return chunked_bagwise_similarity(query, mask, image_tokens, directions="t2i")[0][0]

            def itm(q, top):
                k = len(top)
                return model.fusion_itm_logits(
                    sequence[q : q + 1].expand(k, -1, -1),
                    sequence_mask[q : q + 1].expand(k, -1),
                    feats[top],
                )[:, 1]

            row = tokens * dim * 4
            paths = {"bagwise": (recall, None, row), "bagwise+itm": (recall, itm, row)}

        def searcher(recall, itm):
            def search():
                for q in range(len(texts)):
                    scores = recall(q)
                    if itm is None:
                        scores.topk(10)
                    else:
                        top = scores.topk(k_test)
                        (itm(q, top.indices) + top.values).topk(10)

            return search

        costs = {}
        for path, (recall_fn, itm_fn, row_bytes) in paths.items():
            ms = one_thread_ms(searcher(recall_fn, itm_fn), len(texts))
            fusion_input = tokens * width * 4 if itm_fn else 0
            costs[path] = (ms, row_bytes + fusion_input)
    return costs


def run_bagformer_demo(
    work_dir: Path,
    images: dict[str, int],
    epochs: int,
    warmup_steps: int,
    seed: int = 42,
    progress=print,
    side_by_side: bool = False,
) -> dict:
    """Train ALBEF and BagFormer with the same recipe on the embedded image-text dataset
    (``side_by_side``: both at once, a process each, ``plugins.processes``), test each, and
    time each inference path; returns ``{"dataset", "rows", "configs"}``."""
    from retrieval_ext.datasets.image_text_synthetic import write_image_text_dataset
    from retrieval_ext.launch import build

    work_dir = Path(work_dir)
    dataset = write_image_text_dataset(work_dir / "image_text", images, seed=0)
    root = Path(dataset["root"])
    progress(f"  wrote {sum(dataset['splits'].values())} images to {root}")
    base = image_text_data_options(root) + [
        f"run.output_dir={work_dir / 'runs'}",
        f"run.max_epoch={epochs}",
        f"run.warmup_steps={warmup_steps}",
        f"run.seed={seed}",
    ]
    options = {name: [*base, f"run.job_id={name.lower()}"] for name in IMAGE_TEXT_CONFIGS}
    options["BagFormer"].append(f"model.entity_dictionary={root / 'entities.txt'}")
    calls = [((str(path), options[name]), {}) for name, path in IMAGE_TEXT_CONFIGS.items()]
    trained = run_side_by_side(run, calls, None if side_by_side else 1)
    results = dict(zip(IMAGE_TEXT_CONFIGS, trained, strict=True))
    costs, configs = {}, {}
    for name, path in IMAGE_TEXT_CONFIGS.items():
        checkpoint = Path(results[name]["output_dir"]) / "checkpoint_best.pth"
        cfg, _, model, _, runner = build(
            str(path),
            options[name] + ["model.load_finetuned=true", f"model.finetuned={checkpoint}"],
            evaluate=True,
        )
        loader = runner.dataloaders["test"]
        k_test = min(int(cfg.run_cfg.k_test), len(loader.dataset.image))
        costs.update(_image_text_query_costs(model.eval(), name, loader, k_test))
        configs[name] = results[name]["config"]
        metrics = results[name]["test"]["test"]
        progress(f"  {name}: r_mean {metrics['r_mean']:.1f} ({results[name]['seconds']:.0f} s)")
    rows = []
    for row_name, (name, prefix, path) in IMAGE_TEXT_ROWS.items():
        metrics = results[name]["test"]["test"]
        ms, row_bytes = costs[path]
        rows.append(
            {
                "model": row_name,
                "r_mean": metrics[f"{prefix}r_mean"],
                "text-to-image R@1": metrics[f"{prefix}img_r1"],
                "image-to-text R@1": metrics[f"{prefix}txt_r1"],
                "bytes per image": row_bytes,
                COST_KEY: ms,
                "train+test s (model)": round(results[name]["seconds"], 1),
            }
        )
    return {"dataset": dataset, "rows": rows, "configs": configs}


def bagformer_stage(run_dir: Path, size: str = "default") -> StageResult:
    """``plugzoo demo`` stage: BagFormer's two paths beside ALBEF's two."""
    start = time.time()
    run_dir = Path(run_dir)
    settings = SETTINGS[check_size(size)]
    images, epochs, warmup_steps = settings["images"], settings["epochs"], settings["warmup_steps"]
    result = run_bagformer_demo(
        run_dir / "bagformer",
        images,
        epochs,
        warmup_steps,
        side_by_side=settings["side_by_side"],
    )
    dataset = result["dataset"]
    figure = cost_plot(
        result["rows"],
        run_dir / "bagformer" / "bagformer_cost.png",
        metric_key="r_mean",
        ylabel="mean recall, both directions (%)",
        title="BagFormer beside ALBEF: recall against per-query cost",
    )
    stage = StageResult(
        name="lavis.bagformer",
        title="BagFormer (LAVIS): bag-wise late interaction beside ALBEF's two paths",
        summary=(
            f"ALBEF and BagFormer trained from scratch with the same recipe for {epochs} epochs "
            f"on {dataset['splits']['train']} generated images (captions name shapes, "
            f"colours, sizes and positions; the entity dictionary holds the multi-word names), "
            f"tested on {dataset['splits']['test']} images. r_mean is the mean of "
            "R@1/5/10 in both directions. ALBEF ITC scores [CLS] vectors; ALBEF ITM re-ranks "
            "ITC's top k_test through the fusion encoder (LAVIS's scores); BagFormer recall "
            "sums, over the caption's bags, each bag's best image-token cosine; merge adds "
            f"the ITM re-rank of recall's top k_test. Per-query cost: {COST_QUERIES} encoded "
            f"test captions, each searched alone against {COST_GALLERY:,} stored images (the "
            "test images tiled), one thread. One seed: "
            "`tools/experiments/bagformer/bagformer_compare.py` runs three."
            + SIDE_BY_SIDE
            * settings["side_by_side"]
        ),
        rows=result["rows"],
        config={"size": size, **settings, "configs": result["configs"]},
        figures=[str(figure.relative_to(run_dir))],
        seconds=time.time() - start,
    )
    # r_mean averages per-query recalls over both directions; the image side, the smaller,
    # bounds its standard error
    notes = separation_notes(
        result["rows"],
        "r_mean",
        dataset["splits"]["test"],
        scale=100,
        pairs=[
            ("BagFormer recall (bag-wise dual encoder)", "ALBEF ITC (dual encoder, [CLS])"),
            ("BagFormer merge (recall + ITM re-rank)", "ALBEF ITM re-rank (single encoder)"),
        ],
        items="test images",
    )
    return flag(stage, notes)
