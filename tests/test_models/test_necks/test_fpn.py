import pytest
import torch

from mmft.models.necks import FPN
from mmft.registry import MODELS

IN_CHANNELS = [8, 16, 32, 64]


def _feats(size=32, batch=2):
    return [torch.randn(batch, c, size // 2**i, size // 2**i) for i, c in enumerate(IN_CHANNELS)]


def test_maxpool_extra_level_and_keys():
    fpn = MODELS.build(dict(type='FPN', in_channels=IN_CHANNELS, out_channels=16, num_outs=5))
    outs = fpn(_feats())
    assert [tuple(o.shape) for o in outs] == [(2, 16, 32 // 2**i, 32 // 2**i) for i in range(4)] \
        + [(2, 16, 2, 2)]
    torch.testing.assert_close(outs[4], outs[3][:, :, ::2, ::2])
    keys = set(fpn.state_dict())
    assert {'lateral_convs.0.conv.weight', 'lateral_convs.3.conv.bias',
            'fpn_convs.3.conv.weight'} <= keys
    assert not any(k.startswith('fpn_convs.4') for k in keys)


@pytest.mark.parametrize('source,in_ch', [('on_input', 64), ('on_lateral', 16),
                                          ('on_output', 16), (True, 64)])
def test_extra_convs(source, in_ch):
    fpn = FPN(IN_CHANNELS, 16, num_outs=6, add_extra_convs=source, relu_before_extra_convs=True)
    assert fpn.fpn_convs[4].conv.in_channels == in_ch
    assert fpn.fpn_convs[4].conv.stride == (2, 2)
    outs = fpn(_feats(64))
    assert [o.shape[-1] for o in outs] == [64, 32, 16, 8, 4, 2]


def test_start_level_retinanet_layout():
    fpn = FPN(IN_CHANNELS, 16, num_outs=5, start_level=1, add_extra_convs='on_input')
    outs = fpn(_feats(64))
    assert len(fpn.lateral_convs) == 3 and len(fpn.fpn_convs) == 5
    assert [o.shape[-1] for o in outs] == [32, 16, 8, 4, 2]


def test_odd_sizes_and_top_down_sum():
    fpn = FPN([4, 4], 4, num_outs=2)
    for conv in fpn.fpn_convs:  # identity 3x3 convs expose the lateral sums
        torch.nn.init.zeros_(conv.conv.weight)
        torch.nn.init.zeros_(conv.conv.bias)
        conv.conv.weight.data[range(4), range(4), 1, 1] = 1
    feats = [torch.randn(1, 4, 13, 11), torch.randn(1, 4, 7, 6)]
    outs = fpn(feats)
    lat0, lat1 = fpn.lateral_convs[0](feats[0]), fpn.lateral_convs[1](feats[1])
    up = torch.nn.functional.interpolate(lat1, size=(13, 11), mode='nearest')
    torch.testing.assert_close(outs[0], lat0 + up)
    torch.testing.assert_close(outs[1], lat1)


def test_bad_arguments():
    with pytest.raises(ValueError, match='add_extra_convs'):
        FPN(IN_CHANNELS, 16, 5, add_extra_convs='on_top')
    with pytest.raises(ValueError, match='num_outs'):
        FPN(IN_CHANNELS, 16, 3)
    with pytest.raises(ValueError, match='input levels'):
        FPN(IN_CHANNELS, 16, 4)(_feats()[:3])
