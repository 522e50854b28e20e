"""Deformable convs: mmcv's parameter names; outputs against plain convs on shifted input."""
import pytest
import torch
import torch.nn.functional as F

from mmft.models.layers import (DeformConv2dPack, ModulatedDeformConv2dPack,
                                build_conv_layer)


def test_names_shapes_and_build_from_mmdetection_dcn_cfgs():
    dcn = build_conv_layer(dict(type='DCN', deform_groups=1), 8, 16, 3, padding=1, bias=False)
    assert isinstance(dcn, DeformConv2dPack)
    assert {k: tuple(v.shape) for k, v in dcn.state_dict().items()} == {
        'weight': (16, 8, 3, 3), 'conv_offset.weight': (18, 8, 3, 3),
        'conv_offset.bias': (18, )}
    v2 = build_conv_layer(dict(type='DCNv2', deform_groups=2), 8, 16, 3, padding=1, groups=2)
    assert isinstance(v2, ModulatedDeformConv2dPack)
    assert {k: tuple(v.shape) for k, v in v2.state_dict().items()} == {
        'weight': (16, 4, 3, 3), 'bias': (16, ), 'conv_offset.weight': (54, 8, 3, 3),
        'conv_offset.bias': (54, )}
    with pytest.raises(KeyError, match="'DCNv3' is not supported.*'DCN'"):
        build_conv_layer(dict(type='DCNv3'), 8, 8, 3)
    with pytest.raises(ValueError, match='deform_groups=3'):
        DeformConv2dPack(8, 8, 3, deform_groups=3)


def test_zero_offsets_are_a_plain_conv_and_v2_halves_it():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 9, 11)
    dcn = DeformConv2dPack(4, 6, 3, stride=2, padding=1, groups=2)
    torch.testing.assert_close(dcn(x), F.conv2d(x, dcn.weight, None, 2, 1, 1, 2))
    v2 = ModulatedDeformConv2dPack(4, 6, 3, padding=2, dilation=2)
    nn_bias = torch.randn(6)
    v2.bias.data.copy_(nn_bias)
    expected = 0.5 * F.conv2d(x, v2.weight, None, 1, 2, 2) + nn_bias.view(1, -1, 1, 1)
    torch.testing.assert_close(v2(x), expected)  # mask = sigmoid(0) = 0.5


@pytest.mark.parametrize('dy,dx', [(1, 0), (0, -1), (2, 1)])
def test_offset_layout_is_y_then_x_per_kernel_position(dy, dx):
    """A constant offset (dy, dx) samples the input shifted by it: compare in the interior."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 12, 12)
    dcn = DeformConv2dPack(3, 5, 3, padding=1)
    with torch.no_grad():
        dcn.conv_offset.bias.view(9, 2)[:, 0] = dy
        dcn.conv_offset.bias.view(9, 2)[:, 1] = dx
    shifted = torch.roll(x, shifts=(-dy, -dx), dims=(2, 3))
    expected = F.conv2d(shifted, dcn.weight, None, 1, 1)
    inner = slice(3, 9)
    torch.testing.assert_close(dcn(x)[..., inner, inner], expected[..., inner, inner])


def test_v2_mask_channels_come_last():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 8, 8)
    v2 = ModulatedDeformConv2dPack(2, 3, 3, padding=1, bias=False)
    with torch.no_grad():
        v2.conv_offset.bias[18:] = 20.  # mask logits -> sigmoid ~ 1; offsets stay 0
    torch.testing.assert_close(v2(x), F.conv2d(x, v2.weight, None, 1, 1), atol=1e-6, rtol=1e-5)


def test_gradients_reach_weight_and_offsets():
    x = torch.randn(1, 2, 6, 6, requires_grad=True)
    v2 = ModulatedDeformConv2dPack(2, 2, 3, padding=1)
    with torch.no_grad():
        v2.conv_offset.bias.uniform_(-0.5, 0.5)  # off the grid, where offsets get a gradient
    v2(x).square().sum().backward()
    assert v2.weight.grad.abs().sum() > 0 and v2.conv_offset.weight.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0
