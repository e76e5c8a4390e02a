"""STHConv against the masked dense Conv3d reference: spatial (output, input) group pairs keep
only the centre temporal slice, temporal pairs only the centre pixel."""

import itertools

import mmaction_ext  # noqa: F401
from mmaction_ext.models import STHConv

import pytest
import torch
import torch.nn.functional as F


def reference_mask(c_out, c_in, G, tG, interleave, kt, k):
    """The spec's mask, written from the spec alone: spatial (out, in) pairs keep only the
    centre temporal slice, temporal pairs only the centre pixel."""
    mask = torch.zeros(c_out, c_in, kt, k, k)
    og, ig = c_out // G, c_in // G
    for g in range(G):
        temporal = {(g + j) % G for j in range(tG)} if interleave else set(range(tG))
        for i in range(G):
            block = mask[g * og : (g + 1) * og, i * ig : (i + 1) * ig]
            if i in temporal:
                block[:, :, :, k // 2, k // 2] = 1
            else:
                block[:, :, kt // 2] = 1
    return mask


def reference_forward(x, dense, T, stride, padding, dilation, kt):
    nt, c, h, w = x.shape
    x3 = x.view(nt // T, T, c, h, w).transpose(1, 2)
    y3 = F.conv3d(
        x3,
        dense,
        stride=(1, stride, stride),
        padding=(kt // 2, padding, padding),
        dilation=(1, dilation, dilation),
    )
    return y3.transpose(1, 2).reshape(nt, dense.shape[0], *y3.shape[-2:])


CASES = [
    # c_in, c_out, k, stride, padding, dilation, G, tG, interleave, kt, T
    (8, 8, 3, 1, 1, 1, 4, 1, True, 3, 4),
    (8, 12, 3, 2, 1, 1, 4, 1, True, 3, 4),
    (16, 8, 3, 1, 2, 2, 4, 2, True, 3, 2),
    (12, 12, 3, 1, 1, 1, 3, 1, False, 3, 3),
    (8, 8, 5, 2, 2, 1, 2, 1, True, 5, 4),
    (8, 8, 3, 1, 0, 1, 4, 3, True, 3, 4),  # valid padding: crops to the centre taps
    (8, 16, 3, 2, 1, 1, 4, 2, False, 5, 2),
    (8, 8, 3, 1, 1, 1, 4, 0, True, 3, 4),  # the 2D conv
    (8, 8, 3, 2, 1, 1, 4, 4, True, 3, 4),  # temporal only
    (8, 8, 3, 1, 1, 1, 4, 4, False, 3, 2),
]


@pytest.mark.parametrize("arrangement", ["grouped", "masked"])
@pytest.mark.parametrize(
    ("c_in", "c_out", "k", "stride", "padding", "dilation", "G", "tG", "interleave", "kt", "T"),
    CASES,
)
def test_forward_and_backward_equal_the_masked_dense_conv3d(
    c_in, c_out, k, stride, padding, dilation, G, tG, interleave, kt, T, arrangement
):
    torch.manual_seed(0)
    conv = STHConv(
        c_in,
        c_out,
        k,
        stride,
        padding,
        dilation,
        bias=True,
        num_segments=T,
        num_groups=G,
        temporal_groups=tG,
        interleave=interleave,
        temporal_kernel=kt,
        temporal_init="random",
        arrangement=arrangement,
    ).double()
    dense = conv.dense_equivalent_weight().detach()
    mask = reference_mask(c_out, c_in, G, tG, interleave, kt, k).double()
    # the block's weights sit only where the spec's mask allows
    assert torch.all(dense[mask == 0] == 0)
    assert torch.count_nonzero(dense) == sum(
        p.numel() for n, p in conv.named_parameters() if n.endswith("weight")
    )
    bias = next(p for n, p in conv.named_parameters() if n.endswith("bias"))
    assert bias.numel() in (c_out, c_out // G)

    x = torch.randn(2 * T, c_in, 9, 11, dtype=torch.double, requires_grad=True)
    dense_param = dense.clone().requires_grad_(True)
    full_bias = torch.cat([p for n, p in conv.named_parameters() if n.endswith("bias")]).detach()
    ref = reference_forward(x, dense_param * mask, T, stride, padding, dilation, kt)
    ref = ref + full_bias.view(1, -1, 1, 1)
    out = conv(x)
    torch.testing.assert_close(out, ref)

    grad = torch.randn_like(out)
    (gx,) = torch.autograd.grad(out, x, grad, retain_graph=True)
    (gx_ref, gw_ref) = torch.autograd.grad(ref, (x, dense_param), grad)
    torch.testing.assert_close(gx, gx_ref)
    # weight gradients: the block's gradients, laid out densely, equal the reference's
    grads = torch.autograd.grad(
        out, [p for n, p in conv.named_parameters() if n.endswith("weight")], grad
    )
    with torch.no_grad():
        saved = [p.clone() for n, p in conv.named_parameters() if n.endswith("weight")]
        for (_n, p), g in zip(
            [(n, p) for n, p in conv.named_parameters() if n.endswith("weight")], grads, strict=True
        ):
            p.copy_(g)
        torch.testing.assert_close(conv.dense_equivalent_weight(), gw_ref * mask)
        for (_n, p), s in zip(
            [(n, p) for n, p in conv.named_parameters() if n.endswith("weight")], saved, strict=True
        ):
            p.copy_(s)


@pytest.mark.parametrize(
    ("c_in", "c_out", "k", "G", "tG", "kt"),
    [(64, 64, 3, 4, 1, 3), (64, 128, 3, 4, 2, 3), (32, 32, 5, 8, 3, 5)],
)
def test_parameter_count_is_the_formula(c_in, c_out, k, G, tG, kt):
    for interleave, bias in itertools.product((True, False), (False, True)):
        conv = STHConv(
            c_in,
            c_out,
            k,
            bias=bias,
            num_groups=G,
            temporal_groups=tG,
            interleave=interleave,
            temporal_kernel=kt,
        )
        r = tG / G
        expected = c_out * c_in * (k * k * (1 - r) + kt * r) + (c_out if bias else 0)
        assert sum(p.numel() for p in conv.parameters()) == expected


def test_flops_counted_by_mmengine_follow_the_formula():
    from mmengine.analysis import FlopAnalyzer

    c, T, h = 64, 4, 14
    r = 1 / 4
    conv = STHConv(c, c, 3, num_segments=T, num_groups=4, temporal_groups=1)
    flops = FlopAnalyzer(conv, (torch.randn(T, c, h, h),)).unsupported_ops_warnings(False)
    flops = flops.uncalled_modules_warnings(False).total()
    per_output = c * (9 * (1 - r) + 3 * r)  # multiply-adds per output element
    assert flops == T * c * h * h * per_output
    dense = FlopAnalyzer(
        torch.nn.Conv2d(c, c, 3, padding=1, bias=False), (torch.randn(T, c, h, h),)
    ).total()
    assert flops < dense


def test_static_init_from_2d_keeps_spatial_weights_and_sums_temporal_taps():
    torch.manual_seed(0)
    w2d = torch.randn(8, 8, 3, 3)
    conv = STHConv(8, 8, num_groups=4, temporal_groups=1, num_segments=2)
    conv.load_2d_weight(w2d)
    dense = conv.dense_equivalent_weight()
    mask = reference_mask(8, 8, 4, 1, True, 3, 3)
    spatial_pairs = mask[:, :, 1].sum(dim=(2, 3)) == 9  # [out, in]
    torch.testing.assert_close(dense[:, :, 1][spatial_pairs], w2d[spatial_pairs])
    temporal = dense[:, :, :, 1, 1][~spatial_pairs]  # [pairs, kt]
    torch.testing.assert_close(temporal[:, 1], w2d.sum(dim=(2, 3))[~spatial_pairs])
    assert torch.all(temporal[:, [0, 2]] == 0)
    # on a static, spatially constant clip the block reproduces the 2D conv's centre output
    x = torch.ones(2, 8, 5, 5)
    torch.testing.assert_close(conv(x)[:, :, 2, 2], F.conv2d(x, w2d, padding=1)[:, :, 2, 2])


def test_temporal_groups_zero_is_exactly_the_2d_conv():
    w2d, bias = torch.randn(8, 4, 3, 3), torch.randn(8)
    conv = STHConv(4, 8, stride=2, bias=True, num_groups=4, temporal_groups=0, num_segments=2)
    conv.load_2d_weight(w2d, bias)
    x = torch.randn(4, 4, 9, 9)
    torch.testing.assert_close(conv(x), F.conv2d(x, w2d, bias, stride=2, padding=1))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(in_channels=6, out_channels=8), "num_groups=4 must divide in_channels=6"),
        (dict(in_channels=8, out_channels=10), "out_channels=10"),
        (dict(in_channels=8, out_channels=8, kernel_size=1), "a 1x1 conv would grow"),
        (dict(in_channels=8, out_channels=8, temporal_groups=5), "temporal_groups"),
        (dict(in_channels=8, out_channels=8, temporal_kernel=2), "temporal_kernel"),
        (dict(in_channels=8, out_channels=8, temporal_init="zeros"), "temporal_init"),
        (dict(in_channels=8, out_channels=8, stride=(1, 2)), "stride"),
        (dict(in_channels=8, out_channels=8, groups=8), "groups=8"),
    ],
)
def test_bad_configuration_is_refused_at_build_time(kwargs, match):
    with pytest.raises(ValueError, match=match):
        STHConv(**kwargs)


def test_batch_not_divisible_by_num_segments_is_refused():
    conv = STHConv(8, 8, num_segments=4)
    with pytest.raises(ValueError, match="6 frames, not a multiple of num_segments=4"):
        conv(torch.randn(6, 8, 5, 5))


def test_conv_module_with_conv_cfg_wraps_sth_conv():
    from mmcv.cnn import ConvModule
    from mmengine.registry import init_default_scope

    init_default_scope("mmaction")
    block = ConvModule(
        8,
        16,
        3,
        stride=2,
        padding=1,
        conv_cfg=dict(type="STHConv", num_segments=2),
        norm_cfg=dict(type="BN"),
    )
    assert isinstance(block.conv, STHConv)
    block.init_weights()
    assert block(torch.randn(4, 8, 10, 10)).shape == (4, 16, 5, 5)


def test_channels_last_input_gives_the_same_result():
    torch.manual_seed(0)
    conv = STHConv(16, 16, num_segments=2, temporal_groups=2, temporal_init="random").double()
    x = torch.randn(4, 16, 9, 9, dtype=torch.double)
    torch.testing.assert_close(conv(x.contiguous(memory_format=torch.channels_last)), conv(x))


@pytest.mark.parametrize(("stride", "padding", "tG"), [(1, 1, 1), (2, 1, 2), (2, 0, 1), (1, 1, 4)])
def test_depthwise_variant_equals_its_masked_dense_reference(stride, padding, tG):
    from mmaction_ext.models import STHDepthwiseConv

    torch.manual_seed(0)
    C, T, G = 8, 4, 4
    conv = STHDepthwiseConv(
        C,
        kernel_size=3,
        stride=stride,
        padding=padding,
        bias=True,
        num_segments=T,
        num_groups=G,
        temporal_groups=tG,
        temporal_init="random",
    ).double()
    ct = C // G * tG
    # reference: a depthwise Conv3d (3, 3, 3); temporal channels keep only the centre
    # pixel, spatial channels only the centre frame
    dense = torch.zeros(C, 1, 3, 3, 3, dtype=torch.double)
    bias = torch.zeros(C, dtype=torch.double)
    if conv.temporal is not None:
        dense[:ct, 0, :, 1, 1] = conv.temporal.weight[:, 0, :, 0].detach()
        bias[:ct] = conv.temporal.bias.detach()
    if conv.spatial is not None:
        dense[ct:, 0, 1] = conv.spatial.weight[:, 0].detach()
        bias[ct:] = conv.spatial.bias.detach()
    x = torch.randn(2 * T, C, 9, 9, dtype=torch.double)
    x3 = x.view(2, T, C, 9, 9).transpose(1, 2)
    ref = F.conv3d(
        x3, dense, bias, stride=(1, stride, stride), padding=(1, padding, padding), groups=C
    )
    ref = ref.transpose(1, 2).reshape(2 * T, C, *ref.shape[-2:])
    torch.testing.assert_close(conv(x), ref)


def test_depthwise_static_init_from_2d_sums_the_kernel():
    from mmaction_ext.models import STHDepthwiseConv

    w2d = torch.randn(8, 1, 3, 3)
    conv = STHDepthwiseConv(8, num_segments=2, num_groups=4, temporal_groups=1)
    conv.load_2d_weight(w2d)
    torch.testing.assert_close(conv.spatial.weight, w2d[2:])
    torch.testing.assert_close(conv.temporal.weight[:, 0, 1, 0], w2d[:2].sum((1, 2, 3)))
    assert torch.all(conv.temporal.weight[:, 0, [0, 2]] == 0)


def test_conv_cfg_selects_sth_conv_through_the_registry():
    from mmcv.cnn import build_conv_layer
    from mmengine.registry import init_default_scope

    init_default_scope("mmaction")
    layer = build_conv_layer(
        dict(type="STHConv", num_segments=2, num_groups=4), 8, 8, 3, stride=1, padding=1, bias=False
    )
    assert isinstance(layer, STHConv) and layer.num_segments == 2


def test_depthwise_variant_refuses_bad_groups_at_build_time():
    from mmaction_ext.models import STHDepthwiseConv

    with pytest.raises(ValueError, match="STHDepthwiseConv: num_groups=4 must divide channels=6"):
        STHDepthwiseConv(6)


def _path_variances(conv, x):
    """(output variance, temporal path's share of it) of ``conv`` on ``x``."""
    import copy

    with torch.no_grad():
        out = conv(x)
        spatial_only = copy.deepcopy(conv)
        if spatial_only.temporal is not None:
            spatial_only.temporal.weight.zero_()
        temporal_part = out - spatial_only(x)
    return out.var().item(), (temporal_part.var() / out.var()).item()


@pytest.mark.parametrize("temporal_init", ["random", "static"])
@pytest.mark.parametrize(("c_in", "c_out", "tG"), [(64, 64, 1), (128, 128, 2), (64, 128, 1)])
def test_init_from_the_blocks_full_fan_in_keeps_a_dense_convs_variance(
    temporal_init, c_in, c_out, tG
):
    """Unit-variance input: output variance within 10% of a He-initialised dense conv's
    (2 * C_in / C_out for fan_out, 2 for fan_in); the temporal path carries r of it
    ('random', within 0.04) or nothing ('static', as documented)."""
    torch.manual_seed(0)
    x = torch.randn(16, c_in, 14, 14)
    for mode in ("fan_in", "fan_out"):
        conv = STHConv(
            c_in,
            c_out,
            num_segments=8,
            num_groups=4,
            temporal_groups=tG,
            temporal_init=temporal_init,
        )
        conv.init_weights(mode=mode)
        dense = torch.nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        torch.nn.init.kaiming_normal_(dense.weight, mode=mode, nonlinearity="relu")
        with torch.no_grad():
            dense_var = dense(x).var().item()
        var, share = _path_variances(conv, x)
        assert var == pytest.approx(dense_var, rel=0.10), (mode, var, dense_var)
        r = tG / 4
        expected = r if temporal_init == "random" else 0.0
        assert share == pytest.approx(expected, abs=0.04), (mode, share)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(temporal_kernel=1), "temporal_kernel must be odd and >= 3, got 1 .*no other frame"),
        (dict(temporal_kernel=1, temporal_groups=0), "temporal_kernel must be odd and >= 3"),
    ],
)
def test_temporal_kernel_one_is_refused(kwargs, match):
    from mmaction_ext.models import STHDepthwiseConv

    with pytest.raises(ValueError, match=match):
        STHConv(8, 8, **kwargs)
    with pytest.raises(ValueError, match=match):
        STHDepthwiseConv(8, **kwargs)


def test_chunked_clips_give_the_same_result():
    """Clips processed a chunk at a time (max_chunk_bytes) equal one pass over the batch,
    forward and backward."""
    torch.manual_seed(0)
    whole = STHConv(16, 16, num_segments=4, temporal_init="random", arrangement="grouped")
    chunked = STHConv(
        16, 16, num_segments=4, temporal_init="random", max_chunk_bytes=1, arrangement="grouped"
    )
    whole, chunked = whole.double(), chunked.double()
    chunked.load_state_dict(whole.state_dict())
    x = torch.randn(12, 16, 7, 7, dtype=torch.double, requires_grad=True)
    out_whole, out_chunked = whole(x), chunked(x)
    torch.testing.assert_close(out_chunked, out_whole)
    grad = torch.randn_like(out_whole)
    torch.testing.assert_close(
        torch.autograd.grad(out_chunked, x, grad)[0], torch.autograd.grad(out_whole, x, grad)[0]
    )


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_both_sth_convs_build_through_conv_cfg_and_keep_the_input_layout(layout):
    """STHConv and STHDepthwiseConv behave alike: built by MMCV's build_conv_layer with a
    Conv2d's arguments, returning the input's memory format as nn.Conv2d does."""
    from mmaction_ext.models import STHDepthwiseConv

    from mmcv.cnn import build_conv_layer
    from mmengine.registry import init_default_scope

    init_default_scope("mmaction")
    dense = build_conv_layer(
        dict(type="STHConv", num_segments=2), 8, 8, 3, stride=2, padding=1, bias=False
    )
    depthwise = build_conv_layer(
        dict(type="STHDepthwiseConv", num_segments=2), 8, 8, 3, stride=2, padding=1, groups=8
    )
    assert isinstance(dense, STHConv) and isinstance(depthwise, STHDepthwiseConv)
    x = torch.randn(4, 8, 10, 10).contiguous(memory_format=layout)
    reference = torch.nn.Conv2d(8, 8, 3, 2, 1)(x)
    for conv in (dense, depthwise):
        out = conv(x)
        assert out.shape == reference.shape == (4, 8, 5, 5)
        assert out.is_contiguous(memory_format=layout) == reference.is_contiguous(
            memory_format=layout
        )
        assert out.is_contiguous() == reference.is_contiguous()
    with pytest.raises(ValueError, match="depthwise convs only"):
        build_conv_layer(dict(type="STHDepthwiseConv"), 8, 8, 3, groups=1)


@pytest.mark.parametrize("arrangement", ["grouped", "masked"])
@pytest.mark.parametrize("chunk_bytes", [1, 16 * 2**20])
@pytest.mark.parametrize(("stride", "tG", "bias"), [(1, 1, False), (2, 2, True), (1, 4, True)])
def test_inference_fuses_the_add_and_gives_the_autograd_result(
    arrangement, chunk_bytes, stride, tG, bias, monkeypatch
):
    """Without autograd (float32, CPU) the spatial conv is added into the temporal output
    by one oneDNN call per chunk; the result equals the autograd path's, in both layouts."""
    from mmaction_ext.models import sth_onednn

    torch.manual_seed(0)
    conv = STHConv(
        16,
        16,
        stride=stride,
        bias=bias,
        num_segments=4,
        temporal_groups=tG,
        temporal_init="random",
        arrangement=arrangement,
        max_chunk_bytes=chunk_bytes,
    )
    x = torch.randn(12, 16, 9, 9)
    expected = conv(x)  # autograd path: parameters require grad
    assert expected.requires_grad
    calls = []
    fused = sth_onednn._CONV_ADD
    monkeypatch.setattr(
        sth_onednn, "_CONV_ADD", lambda *args: calls.append(args[0].shape) or fused(*args)
    )
    for layout in (torch.contiguous_format, torch.channels_last):
        with torch.no_grad():
            out = conv(x.contiguous(memory_format=layout))
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
        assert out.is_contiguous(memory_format=layout)
    if arrangement == "masked" and tG < 4 and chunk_bytes > 1:
        # cache-sized call: per layout, the off-centre temporal taps, one in-place 1x1 conv
        # per tap and clip (3 clips), each writing the 3 of 4 frames it reaches
        assert len(calls) == 2 * 2 * 3
        assert all(shape[2] == 3 for shape in calls)
    else:
        chunks = 1 if arrangement == "masked" or chunk_bytes > 1 else 3
        assert len(calls) == (0 if tG == 4 else 2 * chunks)  # temporal only: nothing to fuse
    # new weights (in place, as an optimiser step or load_state_dict) are used at once
    with torch.no_grad():
        for p in conv.parameters():
            p.mul_(-1)
        torch.testing.assert_close(conv(x), -expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("num_segments", "temporal_kernel", "interleave", "stride", "padding", "dilation"),
    [
        (4, 3, True, 1, 1, 1),
        (1, 3, True, 1, 1, 1),
        (4, 5, True, 2, 1, 1),
        (2, 5, True, 1, 1, 1),
        (4, 3, False, 1, 2, 2),
        (3, 5, True, 2, 0, 1),
    ],
)
def test_masked_inference_folds_the_centre_tap_and_equals_the_reference(
    num_segments, temporal_kernel, interleave, stride, padding, dilation
):
    """Without autograd the masked arrangement computes the temporal centre taps inside
    the dense conv's zero blocks and adds each off-centre tap per clip (a tap reaching
    beyond the clip adds nothing): the result is the masked Conv3d reference's, and a
    change of the temporal weight alone is seen at once."""
    torch.manual_seed(0)
    conv = STHConv(
        16,
        16,
        stride=stride,
        padding=padding,
        dilation=dilation,
        num_segments=num_segments,
        interleave=interleave,
        temporal_kernel=temporal_kernel,
        temporal_init="random",
        bias=True,
        arrangement="masked",
    )
    x = torch.randn(3 * num_segments, 16, 9, 9).contiguous(memory_format=torch.channels_last)

    def reference():
        dense = conv.dense_equivalent_weight()
        ref = reference_forward(x, dense, num_segments, stride, padding, dilation, temporal_kernel)
        return ref + conv.spatial.bias.view(1, -1, 1, 1)

    with torch.no_grad():
        for _ in range(2):  # a second call uses the cached weight
            torch.testing.assert_close(conv(x), reference(), rtol=1e-5, atol=1e-5)
        conv.temporal.weight.mul_(-2)
        torch.testing.assert_close(conv(x), reference(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arrangement", ["grouped", "masked"])
def test_inference_packed_weights_follow_the_shape_and_copies_start_empty(arrangement):
    """Inference packs the weights for oneDNN per input shape: another frame size is
    computed right, and a module that ran it still deep-copies and pickles (packed oneDNN
    tensors do neither; the copy rebuilds them)."""
    import copy
    import pickle

    torch.manual_seed(0)
    conv = STHConv(16, 16, num_segments=4, temporal_init="random", arrangement=arrangement)
    with torch.no_grad():
        for size in (9, 12, 9):
            x = torch.randn(8, 16, size, size).contiguous(memory_format=torch.channels_last)
            ref = reference_forward(x, conv.dense_equivalent_weight(), 4, 1, 1, 1, 3)
            torch.testing.assert_close(conv(x), ref, rtol=1e-5, atol=1e-5)
        for other in (copy.deepcopy(conv), pickle.loads(pickle.dumps(conv))):
            torch.testing.assert_close(other(x), conv(x), rtol=0, atol=0)


def test_auto_arrangement_masks_narrow_rotating_groups_only():
    """'auto' picks the dense masked conv where each output group is narrower than 32
    channels and the spatial groups rotate (ResNet-50's first stage at G = 4)."""
    assert STHConv(64, 64).arrangement == "masked"
    assert STHConv(128, 128).arrangement == "grouped"
    assert STHConv(128, 128, num_groups=8).arrangement == "masked"
    assert STHConv(64, 64, interleave=False).arrangement == "grouped"
    assert STHConv(64, 64, temporal_groups=4).arrangement == "grouped"
    assert STHConv(64, 64, arrangement="grouped").arrangement == "grouped"
    with pytest.raises(ValueError, match="arrangement must be"):
        STHConv(64, 64, arrangement="dense")


def test_masked_arrangement_keeps_parameters_and_counted_flops():
    """Both arrangements hold the same parameters (checkpoints load across them) and the
    FLOP counter sees the block's own multiply-adds, not the masked conv's zeros."""
    from mmengine.analysis import FlopAnalyzer

    grouped = STHConv(64, 64, num_segments=4, arrangement="grouped")
    masked = STHConv(64, 64, num_segments=4, arrangement="masked")
    masked.load_state_dict(grouped.state_dict())
    assert {n: p.shape for n, p in grouped.named_parameters()} == {
        n: p.shape for n, p in masked.named_parameters()
    }
    x = torch.randn(4, 64, 14, 14)
    counts = [
        FlopAnalyzer(conv, (x,)).unsupported_ops_warnings(False).total()
        for conv in (grouped, masked)
    ]
    assert counts[0] == counts[1] == 4 * 64 * 14 * 14 * 64 * (9 * 3 / 4 + 3 / 4)
