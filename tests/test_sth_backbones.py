"""ResNetSTH and MobileNetV2STH: structure, parameter arithmetic, 2D checkpoint conversion."""

import logging

import mmaction_ext  # noqa: F401
from mmaction_ext.models import MobileNetV2STH, ResNetSTH, STHConv, STHDepthwiseConv

import pytest
import torch
import torchvision
from mmaction.models.backbones import MobileNetV2, ResNetTSM


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("depth", [18, 34, 50, 101])
def test_every_block_3x3_conv_is_sth_and_params_follow_the_formula(depth):
    sth = ResNetSTH(depth, num_segments=4, pretrained=None)
    tsm = ResNetTSM(depth, num_segments=4, pretrained=None, pretrained2d=False)
    blocks = [block for name in sth.res_layers for block in getattr(sth, name)]
    for block in blocks:  # BasicBlock: conv1 and conv2 are 3x3; Bottleneck: conv2
        for name in ("conv1", "conv2", "conv3"):
            wrapper = getattr(block, name, None)
            if wrapper is None:
                continue
            is_sth = isinstance(wrapper.conv, STHConv)
            assert is_sth == (wrapper.conv.kernel_size in (3, (3, 3))), (name, wrapper.conv)
    sth_convs = [m for m in sth.modules() if isinstance(m, STHConv)]
    assert len(sth_convs) == len(blocks) * (2 if depth < 50 else 1)
    # each 3x3 conv of C_in x C_out loses C_in*C_out*(9 - 3) * r weights (r = 1/4)
    saved = sum(c.in_channels * c.out_channels * 6 // 4 for c in sth_convs)
    assert n_params(tsm) - n_params(sth) == saved


def test_resnet50_parameters_match_the_spec_arithmetic():
    head = 2048 * 174 + 174  # TSMHead for Something-Something's 174 classes
    assert (
        round((n_params(ResNetTSM(50, pretrained=None, pretrained2d=False)) + head) / 1e6, 2)
        == 23.86
    )
    for temporal_groups, expected in [(1, 21.98), (2, 20.09)]:
        sth = ResNetSTH(50, pretrained=None, temporal_groups=temporal_groups)
        assert round((n_params(sth) + head) / 1e6, 2) == expected


def test_bad_group_setting_names_the_layer_at_build_time():
    with pytest.raises(
        ValueError, match=r"ResNetSTH layer layer1\.0\.conv1\.conv: STHConv: num_groups=5"
    ):
        ResNetSTH(18, num_groups=5, pretrained=None)


@pytest.fixture
def torchvision_resnet18(tmp_path):
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None)
    with torch.no_grad():  # non-trivial BN statistics, so eval-mode features differ per layer
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "resnet18_tv.pth"
    torch.save(net.state_dict(), path)
    return net.eval(), path


def _tv_features(net, x):
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return net.layer4(net.layer3(net.layer2(net.layer1(x))))


def test_conversion_with_temporal_groups_zero_gives_the_2d_network(torchvision_resnet18):
    net, path = torchvision_resnet18
    sth = ResNetSTH(18, num_segments=2, temporal_groups=0, pretrained=str(path))
    sth.init_weights()
    sth.eval()
    x = torch.randn(4, 3, 64, 64, dtype=torch.double)
    sth.double()
    with torch.no_grad():  # double: channels-last and NCHW convs sum in different orders
        torch.testing.assert_close(sth(x), _tv_features(net.double(), x))


@pytest.mark.parametrize("prefix", ["", "backbone."])
def test_mmaction2_format_2d_checkpoint_converts_like_torchvisions(prefix, tmp_path):
    """MMAction2's own ResNet checkpoint (``torchvision_pretrain=False``; bare, or a
    recogniser's with ``backbone.``) fills every STH conv: with temporal_groups=0 the
    network is the 2D ResNet, with the default split the spatial taps are its kernels."""
    from mmaction.models.backbones import ResNet

    torch.manual_seed(0)
    resnet = ResNet(18, pretrained=None)
    resnet.init_weights()
    with torch.no_grad():
        for module in resnet.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    state = {f"{prefix}{k}": v for k, v in resnet.state_dict().items()}
    path = tmp_path / "resnet18_mmaction.pth"
    torch.save({"state_dict": state}, path)

    sth = ResNetSTH(18, num_segments=2, temporal_groups=0, pretrained=str(path))
    sth.torchvision_pretrain = False
    sth.init_weights()
    x = torch.randn(4, 3, 64, 64, dtype=torch.double)
    for model in (sth, resnet):  # MMAction2's ResNet.train() returns None: no chaining
        model.double()
        model.eval()
    with torch.no_grad():
        torch.testing.assert_close(sth(x), resnet(x))

    sth = ResNetSTH(18, num_segments=2, pretrained=str(path), torchvision_pretrain=False)
    sth.init_weights()
    conv = sth.layer3[1].conv2.conv
    source = resnet.layer3[1].conv2.conv.weight.float()
    dense = conv.dense_equivalent_weight()
    for g in range(4):
        rows = slice(g * 64, (g + 1) * 64)
        for i in conv.spatial_input_groups(g):
            cols = slice(i * 64, (i + 1) * 64)
            torch.testing.assert_close(dense[rows, cols, 1], source[rows, cols])


def test_2d_checkpoint_that_leaves_sth_convs_unfilled_is_an_error_naming_them(
    torchvision_resnet18, tmp_path
):
    _, path = torchvision_resnet18
    # the torchvision file read as MMAction2-format: no key fills an STH conv
    sth = ResNetSTH(18, num_segments=2, pretrained=str(path), torchvision_pretrain=False)
    with pytest.raises(
        ValueError,
        match=r"16 STH convs have no 2D weight.*layer1\.0\.conv1\.conv \(looked for "
        r"'layer1\.0\.conv1\.conv\.weight'\).*set torchvision_pretrain=True",
    ):
        sth.init_weights()
    # one block's 3x3 kernel missing from a torchvision checkpoint: named, nothing else
    state = torch.load(path, weights_only=True)
    del state["layer2.1.conv2.weight"]
    partial = tmp_path / "partial.pth"
    torch.save(state, partial)
    with pytest.raises(ValueError, match=r"1 STH convs .*: layer2\.1\.conv2\.conv \(looked"):
        ResNetSTH(18, num_segments=2, pretrained=str(partial)).init_weights()


@pytest.mark.parametrize("backbone", ["ResNetSTH", "MobileNetV2STH"])
def test_backbone_output_is_contiguous_nchw_like_the_hosts(backbone):
    """Channels-last inside, NCHW at the boundary: ``feat.view(N, -1)`` works as after
    ResNetTSM; with several out_indices, every output."""
    if backbone == "ResNetSTH":
        model = ResNetSTH(18, num_segments=2, pretrained=None, out_indices=(2, 3))
    else:
        model = MobileNetV2STH(num_segments=2, out_indices=(6, 7))
    model.init_weights()
    outs = model(torch.randn(4, 3, 32, 32))
    for out in outs:
        assert out.is_contiguous()
        out.view(out.shape[0], -1)


def test_default_conversion_copies_spatial_and_sums_temporal(torchvision_resnet18, caplog):
    net, path = torchvision_resnet18
    sth = ResNetSTH(18, num_segments=2, pretrained=str(path))
    with caplog.at_level(logging.WARNING):
        sth.init_weights()
    source = net.state_dict()
    for name, module in sth.named_modules():
        if not isinstance(module, STHConv):
            continue
        w2d = source[name.removesuffix(".conv") + ".weight"]
        dense = module.dense_equivalent_weight()
        for g in range(module.num_groups):
            rows = slice(g * module.out_channels // 4, (g + 1) * module.out_channels // 4)
            for i in module.spatial_input_groups(g):
                cols = slice(i * module.in_channels // 4, (i + 1) * module.in_channels // 4)
                torch.testing.assert_close(dense[rows, cols, 1], w2d[rows, cols])
            for i in module.temporal_input_groups(g):
                cols = slice(i * module.in_channels // 4, (i + 1) * module.in_channels // 4)
                triple = dense[rows, cols, :, 1, 1]
                torch.testing.assert_close(triple.sum(-1), w2d[rows, cols].sum((-1, -2)))
    torch.testing.assert_close(sth.conv1.conv.weight, source["conv1.weight"])
    torch.testing.assert_close(
        sth.layer2[0].downsample.bn.running_var, source["layer2.0.downsample.1.running_var"]
    )


def test_conversion_reports_unplaced_keys_and_refuses_shape_mismatches(tmp_path, monkeypatch):
    from mmaction_ext.models.backbones import convert_2d
    from mmaction_ext.models.backbones.resnet_sth import torchvision_resnet_name

    logged = []
    monkeypatch.setattr(convert_2d, "print_log", lambda msg, **kwargs: logged.append(msg))
    state = torchvision.models.resnet18(weights=None).state_dict()
    state["extra.weight"] = torch.zeros(3)
    del state["layer4.1.bn2.running_mean"]
    path = tmp_path / "tv.pth"
    torch.save(state, path)
    sth = ResNetSTH(18, num_segments=2, pretrained=str(path))
    sth.init_weights()
    assert any(
        "3 checkpoint keys were not placed" in m and "fc.weight" in m and "extra.weight" in m
        for m in logged
    )
    assert any("layer4.1.conv2.bn.running_mean" in m for m in logged)
    report = convert_2d.load_2d_state_dict(sth, state, torchvision_resnet_name)
    assert report["unplaced"] == ["extra.weight", "fc.bias", "fc.weight"]

    state["layer1.0.bn1.weight"] = torch.ones(32)
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"'layer1\.0\.bn1\.weight' has shape \(32,\)"):
        ResNetSTH(18, num_segments=2, pretrained=str(path)).init_weights()


def test_mobilenet_v2_sth_structure_params_and_conversion(tmp_path):
    base = MobileNetV2()
    sth = MobileNetV2STH(num_segments=2)
    depthwise = [m for m in sth.modules() if isinstance(m, STHDepthwiseConv)]
    assert len(depthwise) == 17  # one per inverted residual
    saved = sum(m.channels * 6 // 4 for m in depthwise)
    assert n_params(base) - n_params(sth) == saved

    torch.manual_seed(0)
    base.init_weights()
    path = tmp_path / "mbv2.pth"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in base.state_dict().items()}}, path)
    converted = MobileNetV2STH(num_segments=2, temporal_groups=0, pretrained=str(path))
    converted.init_weights()
    base.eval()
    converted.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(converted(x), base(x))


@pytest.mark.parametrize("temporal_init", ["random", "static"])
def test_resnet_sth_init_matches_the_host_dense_convs_variance(temporal_init):
    """Inside ResNetSTH, each STH conv starts with the output variance of the dense conv
    MMAction2's ResNet initialises at its place (within 10%, on unit-variance input), the
    temporal path carrying r = 1/4 of it ('random') or none ('static')."""
    from mmaction.models.backbones import ResNet
    from test_sth_conv import _path_variances

    torch.manual_seed(0)
    sth = ResNetSTH(18, num_segments=8, pretrained=None, temporal_init=temporal_init)
    sth.init_weights()
    host = ResNet(18, pretrained=None)
    host.init_weights()
    for name in ("layer1.0.conv2", "layer2.0.conv1", "layer3.1.conv1", "layer4.1.conv2"):
        conv = sth.get_submodule(f"{name}.conv")
        dense = host.get_submodule(f"{name}.conv")
        x = torch.randn(16, conv.in_channels, 14, 14)
        with torch.no_grad():
            dense_var = dense(x).var().item()
        var, share = _path_variances(conv, x)
        assert var == pytest.approx(dense_var, rel=0.10), (name, var, dense_var)
        assert share == pytest.approx(0.25 if temporal_init == "random" else 0.0, abs=0.04)
