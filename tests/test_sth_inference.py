"""The inference treatments of mmaction_ext.models.inference: BatchNorm folding and conv
prepacking keep every network's outputs (TSN, TSM, STH) up to float rounding, and STH
traced with either trace path equals STH run eagerly."""

import copy
import shutil

import mmaction_ext  # noqa: F401
from mmaction_ext.models import (
    PackedConv2d,
    STHConv,
    fold_batch_norms,
    keep_layout_in_temporal_shifts,
    prepack_convs,
    set_sth_trace_path,
)

import pytest
import torch
from mmaction.registry import MODELS

BACKBONES = {
    "TSN": dict(type="ResNet", depth=18, pretrained=None),
    "TSM": dict(type="ResNetTSM", depth=18, pretrained=None, pretrained2d=False, num_segments=4),
    "STH": dict(
        type="ResNetSTH", depth=18, pretrained=None, num_segments=4, temporal_init="random"
    ),
}


def eval_backbone(family):
    torch.manual_seed(0)
    backbone = MODELS.build(BACKBONES[family])
    backbone.init_weights()
    with torch.no_grad():  # non-trivial statistics, so that folding them is a real check
        for module in backbone.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.0)
                module.bias.normal_(0, 0.1)
    backbone.eval()
    return backbone


def assert_same_up_to_rounding(out, ref):
    assert (out - ref).abs().max() <= 1e-4 * ref.abs().max()


@pytest.mark.parametrize("family", BACKBONES)
def test_folding_and_prepacking_keep_the_outputs(family):
    backbone = eval_backbone(family)
    frames = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        ref = backbone(frames)
        treated = copy.deepcopy(backbone).to(memory_format=torch.channels_last)
        keep_layout_in_temporal_shifts(treated)
        assert fold_batch_norms(treated) == 20  # stem, 16 block convs, 3 downsamples
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in treated.modules())
        packed = prepack_convs(treated)
        out = treated(frames.contiguous(memory_format=torch.channels_last))
    # STH packs its own convs: only the stem, the downsamples and (R18) no 1x1 are left
    assert packed == (4 if family == "STH" else 20)
    assert_same_up_to_rounding(out, ref)


def test_packed_conv_equals_the_conv_and_follows_weight_changes():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=True)
    packed = PackedConv2d.from_conv(conv)
    x = torch.randn(2, 16, 9, 9).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(packed(x), conv(x), rtol=1e-5, atol=1e-5)
        conv.weight.mul_(2)  # shared parameters: the packed copy is rebuilt
        torch.testing.assert_close(packed(x), conv(x), rtol=1e-5, atol=1e-5)
    assert set(packed.state_dict()) == set(conv.state_dict())
    # with autograd it is the plain conv
    packed(x).sum().backward()
    assert conv.weight.grad is not None


@pytest.mark.parametrize("arrangement", ["grouped", "masked"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("max_chunk_bytes", [1, 2**24], ids=["clip by clip", "one chunk"])
def test_traced_sth_equals_eager_sth_on_both_trace_paths(arrangement, batch, max_chunk_bytes):
    torch.manual_seed(0)
    conv = STHConv(
        32,
        32,
        num_segments=4,
        temporal_init="random",
        arrangement=arrangement,
        max_chunk_bytes=max_chunk_bytes,
    )
    conv.eval()
    x = torch.randn(4 * batch, 32, 10, 10).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = conv(x)
        for path in ("counted", "fast"):
            set_sth_trace_path(conv, path)
            traced = torch.jit.freeze(torch.jit.trace(conv, x, check_trace=False))
            torch.testing.assert_close(traced(x), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arrangement", ["grouped", "masked"])
def test_fast_trace_path_keeps_gradients(arrangement):
    torch.manual_seed(0)
    conv = STHConv(
        32, 32, num_segments=4, temporal_init="random", arrangement=arrangement, max_chunk_bytes=1
    )
    x = torch.randn(8, 32, 6, 6).contiguous(memory_format=torch.channels_last)
    grads = []
    for path in ("counted", "fast"):
        set_sth_trace_path(conv, path)
        traced = torch.jit.trace(conv, x, check_trace=False)
        traced(x).square().sum().backward()
        grads.append([p.grad.clone() for p in conv.parameters()])
        conv.zero_grad()
    for counted, fast in zip(*grads, strict=True):
        torch.testing.assert_close(fast, counted, rtol=1e-4, atol=1e-4)


def test_bad_trace_path_is_named():
    with pytest.raises(ValueError, match="trace_path must be 'counted' or 'fast'"):
        STHConv(8, 8, trace_path="quick")
    with pytest.raises(ValueError, match="path must be 'counted' or 'fast'"):
        set_sth_trace_path(torch.nn.Identity(), "quick")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="TorchInductor's CPU code needs g++")
@pytest.mark.parametrize("arrangement", ["grouped", "masked"])
def test_compiled_sth_equals_eager_sth(arrangement):
    torch.manual_seed(0)
    conv = STHConv(
        32, 32, num_segments=4, temporal_init="random", arrangement=arrangement, max_chunk_bytes=1
    )
    conv.eval()
    x = torch.randn(8, 32, 6, 6).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        compiled = torch.compile(conv, options={"freezing": True})
        torch.testing.assert_close(compiled(x), conv(x), rtol=1e-5, atol=1e-5)


def test_folding_a_batchnorm_without_affine_parameters():
    from mmcv.cnn import ConvModule

    torch.manual_seed(0)
    module = ConvModule(3, 4, 3, padding=1, norm_cfg=dict(type="BN", affine=False)).eval()
    with torch.no_grad():
        module.norm.running_mean.normal_(0, 0.1)
        module.norm.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        ref = module(x)
        assert fold_batch_norms(module) == 1
        assert_same_up_to_rounding(module(x), ref)
