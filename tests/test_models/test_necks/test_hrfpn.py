"""HRFPN: MMDetection's keys; output against a by-hand computation."""
import pytest
import torch
import torch.nn.functional as F

from mmft.registry import MODELS


def test_keys_and_output_by_hand():
    torch.manual_seed(0)
    neck = MODELS.build(dict(type='HRFPN', in_channels=[4, 8], out_channels=6, num_outs=3))
    assert {k: tuple(v.shape) for k, v in neck.state_dict().items()} == {
        'reduction_conv.conv.weight': (6, 12, 1, 1), 'reduction_conv.conv.bias': (6, ),
        **{f'fpn_convs.{i}.conv.{n}': s for i in range(3)
           for n, s in (('weight', (6, 6, 3, 3)), ('bias', (6, )))}}
    x = [torch.randn(1, 4, 8, 8), torch.randn(1, 8, 4, 4)]
    up = F.interpolate(x[1], size=(8, 8), mode='bilinear', align_corners=False)
    red = F.conv2d(torch.cat([x[0], up], 1), neck.reduction_conv.conv.weight,
                   neck.reduction_conv.conv.bias)
    levels = [red, F.avg_pool2d(red, 2, 2), F.avg_pool2d(red, 4, 4)]
    outs = neck(x)
    for i, (out, level) in enumerate(zip(outs, levels)):
        conv = neck.fpn_convs[i].conv
        torch.testing.assert_close(out, F.conv2d(level, conv.weight, conv.bias, padding=1))


def test_max_pooling_and_bad_input():
    neck = MODELS.build(dict(type='HRFPN', in_channels=[4, 8], out_channels=6, num_outs=2,
                             pooling_type='MAX'))
    assert [tuple(o.shape) for o in neck([torch.randn(1, 4, 8, 8), torch.randn(1, 8, 4, 4)])] \
        == [(1, 6, 8, 8), (1, 6, 4, 4)]
    with pytest.raises(ValueError, match='pad images to a multiple of 32'):
        neck([torch.randn(1, 4, 8, 8), torch.randn(1, 8, 3, 3)])
    with pytest.raises(ValueError, match="pooling_type must be 'AVG' or 'MAX'"):
        MODELS.build(dict(type='HRFPN', in_channels=[4], out_channels=6, pooling_type='MIN'))
