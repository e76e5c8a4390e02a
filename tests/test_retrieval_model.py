"""CLIP4Clip, the text_video_retrieval task, the LR schedule and the LAVIS fixes, in-process."""

import retrieval_ext  # noqa: F401
from retrieval_ext.models.clip4clip import CLIP4ClipOutput, load_openai_clip
from retrieval_ext.tasks.text_video_retrieval import retrieval_metrics

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from lavis.common.registry import registry
from lavis.models.clip_models.model import CLIP
from omegaconf import OmegaConf
from retrieval_helpers import TINY_CLIP, tiny_model_cfg, write_tiny_embedded, write_tiny_finegrained

from plugins.compat import lavis_lookup


def _model(model_type="meanP", **overrides):
    torch.manual_seed(0)
    return registry.get_model_class("clip4clip_retrieval").from_config(
        tiny_model_cfg(model_type, **overrides)
    )


def _batch(batch=3, frames=4, valid=None):
    torch.manual_seed(1)
    video = torch.randn(batch, frames, 3, 32, 32)
    mask = torch.ones(batch, frames, dtype=torch.long)
    if valid is not None:
        mask[:, valid:] = 0
    texts = ["a red square moves left", "a blue bar moves up", "a white circle moves down"]
    return {"video": video, "video_mask": mask, "text_input": texts[:batch]}


@pytest.mark.parametrize("model_type", ["meanP", "seqTransf"])
def test_forward_returns_the_loss_and_its_parts_and_trains(model_type):
    model = _model(model_type)
    out = model(_batch())
    assert isinstance(out, CLIP4ClipOutput) and out["loss"] is out.loss
    assert torch.allclose(out.loss, (out.loss_t2v + out.loss_v2t) / 2)
    assert out.logits.shape == (3, 3)
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_mean_pooling_ignores_frame_order_and_the_temporal_transformer_does_not():
    samples = _batch(batch=2, frames=4)
    reversed_video = samples["video"].flip(1)
    for model_type, order_blind in (("meanP", True), ("seqTransf", False)):
        model = _model(model_type).eval()
        with torch.no_grad():
            forward = model.extract_video_features(samples["video"], samples["video_mask"])
            backward = model.extract_video_features(reversed_video, samples["video_mask"])
        assert torch.allclose(forward, backward, atol=1e-5) is order_blind, model_type


@pytest.mark.parametrize("model_type", ["meanP", "seqTransf"])
def test_padded_frames_do_not_change_the_video_vector(model_type):
    model = _model(model_type).eval()
    samples = _batch(batch=2, frames=6, valid=3)
    changed = samples["video"].clone()
    changed[:, 3:] = torch.randn_like(changed[:, 3:]) * 5
    with torch.no_grad():
        a = model.extract_video_features(samples["video"], samples["video_mask"])
        b = model.extract_video_features(changed, samples["video_mask"])
    assert torch.allclose(a, b, atol=1e-5)


def test_seq_transformer_starts_from_the_clip_text_layers():
    model = _model("seqTransf")
    text_block = model.clip.transformer.resblocks[0].state_dict()
    temporal_block = model.temporal.transformer.resblocks[0].state_dict()
    assert all(torch.equal(text_block[k], temporal_block[k]) for k in text_block)
    table = model.temporal.frame_position_embeddings.weight
    assert torch.equal(table, model.clip.positional_embedding[: table.shape[0]])


def test_tokenize_truncates_and_keeps_the_end_token():
    model = _model(max_txt_len=6)
    tokens = model.tokenize(["one two three four five six seven", "hi"])
    assert tokens.shape == (2, 6)
    assert tokens[0].argmax() == 5 and tokens[1].argmax() == 2  # end token position


def test_parameter_groups_scale_the_clip_learning_rate():
    groups = _model("seqTransf", lr_scale_clip=1e-3).get_optimizer_params(weight_decay=0.2)
    by_name = {g["name"]: g for g in groups}
    assert by_name["clip/decay"]["lr_scale"] == 1e-3 and by_name["new/decay"]["lr_scale"] == 1.0
    assert by_name["clip/no_decay"]["weight_decay"] == 0.0
    assert by_name["clip/decay"]["weight_decay"] == 0.2


def _openai_like_clip():
    """A tiny CLIP shaped as OpenAI's releases are: QuickGELU, 64 channels per head."""
    text_cfg = {**TINY_CLIP["text_cfg"], "heads": 1}
    return CLIP(**{**TINY_CLIP, "text_cfg": text_cfg, "quick_gelu": True})


def test_openai_format_weights_load_from_a_file_or_folder(tmp_path):
    torch.manual_seed(3)
    source = _openai_like_clip()
    torch.save(source.state_dict(), tmp_path / "ViT-T-8.pt")  # OpenAI's key names
    for pretrained in (tmp_path / "ViT-T-8.pt", tmp_path):
        model = registry.get_model_class("clip4clip_retrieval").from_config(
            OmegaConf.create(
                {
                    "model_type": "meanP",
                    "pretrained": str(pretrained),
                    "clip_model_type": "ViT-T-8",
                    "max_txt_len": 16,
                }
            )
        )
        for key, value in source.state_dict().items():
            assert torch.equal(model.clip.state_dict()[key], value), key
    with pytest.raises(FileNotFoundError, match="CLIP weights not found: .*ViT-B-32.pt"):
        load_openai_clip(tmp_path, "ViT-B-32")


@pytest.mark.filterwarnings("ignore")  # torch.jit deprecation and tracer notes
def test_openai_torchscript_release_files_load_without_unpickling(tmp_path):
    torch.manual_seed(4)
    source = _openai_like_clip().eval()

    class Release(torch.nn.Module):  # OpenAI's archive: CLIP's tensors under the same names
        def __init__(self):
            super().__init__()
            for name, child in source.named_children():
                self.add_module(name, child)
            for name, param in source.named_parameters(recurse=False):
                self.register_parameter(name, param)

        def forward(self, image):
            return self.visual(image) @ self.text_projection.t()

    traced = torch.jit.trace(Release(), torch.randn(1, 3, 32, 32))
    torch.jit.save(traced, str(tmp_path / "ViT-T-8.pt"))
    clip = load_openai_clip(tmp_path / "ViT-T-8.pt")
    for key, value in source.state_dict().items():
        assert torch.equal(clip.state_dict()[key], value), key


# Hand-worked: videos 0, 1, 2 with captions {0: [t0, t1], 1: [t2, t5], 2: [t3, t4]}.
HAND_SIM = np.array(
    [
        [0.95, 0.90, 0.50],  # t0 (video 0): rank 0
        [0.85, 0.80, 0.10],  # t1 (video 0): rank 0
        [0.70, 0.60, 0.30],  # t2 (video 1): rank 1
        [0.40, 0.30, 0.35],  # t3 (video 2): rank 1
        [0.10, 0.20, 0.95],  # t4 (video 2): rank 0
        [0.30, 0.10, 0.20],  # t5 (video 1): rank 2
    ]
)
HAND_VIDEO2TXT = {0: [0, 1], 1: [2, 5], 2: [3, 4]}
HAND_TXT2VIDEO = {t: v for v, ts in HAND_VIDEO2TXT.items() for t in ts}


def test_metrics_on_a_hand_worked_matrix_under_both_conventions():
    c4c = retrieval_metrics(HAND_SIM, HAND_TXT2VIDEO, HAND_VIDEO2TXT)  # the default
    lavis = retrieval_metrics(HAND_SIM, HAND_TXT2VIDEO, HAND_VIDEO2TXT, convention="lavis")
    # text-to-video ranks [0, 0, 1, 1, 0, 2]: the same ranks in both conventions, but
    # CLIP4Clip's several-caption median is the lower middle (0 -> 1), np.median's 0.5 -> 1.5
    for metrics in (c4c, lavis):
        assert metrics["t2v_r1"] == pytest.approx(50.0)
        assert metrics["t2v_r5"] == 100.0
        assert metrics["t2v_meanr"] == pytest.approx(1 + 4 / 6)
    assert c4c["t2v_medr"] == 1.0
    assert lavis["t2v_medr"] == 1.5
    # video 1 against the captions: t0 (0.90) and t1 (0.80) of video 0 beat its best, t2
    # (0.60). CLIP4Clip ranks videos (video 0 once: rank 1); LAVIS ranks captions (rank 2)
    assert c4c["v2t_meanr"] == pytest.approx(1 + 1 / 3)
    assert lavis["v2t_meanr"] == pytest.approx(1 + 2 / 3)
    assert c4c["v2t_r1"] == lavis["v2t_r1"] == pytest.approx(200 / 3)
    assert c4c["v2t_r5"] == lavis["v2t_r5"] == 100.0
    with pytest.raises(ValueError, match="metrics convention must be one of"):
        retrieval_metrics(HAND_SIM, HAND_TXT2VIDEO, HAND_VIDEO2TXT, convention="coco")


def _official_clip4clip_metrics(sim_t2v, video2txt):
    """CLIP4Clip's metrics.py path for several captions per video, re-implemented from its
    description: the [texts, videos] matrix reshaped to [videos, max captions, videos]
    padded with -inf, a double argsort for text-to-video (torch.median of ranks + 1), and
    the max over each video's captions ranked by sorting for video-to-text."""
    most = max(len(t) for t in video2txt.values())
    stacked = np.full((len(video2txt), most, sim_t2v.shape[1]), -np.inf)
    for video, texts in video2txt.items():
        stacked[video, : len(texts)] = sim_t2v[texts]
    sim = torch.tensor(stacked).permute(1, 0, 2)  # [captions, videos, videos]
    second = torch.argsort(torch.argsort(sim, dim=-1, descending=True), dim=-1)
    ranks = torch.diagonal(second, dim1=1, dim2=2).flatten()
    valid = ~torch.isinf(torch.diagonal(torch.tensor(stacked), dim1=0, dim2=2).flatten())
    t2v = ranks[valid].numpy()
    grouped = torch.tensor(stacked).max(dim=1).values.T.numpy()  # [videos, video groups]
    order = np.argsort(-grouped, axis=1, kind="stable")
    v2t = np.array([np.where(order[v] == v)[0][0] for v in range(len(order))])
    return t2v, float(torch.median(torch.tensor(t2v) + 1)), v2t


def test_metrics_match_clip4clip_on_random_matrices_with_uneven_caption_counts():
    rng = np.random.default_rng(0)
    for trial in range(20):
        counts = rng.integers(1, 5, size=30)
        video2txt, start = {}, 0
        for video, count in enumerate(counts):
            video2txt[video] = list(range(start, start + count))
            start += count
        txt2video = {t: v for v, ts in video2txt.items() for t in ts}
        sim = rng.normal(size=(start, 30))
        sim[np.arange(start), [txt2video[t] for t in range(start)]] += 1.0
        metrics = retrieval_metrics(sim, txt2video, video2txt)
        t2v, t2v_medr, v2t = _official_clip4clip_metrics(sim, video2txt)
        for prefix, ranks in (("t2v", t2v), ("v2t", v2t)):
            for k in (1, 5, 10, 50):
                assert metrics[f"{prefix}_r{k}"] == pytest.approx(100 * np.mean(ranks < k))
            assert metrics[f"{prefix}_meanr"] == pytest.approx(np.mean(ranks) + 1)
        assert metrics["t2v_medr"] == t2v_medr, trial
        assert metrics["v2t_medr"] == np.median(v2t) + 1
    # one caption per video: CLIP4Clip's compute_metrics, np.median (a half rank possible)
    two = retrieval_metrics(np.array([[1.0, 0.0], [1.0, 0.5]]), {0: 0, 1: 1}, {0: [0], 1: [1]})
    assert two["t2v_medr"] == 1.5
    with pytest.raises(ValueError, match="6 texts x 3 videos"):
        retrieval_metrics(HAND_SIM, HAND_TXT2VIDEO, {0: [0]})


def test_task_resolves_through_lavis_and_selects_on_text_to_video():
    from types import SimpleNamespace

    from lavis.tasks import setup_task

    cfg = SimpleNamespace(run_cfg=OmegaConf.create({"task": "text_video_retrieval"}))
    task = setup_task(cfg)
    assert task.select_on == "t2v"

    class Loader:  # what the runner hands the task: a loader whose dataset has the maps
        dataset = SimpleNamespace(txt2video={0: 0, 1: 1}, video2txt={0: [0], 1: [1]})

    class Scores:
        @staticmethod
        def compute_sim_matrix(data_loader, task_cfg):
            sim_t2v = np.array([[0.9, 0.1], [0.8, 0.2]])  # text 1 misses, video 1 hits
            return sim_t2v.T, sim_t2v

    metrics = task.evaluation(Scores(), Loader())
    assert metrics["agg_metrics"] == metrics["t2v_sum_r"] != metrics["v2t_sum_r"]

    class HandLoader:
        dataset = SimpleNamespace(txt2video=HAND_TXT2VIDEO, video2txt=HAND_VIDEO2TXT)

    class HandScores:
        @staticmethod
        def compute_sim_matrix(data_loader, task_cfg):
            return HAND_SIM.T, HAND_SIM

    assert task.evaluation(HandScores(), HandLoader())["v2t_meanr"] == pytest.approx(4 / 3)
    lavis_task = setup_task(
        SimpleNamespace(
            run_cfg=OmegaConf.create(
                {"task": "text_video_retrieval", "metrics_convention": "lavis"}
            )
        )
    )
    lavis_metrics = lavis_task.evaluation(HandScores(), HandLoader())
    assert lavis_metrics["v2t_meanr"] == pytest.approx(5 / 3)
    with pytest.raises(ValueError, match="select_on"):
        setup_task(
            SimpleNamespace(
                run_cfg=OmegaConf.create({"task": "text_video_retrieval", "select_on": "img"})
            )
        )


def test_group_schedule_scales_groups_where_lavis_overwrites_them():
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in range(2)]
    groups = [{"params": [params[0]], "lr_scale": 1.0}, {"params": [params[1]], "lr_scale": 1e-3}]

    def optimizer():
        return torch.optim.AdamW([dict(g) for g in groups], lr=1e-4)

    lavis_sched = registry.get_lr_scheduler_class("linear_warmup_cosine_lr")
    opt = optimizer()
    lavis_sched(opt, max_epoch=4, min_lr=0, init_lr=1e-4).step(cur_epoch=1, cur_step=0)
    assert opt.param_groups[0]["lr"] == opt.param_groups[1]["lr"]  # the defect
    ours = registry.get_lr_scheduler_class("linear_warmup_cosine_group_lr")
    opt = optimizer()
    sched = ours(opt, max_epoch=4, min_lr=0, init_lr=1e-4, warmup_steps=5, iters_per_epoch=10)
    seen = []
    for epoch in range(4):
        for step in range(10):
            base = sched.step(cur_epoch=epoch, cur_step=step)
            assert opt.param_groups[1]["lr"] == pytest.approx(base * 1e-3)
            seen.append(base)
    assert seen[0] == pytest.approx(1e-4) and max(seen) == pytest.approx(1e-4)  # warm-up
    assert seen[5] == pytest.approx(1e-4) and seen[-1] < 1e-6  # cosine to min_lr
    assert all(a >= b for a, b in zip(seen[5:], seen[6:], strict=False))


def test_unknown_registry_names_are_clear_errors():
    assert registry.get_model_class("clip4clip_retrieval_typo") is None  # LAVIS's silent miss
    with pytest.raises(
        KeyError, match="no LAVIS model named 'clip4clip_retrieval_typo'.*clip4clip_retrieval"
    ):
        lavis_lookup("model", "clip4clip_retrieval_typo")
    with pytest.raises(KeyError, match="unknown model_type 'meanp'"):
        registry.get_model_class("clip4clip_retrieval").default_config_path("meanp")


def test_lavis_config_merges_the_model_defaults_of_the_model_type(tmp_path):
    from types import SimpleNamespace

    from lavis.common.config import Config

    from plugins.paths import CONFIG_DIR

    cfg = Config(
        SimpleNamespace(
            cfg_path=str(CONFIG_DIR / "lavis" / "clip4clip" / "embedded_meanP.yaml"),
            options=["model.model_type=seqTransf", "run.max_epoch=1"],
        )
    )
    assert cfg.model_cfg.model_type == "seqTransf" and cfg.run_cfg.max_epoch == 1
    assert cfg.model_cfg.logit_scale_max == 100.0  # from retrieval_ext's default yaml
    assert cfg.datasets_cfg.embedded_text_video.data_type == "videos"


def test_check_registry_names_names_the_bad_entry(tmp_path):
    from retrieval_ext.launch import check_registry_names

    from plugins.paths import CONFIG_DIR

    path = CONFIG_DIR / "lavis" / "clip4clip" / "embedded_meanP.yaml"
    check_registry_names(str(path))
    with pytest.raises(KeyError, match="no LAVIS runner named 'runner_gpu'"):
        check_registry_names(str(path), ["run.runner=runner_gpu"])
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text().replace("embedded_text_video:", "embedded_text_vid:"))
    with pytest.raises(KeyError, match="no LAVIS builder named 'embedded_text_vid'"):
        check_registry_names(str(bad))


def _shipped_configs():
    from plugins.paths import CONFIG_DIR

    # the text-video configs: CLIP4Clip and TeachCLIP's
    return sorted(
        [*(CONFIG_DIR / "lavis" / "clip4clip").glob("*.yaml")]
        + [*(CONFIG_DIR / "lavis" / "teachclip").glob("*.yaml")]
    )


def _tiny_teacher(cfg_path, tmp_path):
    """``(config, checkpoint)`` of a tiny random teacher built from a shipped teacher
    config's model section (frames and words kept)."""
    model_cfg = OmegaConf.load(cfg_path).model
    model_cfg.pretrained, model_cfg.clip_config = "", TINY_CLIP
    model_cfg.init_temporal_from_text = False
    teacher = registry.get_model_class(model_cfg.arch).from_config(model_cfg)
    config, checkpoint = tmp_path / f"teacher-{cfg_path.name}", tmp_path / f"{cfg_path.stem}.pth"
    OmegaConf.save(OmegaConf.create({"model": model_cfg}), config)
    torch.save({"model": teacher.state_dict()}, checkpoint)
    return str(config), str(checkpoint)


@pytest.mark.parametrize("path", _shipped_configs(), ids=lambda p: p.name)
def test_every_shipped_config_builds_trains_a_step_and_evaluates(path, tmp_path, monkeypatch):
    """Each shipped config through LAVIS's Config and our launch path, with only what tiny
    data needs changed (paths, a tiny random CLIP, 32-pixel frames, CPU, batch 2): its
    optimiser, schedule, clipping, sampling and task keys all run."""
    from types import SimpleNamespace

    from retrieval_ext.launch import build

    from lavis.common.config import Config

    # as LAVIS merges it: the builder's and the model's default configs under the file's
    config = Config(SimpleNamespace(cfg_path=str(path), options=[])).config
    assert config.run.task == "text_video_retrieval" and config.run.runner == "runner_portable"
    assert config.model.model_type in ("meanP", "seqTransf", "xpool") and "seed" in config.run
    assert config.model.get("pretrained") != "openai"  # LAVIS's downloading path is never used
    (name,) = config.datasets
    info = config.datasets[name].build_info
    assert {"train", "val", "test"} <= set(info.annotations) and info.videos.storage
    assert all("url" not in split for split in info.annotations.values())

    finegrained = "finegrained" in path.name  # its data: the caption in k of the frames
    write = write_tiny_finegrained if finegrained else write_tiny_embedded
    data = write(tmp_path / "data", train=2, val=1, test=2)
    for split in ("train", "val", "test"):
        info.annotations[split].storage = str(data / "annotations" / f"{split}.json")
    info.videos.storage = str(data / "videos")
    for processor in config.datasets[name].vis_processor.values():
        processor.image_size = 32
    config.model.pretrained = ""
    config.model.clip_config = TINY_CLIP
    config.model.init_temporal_from_text = False
    config.run.update(
        device="cpu", distributed=False, num_workers=0, batch_size_train=2, batch_size_eval=2,
        output_dir=str(tmp_path / "out"), job_id="job",
    )  # fmt: skip
    for spec in (config.model.get("teachers") or {}).values():
        if spec is not None:  # TeachCLIP: tiny teachers from the teachers' own configs
            spec.cfg_path, spec.checkpoint = _tiny_teacher(REPO_ROOT / spec.cfg_path, tmp_path)
    tiny = tmp_path / path.name
    OmegaConf.save(config, tiny)
    monkeypatch.chdir(tmp_path)
    cfg, task, model, datasets, runner = build(str(tiny))
    samples = next(runner.train_loader)
    assert samples["video"].shape[:2] == (2, config.datasets[name].vis_processor.train.n_frms)
    runner.lr_scheduler.step(cur_epoch=0, cur_step=1)
    before = [p.detach().clone() for p in model.parameters()]
    loss = runner.model(samples).loss
    loss.backward()
    runner.optimizer.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    metrics = task.evaluation(model.eval(), runner.dataloaders["test"])
    assert metrics["agg_metrics"] == metrics["t2v_sum_r"]
    if finegrained:  # the frame-weight metrics of every model that weighs frames
        assert metrics["content_share_chance"] == pytest.approx(100 / 8)
        assert ("afa_content_share" in metrics) == (config.model.get("afa", False) is True)
        teaches = hasattr(model, "teach") or bool(config.model.get("teachers"))
        assert any(key.startswith("teacher") for key in metrics) == teaches


def test_video_encoding_refuses_a_loader_that_misses_gallery_rows():
    """A sharded evaluation loader (one rank's share) must not leave rows unencoded."""
    model = _model().eval()
    batch = _batch(batch=2)
    shard = [
        {"video": batch["video"], "video_mask": batch["video_mask"], "index": torch.tensor([0, 2])}
    ]

    class Loader(list):
        dataset = [None] * 4

    with pytest.raises(RuntimeError, match="2 of 4 evaluation videos were never encoded"):
        model.encode_video_loader(Loader(shard))
    full = Loader(shard + [{**shard[0], "index": torch.tensor([1, 3])}])
    assert torch.isfinite(model.encode_video_loader(full)).all()


SHARDED_ENCODING = """
import sys
sys.path[:0] = [{tests!r}, {repo!r}]
import retrieval_ext
import torch
import torch.distributed as dist
from lavis.common.registry import registry
from retrieval_helpers import tiny_model_cfg
from torch.utils.data import DataLoader, Dataset, DistributedSampler

dist.init_process_group("gloo")
torch.manual_seed(0)
model = registry.get_model_class("clip4clip_retrieval").from_config(tiny_model_cfg("seqTransf"))
model.eval()


class Videos(Dataset):
    def __init__(self):
        self.videos = torch.randn(5, 4, 3, 32, 32, generator=torch.Generator().manual_seed(1))

    def __len__(self):
        return len(self.videos)

    def __getitem__(self, i):
        return dict(video=self.videos[i], video_mask=torch.ones(4, dtype=torch.long), index=i)


data = Videos()
whole = model.encode_video_loader(DataLoader(data, batch_size=2))
shards = DataLoader(data, batch_size=2, sampler=DistributedSampler(data, shuffle=False))
gathered = model.encode_video_loader(shards)
encoded = sorted(int(i) for batch in shards for i in batch["index"])
gap = (whole - gathered).abs().max().item()
print(f"rank {{dist.get_rank()}} encoded {{encoded}} gap {{gap:.1e}}", flush=True)
assert torch.allclose(whole, gathered, atol=1e-6)
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_sharded_evaluation_encoding_gathers_the_whole_gallery(tmp_path):
    """2 gloo processes, each encoding its DistributedSampler shard of 5 videos (one
    repeated to even the shards), return the features one process computes alone."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "sharded.py"
    tests = Path(__file__).parent
    script.write_text(SHARDED_ENCODING.format(tests=str(tests), repo=str(tests.parent)))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", str(script)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "rank 0 encoded [0, 2, 4]" in result.stdout
    assert "rank 1 encoded [0, 1, 3]" in result.stdout


def test_the_train_and_evaluate_command_line_names_a_missing_config(tmp_path, capsys):
    from retrieval_ext.launch import main

    with pytest.raises(SystemExit):
        main(["--cfg-path", str(tmp_path / "absent.yaml")], evaluate=True)
    assert f"--cfg-path {tmp_path / 'absent.yaml'}: no such config file" in capsys.readouterr().err
