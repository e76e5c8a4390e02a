"""The image_text_retrieval task: LAVIS's metric names, checked against an independent
computation; selection on both directions; score sets; bad configurations."""

from types import SimpleNamespace

import retrieval_ext  # noqa: F401  (registers the task)
from retrieval_ext.tasks.image_text_retrieval import ImageTextRetrievalTask, image_text_metrics

import numpy as np
import pytest
from omegaconf import OmegaConf

# 4 images, 9 captions: image 0 has 3 captions, image 1 has 2, image 2 has 3, image 3 has 1
IMG2TXT = {0: [0, 1, 2], 1: [3, 4], 2: [5, 6, 7], 3: [8]}
TXT2IMG = {t: i for i, texts in IMG2TXT.items() for t in texts}


def _by_hand(scores_i2t, scores_t2i):
    """Recall@K from sorted lists of (score, index), written independently of the task."""

    def hit(row, positives, k):
        order = sorted(range(len(row)), key=lambda j: (-row[j], j))
        return any(j in positives for j in order[:k])

    out = {}
    for k in (1, 5, 10):
        out[f"txt_r{k}"] = 100 * np.mean(
            [hit(scores_i2t[i], set(IMG2TXT[i]), k) for i in range(len(IMG2TXT))]
        )
        out[f"img_r{k}"] = 100 * np.mean(
            [hit(scores_t2i[t], {TXT2IMG[t]}, k) for t in range(len(TXT2IMG))]
        )
    for side in ("txt", "img"):
        out[f"{side}_r_mean"] = np.mean([out[f"{side}_r{k}"] for k in (1, 5, 10)])
    out["r_mean"] = (out["txt_r_mean"] + out["img_r_mean"]) / 2
    return out


def test_metrics_match_an_independent_computation_with_several_captions_per_image():
    rng = np.random.default_rng(0)
    for _ in range(20):
        sims = rng.normal(size=(4, 9)).round(1)  # rounding makes ties
        i2t, t2i = sims, sims.T + rng.normal(scale=0.5, size=(9, 4))
        ours = image_text_metrics(i2t, t2i, TXT2IMG, IMG2TXT)
        assert ours == pytest.approx(_by_hand(i2t, t2i))


def test_an_image_ranks_by_its_best_caption_and_names_are_lavis_names():
    i2t = np.zeros((4, 9))
    i2t[0] = [0, 0, 9, 0, 0, 0, 0, 0, 0]  # its third caption first: hit at 1
    i2t[1] = [5, 4, 3, 2, 1, 0, 0, 0, 0]  # its captions 3, 4 rank 4th and 5th (0-based 3)
    i2t[2] = [9, 8, 7, 6, 5, 4, 3, 2, 1]  # caption 5 ranks 6th: miss at 5
    i2t[3] = np.arange(9)  # caption 8 first
    t2i = np.tile(np.arange(4)[::-1], (9, 1)).astype(float)  # image 0 always first
    metrics = image_text_metrics(i2t, t2i, TXT2IMG, IMG2TXT)
    assert set(metrics) == {
        "txt_r1", "txt_r5", "txt_r10", "txt_r_mean",
        "img_r1", "img_r5", "img_r10", "img_r_mean", "r_mean",
    }  # fmt: skip
    assert metrics["txt_r1"] == 50.0 and metrics["txt_r5"] == 75.0 and metrics["txt_r10"] == 100
    # text-to-image: captions of image 0 hit at 1; image 1 at rank 3, image 2 at 2, image 3 at 4
    assert metrics["img_r1"] == pytest.approx(100 * 3 / 9)
    assert metrics["img_r5"] == 100.0
    assert metrics["r_mean"] == pytest.approx((metrics["txt_r_mean"] + metrics["img_r_mean"]) / 2)


def test_lavis_own_report_agrees_where_there_are_no_ties(tmp_path):
    from lavis.common.registry import registry
    from lavis.tasks.retrieval import RetrievalTask

    registry.mapping["paths"]["output_dir"] = str(tmp_path)
    rng = np.random.default_rng(1)
    i2t, t2i = rng.normal(size=(4, 9)), rng.normal(size=(9, 4))
    lavis = RetrievalTask._report_metrics(i2t, t2i, TXT2IMG, IMG2TXT)
    ours = image_text_metrics(i2t, t2i, TXT2IMG, IMG2TXT)
    for key, value in ours.items():
        assert lavis[key] == pytest.approx(value), key
    # LAVIS selects on image-to-text only; this task on both directions
    assert lavis["agg_metrics"] == lavis["txt_r_mean"]


class _Loader:
    """A stand-in evaluation loader: the task reads only ``.dataset`` (and ``sampler``)."""

    def __init__(self):
        self.dataset = SimpleNamespace(
            txt2img=TXT2IMG, img2txt=IMG2TXT, image=list(range(4)), text=["t"] * 9
        )
        self.sampler = None


class _Model:
    """Returns fixed score sets and records the k_test it was asked for."""

    def __init__(self, scores):
        self.scores, self.k_test = scores, None

    def compute_sim_matrix(self, data_loader, task_cfg):
        self.k_test = task_cfg.k_test
        return self.scores


def _task(**run):
    cfg = SimpleNamespace(run_cfg=OmegaConf.create({"task": "image_text_retrieval", **run}))
    return ImageTextRetrievalTask.setup_task(cfg)


def test_selection_is_the_mean_recall_of_both_directions_and_k_test_is_capped(tmp_path):
    from lavis.common.registry import registry

    registry.mapping["paths"]["output_dir"] = str(tmp_path)
    rng = np.random.default_rng(2)
    sets = {name: (rng.normal(size=(4, 9)), rng.normal(size=(9, 4))) for name in ("a", "b")}
    model = _Model(sets)
    task = _task(k_test=256, score_sets=["a", "b"], select_on="b")
    metrics = task.evaluation(model, _Loader())
    assert model.k_test == 4  # min(k_test, images, texts): LAVIS's topk would fail
    expected_b = image_text_metrics(*sets["b"], TXT2IMG, IMG2TXT)
    expected_a = image_text_metrics(*sets["a"], TXT2IMG, IMG2TXT)
    assert metrics["agg_metrics"] == expected_b["r_mean"] == metrics["r_mean"]
    assert metrics["txt_r1"] == expected_b["txt_r1"]
    assert metrics["a_img_r5"] == expected_a["img_r5"]
    assert (tmp_path / "evaluate.txt").read_text().count("agg_metrics") == 1


def test_bad_task_configurations_are_named():
    with pytest.raises(ValueError, match="run.select_on='x' is not one of run.score_sets"):
        _task(score_sets=["itm_rerank", "itc"], select_on="x")
    model = _Model((np.zeros((4, 9)), np.zeros((9, 4))))
    with pytest.raises(ValueError, match="the model returns one score set, but run.score_sets"):
        _task(score_sets=["a", "b"]).evaluation(model, _Loader())
    with pytest.raises(KeyError, match=r"run.score_sets names \['c'\]"):
        _task(score_sets=["c"]).evaluation(_Model({"a": model.scores}), _Loader())


def test_a_sharded_gallery_is_refused():
    from torch.utils.data import DistributedSampler

    loader = _Loader()
    loader.sampler = DistributedSampler(list(range(4)), num_replicas=2, rank=0)
    with pytest.raises(ValueError, match="run.use_dist_eval_sampler: false"):
        _task().evaluation(_Model(None), loader)


def test_default_score_set_is_the_model_own():
    task = _task()
    assert task.score_sets == ["model"] and task.select_on == "model"
