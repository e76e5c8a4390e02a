"""TeachCLIP's teachers: xclip_retrieval and xpool_retrieval as LAVIS models, their scoring
against the official formulas, masking, the teacher interface, official checkpoints and the
evaluation memory bound."""

import os
import subprocess
import sys
from pathlib import Path

import retrieval_ext  # noqa: F401
from retrieval_ext.models import RetrievalTeacher
from retrieval_ext.models.xclip import XCLIPInteraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lavis.common.registry import registry
from retrieval_helpers import TINY_CLIP, tiny_model_cfg

TWO_TEACHERS = [("xclip_retrieval", "seqTransf"), ("xpool_retrieval", "xpool")]
TEACHERS = [("xclip_retrieval", "meanP"), *TWO_TEACHERS]


def _teacher(arch="xclip_retrieval", model_type="seqTransf", **overrides):
    torch.manual_seed(0)
    cfg = tiny_model_cfg(model_type, arch=arch, **overrides)
    return registry.get_model_class(arch).from_config(cfg)


def _batch(batch=3, frames=4, masks=None):
    torch.manual_seed(1)
    video = torch.randn(batch, frames, 3, 32, 32)
    mask = torch.ones(batch, frames, dtype=torch.long) if masks is None else torch.tensor(masks)
    texts = ["a red square moves left", "a blue bar moves up", "a white circle moves down"]
    return {"video": video, "video_mask": mask, "text_input": texts[:batch]}


@pytest.mark.parametrize("arch,model_type", TEACHERS)
def test_teachers_are_registered_and_train(arch, model_type):
    model = _teacher(arch, model_type)
    assert isinstance(model, RetrievalTeacher)
    out = model(_batch())
    assert out.logits.shape == (3, 3) and torch.isfinite(out.loss)
    out.loss.backward()
    head = model.interaction if arch == "xclip_retrieval" else model.frame_pool
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


@pytest.mark.parametrize("arch,model_type", TEACHERS)
def test_a_padded_clip_scores_as_its_unpadded_self(arch, model_type):
    model = _teacher(arch, model_type).eval()
    short = _batch(frames=3)
    padded = {
        **short,
        "video": torch.cat([short["video"], torch.randn(3, 2, 3, 32, 32)], dim=1),
        "video_mask": torch.tensor([[1, 1, 1, 0, 0]] * 3),
    }
    with torch.no_grad():
        a, b = model.teach(short), model.teach(padded)
    assert torch.allclose(a.logits, b.logits, atol=1e-5)
    assert torch.allclose(a.frame_relevance, b.frame_relevance[:, :3], atol=1e-6)
    assert torch.all(b.frame_relevance[:, 3:] == 0)


def _official_xclip_scores(head, sentence, words, video, frames):
    """xuguohai/X-CLIP's _loose_similarity + _attenion_over_fine_grained_sim_matrix
    (without the logit scale), re-written from its formulas: every word and frame real."""
    t = head.attention_temperature

    def soft(x, dim):
        return torch.softmax(x / t, dim=dim)

    vs = sentence @ head.global_mat_weight @ video.t()
    sims = words @ video.t()  # [Nt, L, Nv]
    mixed = (soft(sims, 1).permute(0, 2, 1) @ head.word_logit_weight).permute(0, 2, 1)
    vw = torch.sum(sims * mixed, dim=1)
    sf_sims = sentence @ frames.permute(0, 2, 1)  # [Nv, Nt, F]
    sf = torch.sum(sf_sims * (soft(sf_sims, -1) @ head.frame_logit_weight), dim=-1).t()
    nt, nl, d = words.shape
    nv, nf, _ = frames.shape
    fine = words.reshape(-1, d) @ head.local_mat_weight @ frames.reshape(-1, d).t()
    fine = fine.view(nt, nl, nv, nf)
    mixed = (soft(fine, 1).permute(0, 2, 3, 1) @ head.word_mat_weight).permute(0, 3, 1, 2)
    word_level = torch.sum(mixed * fine, dim=1)
    frame_level = torch.sum((soft(fine, -1) @ head.frame_mat_weight) * fine, dim=-1)
    s2f = torch.sum((soft(word_level, -1) @ head.frame_mat_weight2) * word_level, dim=-1)
    mixed = (soft(frame_level, 1).permute(0, 2, 1) @ head.word_mat_weight2).permute(0, 2, 1)
    v2w = torch.sum(mixed * frame_level, dim=1)
    return (vs + vw + sf + (s2f + v2w) / 2) / 4


def test_xclip_without_padding_masks_scores_padding_as_the_official_code():
    torch.manual_seed(3)
    head = XCLIPInteraction(dim=16, max_words=5, max_frames=4, mask_padding=False)
    sentence = F.normalize(torch.randn(2, 16), dim=-1)
    words = F.normalize(torch.randn(2, 5, 16), dim=-1)
    video = F.normalize(torch.randn(3, 16), dim=-1)
    frames = F.normalize(torch.randn(3, 4, 16), dim=-1)
    word_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    frame_mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
    official = _official_xclip_scores(head, sentence, words, video, frames)
    assert torch.allclose(head(sentence, words, word_mask, video, frames, frame_mask), official)
    head.mask_padding = True
    masked = head(sentence, words, word_mask, video, frames, frame_mask)
    assert not torch.allclose(masked, official)


def test_xclip_interaction_matches_the_official_formulas():
    torch.manual_seed(2)
    head = XCLIPInteraction(dim=16, max_words=5, max_frames=4, attention_temperature=0.05)
    with torch.no_grad():  # trained matrices, not the identity
        for param in head.parameters():
            param.add_(0.1 * torch.randn_like(param))
    sentence = F.normalize(torch.randn(3, 16), dim=-1)
    words = F.normalize(torch.randn(3, 5, 16), dim=-1)
    video = F.normalize(torch.randn(2, 16), dim=-1)
    frames = F.normalize(torch.randn(2, 4, 16), dim=-1)
    ours = head(sentence, words, torch.ones(3, 5), video, frames, torch.ones(2, 4))
    official = _official_xclip_scores(head, sentence, words, video, frames)
    assert torch.allclose(ours, official, atol=1e-5)


def _loader(model, num_videos=5, frames=4):
    torch.manual_seed(4)
    videos = torch.randn(num_videos, frames, 3, 32, 32)
    masks = torch.ones(num_videos, frames, dtype=torch.long)
    masks[1, 2:] = 0

    class Dataset(list):
        text = [f"caption {i} of a moving square" for i in range(2 * num_videos)]

    batches = [
        {
            "video": videos[i : i + 2],
            "video_mask": masks[i : i + 2],
            "index": torch.arange(i, min(i + 2, num_videos)),
        }
        for i in range(0, num_videos, 2)
    ]

    class Loader(list):
        dataset = Dataset([None] * num_videos)

    return Loader(batches), videos, masks


@pytest.mark.parametrize("arch,model_type", TEACHERS)
def test_evaluation_scores_every_pair_as_training_does(arch, model_type):
    model = _teacher(arch, model_type, eval_text_batch=3, eval_video_batch=2).eval()
    loader, videos, masks = _loader(model)
    sim_v2t, sim_t2v = model.compute_sim_matrix(loader)
    assert sim_t2v.shape == (10, 5) and np.allclose(sim_v2t, sim_t2v.T)
    # training's scoring of (all texts) x (all videos) in one block, without the scale
    texts = loader.dataset.text
    with torch.no_grad():
        if arch == "xclip_retrieval":
            video, frames, frame_mask = model.video_side(videos, masks)
            expected = model.interaction(*model.text_side(texts), video, frames, frame_mask)
        else:
            sentences = model.encode_text(model.tokenize(texts))
            expected = model.frame_pool.similarity(sentences, model.encode_frames(videos), masks)
    assert np.allclose(sim_t2v, expected.numpy(), atol=1e-5)


@pytest.mark.parametrize("arch,model_type", TEACHERS)
def test_teacher_interface_gives_logits_and_frame_relevance(arch, model_type):
    model = _teacher(arch, model_type).eval()
    model.requires_grad_(False)
    samples = _batch(masks=[[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    out = model.teach(samples)
    assert out.logits.shape == (3, 3) and out.frame_relevance.shape == (3, 4)
    assert torch.allclose(out.logits, model(samples).logits, atol=1e-5)  # the same scoring
    assert torch.allclose(out.frame_relevance.sum(1), torch.ones(3), atol=1e-6)
    assert torch.all(out.frame_relevance[1, 2:] == 0) and out.frame_relevance[2, 0] == 1
    if arch == "xclip_retrieval":  # softmax over real frames of cos(sentence_i, frame_i)
        _, frames, _ = model.video_side(samples["video"], samples["video_mask"])
        sentence = model.text_side(samples["text_input"])[0]
        cos = torch.einsum("bd,bfd->bf", sentence, frames)[0]
        assert torch.allclose(out.frame_relevance[0], torch.softmax(cos, dim=0), atol=1e-6)
    with pytest.raises(ValueError, match=r"batch row\(s\) \[1\] have no real frame"):
        model.teach(_batch(masks=[[1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 0, 0]]))


def test_the_evaluation_memory_bound_is_stated_and_enforced():
    model = _teacher(eval_memory_limit_mb=0.01)
    loader, *_ = _loader(model)
    with pytest.raises(MemoryError, match="model.eval_memory_limit_mb is 0.*eval_video_batch"):
        model.compute_sim_matrix(loader)
    xpool = _teacher("xpool_retrieval", "xpool", eval_memory_limit_mb=0.01)
    with pytest.raises(MemoryError, match="XPoolRetrieval evaluation needs"):
        xpool.compute_sim_matrix(loader)


# ---------------------------------------------------------------- official checkpoints
def _to_official(arch, state):
    """Our state dict in the official code's names (the inverse of the converters)."""
    out = {}
    for key, value in state.items():
        if key.startswith("temporal.transformer."):
            key = "transformerClip." + key.removeprefix("temporal.transformer.")
        elif key == "temporal.frame_position_embeddings.weight":
            value = torch.cat([value, torch.randn(77 - value.shape[0], value.shape[1])])
            key = "frame_position_embeddings.weight"
        elif key.startswith("interaction."):
            key = key.removeprefix("interaction.")
        elif key.startswith("frame_pool."):
            key = "pool_frames." + key.removeprefix("frame_pool.")
        out[key] = value.clone()
    return out


@pytest.mark.parametrize(
    "arch,model_type", [("xclip_retrieval", "seqTransf"), ("xpool_retrieval", "xpool")]
)
def test_official_checkpoints_round_trip(arch, model_type, tmp_path):
    source = _teacher(arch, model_type)
    with torch.no_grad():
        for param in source.parameters():
            param.add_(torch.randn_like(param))
    official = _to_official(arch, source.state_dict())
    assert any(k.startswith(("global_mat_weight", "pool_frames.")) for k in official)
    path = tmp_path / "official.pth"
    torch.save(
        official if arch == "xclip_retrieval" else {"epoch": 3, "state_dict": official}, path
    )
    loaded = _teacher(arch, model_type, load_finetuned=True, finetuned=str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_a_checkpoint_of_another_layout_or_width_is_named(tmp_path):
    official = _to_official("xclip_retrieval", _teacher().state_dict())
    official["cross.pooler.dense.weight"] = torch.zeros(2, 2)
    torch.save(official, tmp_path / "tight.pth")
    with pytest.raises(KeyError, match="no place in XCLIPRetrieval.*cross.pooler.dense.weight"):
        _teacher(load_finetuned=True, finetuned=str(tmp_path / "tight.pth"))
    wide = _to_official("xclip_retrieval", _teacher(max_txt_len=24).state_dict())
    torch.save(wide, tmp_path / "wide.pth")
    with pytest.raises(RuntimeError, match="word_logit_weight"):
        _teacher(load_finetuned=True, finetuned=str(tmp_path / "wide.pth"))


# ---------------------------------------------------------------- DDP
TEACH_UNDER_DDP = """
import sys
sys.path[:0] = [{tests!r}, {repo!r}]
import retrieval_ext
import torch
import torch.distributed as dist
from lavis.common.registry import registry
from retrieval_helpers import TINY_CLIP, tiny_model_cfg

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
cfg = tiny_model_cfg({model_type!r}, arch={arch!r})
model = registry.get_model_class({arch!r}).from_config(cfg)
model.eval()
torch.manual_seed(1)
video = torch.randn(4, 4, 3, 32, 32)
mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0]])
texts = ["a red square", "a blue bar moves up", "two events", "a white circle"]
# every rank teaching all 4 gathers 8 (two copies): its first 4 x 4 is the whole batch
whole = model.teach(dict(video=video, video_mask=mask, text_input=texts))
assert whole.logits.shape == (8, 8)
part = slice(2 * rank, 2 * rank + 2)
mine = model.teach(dict(video=video[part], video_mask=mask[part], text_input=texts[part]))
assert mine.logits.shape == (4, 4), mine.logits.shape
assert torch.allclose(mine.logits, whole.logits[:4, :4], atol=1e-5)
assert torch.allclose(mine.frame_relevance, whole.frame_relevance[:4], atol=1e-6)
print(f"rank {{rank}} teaches the gathered batch", flush=True)
dist.destroy_process_group()
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "arch,model_type", [("xclip_retrieval", "seqTransf"), ("xpool_retrieval", "xpool")]
)
def test_teaching_under_ddp_covers_the_all_gathered_batch(arch, model_type, tmp_path):
    script = tmp_path / "teach.py"
    tests = Path(__file__).parent
    script.write_text(
        TEACH_UNDER_DDP.format(
            tests=str(tests), repo=str(tests.parent), arch=arch, model_type=model_type
        )
    )
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [*command, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "rank 1 teaches the gathered batch" in result.stdout


GRADIENTS_UNDER_DDP = """
import copy
import sys
sys.path[:0] = [{tests!r}, {repo!r}]
import retrieval_ext
import retrieval_ext.models.common as common
import torch
import torch.distributed as dist
from lavis.common.registry import registry
from retrieval_helpers import TINY_CLIP, tiny_model_cfg
from torch.nn.parallel import DistributedDataParallel

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
extra = {{"dropout": 0.0}} if {arch!r} == "xpool_retrieval" else {{}}
model = registry.get_model_class({arch!r}).from_config(
    tiny_model_cfg({model_type!r}, arch={arch!r}, **extra)
).train()
alone = copy.deepcopy(model)
torch.manual_seed(1)
video, mask = torch.randn(4, 4, 3, 32, 32), torch.ones(4, 4, dtype=torch.long)
mask[1, 2:] = 0
texts = ["a red square", "a blue bar moves up", "two events", "a white circle"]
part = slice(2 * rank, 2 * rank + 2)
ddp = DistributedDataParallel(model)  # kept: its hooks all-reduce the gradients
ddp_loss = ddp(dict(video=video[part], video_mask=mask[part], text_input=texts[part])).loss
ddp_loss.backward()
common.is_dist_avail_and_initialized = lambda: False  # the whole batch in one process
loss = alone(dict(video=video, video_mask=mask, text_input=texts)).loss
loss.backward()
assert torch.allclose(ddp_loss, loss, atol=1e-6), (ddp_loss.item(), loss.item())
pairs = list(zip(model.named_parameters(), alone.parameters()))
with_grad = [name for (name, p), q in pairs if p.grad is not None]
assert with_grad == [name for (name, p), q in pairs if q.grad is not None]
wrong = [
    name
    for (name, p), q in pairs
    if p.grad is not None and not torch.allclose(p.grad, q.grad, atol=1e-5, rtol=1e-4)
]
assert not wrong, wrong[:5]
print(f"rank {{rank}}: DDP gradients equal one process's", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "arch,model_type",
    [("clip4clip_retrieval", "seqTransf"), ("teachclip_retrieval", "seqTransf"), *TWO_TEACHERS],
)
def test_ddp_gradients_equal_one_process_on_the_whole_batch(arch, model_type, tmp_path):
    """2 gloo processes x 2 clips under DDP give every parameter the gradient one process
    computes on the 4 clips (one gather per step; with one gather per tensor, autograd ran
    the backward collectives in different orders on the two processes and X-CLIP's visual
    gradients came out wrong)."""
    script = tmp_path / "grads.py"
    tests = Path(__file__).parent
    script.write_text(
        GRADIENTS_UNDER_DDP.format(
            tests=str(tests), repo=str(tests.parent), arch=arch, model_type=model_type
        )
    )
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", str(script)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "rank 1: DDP gradients equal one process's" in result.stdout


def test_xpool_huggingface_checkpoints_convert_to_the_same_clip(tmp_path):
    """X-Pool's released checkpoints hold a Hugging Face CLIPModel (its --huggingface flag):
    converted to OpenAI's layout, our CLIP gives HF's image and text features."""
    from transformers import CLIPConfig, CLIPModel

    hf_config = CLIPConfig(
        text_config=dict(hidden_size=64, intermediate_size=256, num_attention_heads=2,
                         num_hidden_layers=2, max_position_embeddings=77, vocab_size=49408,
                         bos_token_id=49406, eos_token_id=49407),
        vision_config=dict(hidden_size=64, intermediate_size=256, num_attention_heads=1,
                           num_hidden_layers=1, image_size=32, patch_size=8),
        projection_dim=64,
    )  # fmt: skip
    torch.manual_seed(7)
    hf = CLIPModel(hf_config).eval()
    ours = _teacher("xpool_retrieval", "xpool", clip_config={**TINY_CLIP, "quick_gelu": True})
    state = {f"clip.{k}": v for k, v in hf.state_dict().items()}
    state.update({k.replace("frame_pool.", "pool_frames."): v for k, v in
                  ours.state_dict().items() if k.startswith("frame_pool.")})  # fmt: skip
    torch.save({"epoch": 1, "state_dict": state}, tmp_path / "xpool_hf.pth")
    loaded = _teacher(
        "xpool_retrieval", "xpool", clip_config={**TINY_CLIP, "quick_gelu": True},
        load_finetuned=True, finetuned=str(tmp_path / "xpool_hf.pth"),
    ).eval()  # fmt: skip
    pixels = torch.randn(2, 3, 32, 32)
    tokens = loaded.tokenize(["a red square moves left", "a blue bar"])
    with torch.no_grad():
        assert torch.allclose(
            loaded.clip.encode_image(pixels), hf.get_image_features(pixel_values=pixels),
            atol=1e-4,
        )  # fmt: skip
        hf_text = hf.get_text_features(input_ids=tokens, attention_mask=(tokens != 0).long())
        assert torch.allclose(loaded.encode_text(tokens), hf_text, atol=1e-4)
    assert loaded.clip.logit_scale.item() == pytest.approx(hf.logit_scale.item())
