"""ContextBlock (GCNet): mmcv's names; output against a by-hand computation."""
import pytest
import torch

from mmft.models.layers import ContextBlock, build_plugin_layer


def test_names_and_starts_as_identity():
    name, block = build_plugin_layer(dict(type='ContextBlock', ratio=1. / 16), in_channels=64,
                                     postfix='')
    assert name == 'context_block'
    assert {k: tuple(v.shape) for k, v in block.state_dict().items()} == {
        'conv_mask.weight': (1, 64, 1, 1), 'conv_mask.bias': (1, ),
        'channel_add_conv.0.weight': (4, 64, 1, 1), 'channel_add_conv.0.bias': (4, ),
        'channel_add_conv.1.weight': (4, 1, 1), 'channel_add_conv.1.bias': (4, 1, 1),
        'channel_add_conv.3.weight': (64, 4, 1, 1), 'channel_add_conv.3.bias': (64, )}
    x = torch.randn(2, 64, 5, 7)
    torch.testing.assert_close(block(x), x)


@pytest.mark.parametrize('pooling', ['att', 'avg'])
def test_output_matches_hand_computation(pooling):
    torch.manual_seed(0)
    block = ContextBlock(8, ratio=0.5, pooling_type=pooling,
                         fusion_types=('channel_add', 'channel_mul'))
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(2, 8, 4, 5)
    flat = x.flatten(2)  # B, C, HW
    if pooling == 'att':
        logits = (block.conv_mask.weight.view(1, 8, 1) * flat).sum(1) + block.conv_mask.bias
        context = (flat * logits.softmax(-1).unsqueeze(1)).sum(-1)
    else:
        context = flat.mean(-1)

    def transform(seq, c):
        h = c @ seq[0].weight.view(4, 8).T + seq[0].bias
        h = (h - h.mean(1, keepdim=True)) / torch.sqrt(h.var(1, unbiased=False, keepdim=True)
                                                       + 1e-5)
        h = torch.relu(h * seq[1].weight.view(4) + seq[1].bias.view(4))
        return h @ seq[3].weight.view(8, 4).T + seq[3].bias

    mul = torch.sigmoid(transform(block.channel_mul_conv, context))[..., None, None]
    add = transform(block.channel_add_conv, context)[..., None, None]
    torch.testing.assert_close(block(x), x * mul + add, atol=1e-5, rtol=1e-4)


def test_bad_arguments():
    with pytest.raises(ValueError, match='pooling_type'):
        ContextBlock(8, 0.5, pooling_type='max')
    with pytest.raises(ValueError, match='fusion_types'):
        ContextBlock(8, 0.5, fusion_types=('channel_cat', ))
    with pytest.raises(KeyError, match="'NonLocal2d' is not registered"):
        build_plugin_layer(dict(type='NonLocal2d'), in_channels=8)
