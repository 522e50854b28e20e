import pytest
import torch
import torch.nn as nn

from mmft.models.layers import ConvModule, build_norm_layer
from mmft.registry import MODELS


def test_conv_module_keys_and_shapes():
    m = ConvModule(3, 8, 3, stride=2, padding=1, norm_cfg=dict(type='BN'))
    assert list(m.state_dict()) == [
        'conv.weight', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var',
        'bn.num_batches_tracked']
    assert m.conv.bias is None  # bias='auto' drops the bias before a norm
    assert isinstance(m.activate, nn.ReLU)
    assert m(torch.randn(2, 3, 16, 16)).shape == (2, 8, 8, 8)


def test_conv_module_without_norm_or_act_is_a_plain_conv():
    m = ConvModule(4, 6, 1, act_cfg=None)
    assert sorted(m.state_dict()) == ['conv.bias', 'conv.weight']
    x = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(m(x), nn.functional.conv2d(x, m.conv.weight, m.conv.bias))


def test_conv_module_gn_named_gn_and_registered():
    m = MODELS.build(dict(type='ConvModule', in_channels=4, out_channels=8, kernel_size=3,
                          padding=1, norm_cfg=dict(type='GN', num_groups=4)))
    assert 'gn.weight' in m.state_dict() and 'conv.bias' not in m.state_dict()
    out = m(torch.randn(1, 4, 6, 6))
    assert out.shape == (1, 8, 6, 6) and (out >= 0).all()


def test_build_norm_layer_names_requires_grad_and_errors():
    name, layer = build_norm_layer(dict(type='BN', requires_grad=False), 5, postfix=1)
    assert name == 'bn1' and isinstance(layer, nn.BatchNorm2d)
    assert not any(p.requires_grad for p in layer.parameters())
    name, layer = build_norm_layer(dict(type='SyncBN'), 5)
    assert name == 'bn' and isinstance(layer, nn.SyncBatchNorm)
    name, layer = build_norm_layer(dict(type='GN', num_groups=2), 6, postfix=3)
    assert name == 'gn3' and layer.num_groups == 2 and layer.num_channels == 6
    with pytest.raises(KeyError, match='num_groups'):
        build_norm_layer(dict(type='GN'), 6)
    with pytest.raises(KeyError, match='FancyNorm'):
        build_norm_layer(dict(type='FancyNorm'), 6)
