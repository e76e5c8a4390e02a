"""The layout-preserving temporal shift: exactly MMAction2's TemporalShift, in the input's
memory format, forward and backward; and swapped into a built ResNetTSM."""

import mmaction_ext  # noqa: F401
from mmaction_ext.models import LayoutPreservingTemporalShift, keep_layout_in_temporal_shifts

import pytest
import torch
from mmaction.models.backbones import ResNetTSM
from mmaction.models.backbones.resnet_tsm import TemporalShift

FORMATS = {"NCHW": torch.contiguous_format, "channels-last": torch.channels_last}


@pytest.mark.parametrize("memory_format", FORMATS.values(), ids=FORMATS.keys())
@pytest.mark.parametrize(("num_segments", "channels", "shift_div"), [(8, 64, 8), (4, 18, 3)])
def test_shift_equals_the_hosts_forward_and_backward(
    memory_format, num_segments, channels, shift_div
):
    torch.manual_seed(0)
    x = torch.randn(2 * num_segments, channels, 5, 6).contiguous(memory_format=memory_format)
    grad = torch.randn(x.shape)
    results = []
    for shift in (TemporalShift.shift, LayoutPreservingTemporalShift.shift):
        leaf = x.clone().requires_grad_()
        out = shift(leaf, num_segments, shift_div=shift_div)
        out.backward(grad)
        results.append((out, leaf.grad))
    (host, host_grad), (ours, ours_grad) = results
    assert torch.equal(ours, host)
    # the host's blanks are ``x - x``: their gradient, g - g, is added to the gradient of
    # the values they sit beside, which rounds it by up to one float32 ulp; ours is exact
    torch.testing.assert_close(ours_grad, host_grad, rtol=0, atol=1e-6)
    expected = torch.zeros_like(grad).view(-1, num_segments, *grad.shape[1:])
    g = grad.view(expected.shape)
    fold = channels // shift_div
    expected[:, 1:, :fold] = g[:, :-1, :fold]
    expected[:, :-1, fold : 2 * fold] = g[:, 1:, fold : 2 * fold]
    expected[:, :, 2 * fold :] = g[:, :, 2 * fold :]
    assert torch.equal(ours_grad, expected.view(grad.shape))
    assert ours.is_contiguous(memory_format=memory_format)
    # the host's shift hands back NCHW whatever it is given: the defect this shift removes
    assert host.is_contiguous()


def test_swapped_into_resnet_tsm_the_outputs_stay_and_channels_last_is_kept():
    torch.manual_seed(0)
    backbone = ResNetTSM(18, num_segments=4, pretrained=None, pretrained2d=False)
    backbone.eval()  # MMAction2's ResNet.train returns None, so no chaining
    frames = torch.randn(8, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        before = backbone(frames)
        assert keep_layout_in_temporal_shifts(backbone) == 8  # one per basic block
        shifts = [m for m in backbone.modules() if isinstance(m, TemporalShift)]
        assert all(type(m) is LayoutPreservingTemporalShift for m in shifts)
        seen = []
        shifts[0].net.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
        after = backbone(frames)
    # the same values; the convs after the shifts now read channels-last, which oneDNN
    # sums in another order
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    assert seen[0].is_contiguous(memory_format=torch.channels_last)
    assert keep_layout_in_temporal_shifts(backbone) == 0  # nothing left to swap
