import math

import pytest
import torch

from mmft.models.task_modules import AnchorGenerator, anchor_inside_flags
from mmft.registry import TASK_UTILS


def test_base_anchors_hand_computed():
    gen = TASK_UTILS.build(dict(type='AnchorGenerator', strides=[16], ratios=[0.5, 1.0, 2.0],
                                scales=[8]))
    r = 128 / math.sqrt(2)  # long side of the 1:2 anchors of area 128**2: 181.02 / 2
    expected = torch.tensor([[-r, -r / 2, r, r / 2],       # ratio 0.5: w = 128*sqrt(2)
                             [-64., -64., 64., 64.],
                             [-r / 2, -r, r / 2, r]])
    torch.testing.assert_close(gen.base_anchors[0], expected)
    assert gen.num_base_priors == [3]


def test_scale_major_order_and_center_offset():
    gen = AnchorGenerator(strides=[8], ratios=[1.0, 4.0], scales=[1, 2], center_offset=0.5)
    # ratio-major, scale-minor: (r=1,s=1), (r=1,s=2), (r=4,s=1), (r=4,s=2); centre (4, 4)
    expected = torch.tensor([[0., 0., 8., 8.], [-4., -4., 12., 12.],
                             [2., -4., 6., 12.], [0., -12., 8., 20.]])
    torch.testing.assert_close(gen.base_anchors[0], expected)
    gen = AnchorGenerator(strides=[8], ratios=[1.0, 4.0], scales=[1, 2], scale_major=False,
                          center_offset=0.5)
    torch.testing.assert_close(gen.base_anchors[0], expected[[0, 2, 1, 3]])


def test_octave_scales_retinanet():
    gen = AnchorGenerator(strides=[8, 16], ratios=[1.0], octave_base_scale=4, scales_per_octave=3)
    torch.testing.assert_close(gen.scales, torch.tensor([4., 4 * 2**(1 / 3), 4 * 2**(2 / 3)]))
    assert gen.num_base_priors == [3, 3]
    torch.testing.assert_close(gen.base_anchors[1][0], torch.tensor([-32., -32., 32., 32.]))


def test_grid_priors_order_and_shapes():
    gen = AnchorGenerator(strides=[4, 8], ratios=[0.5, 1.0, 2.0], scales=[2])
    priors = gen.grid_priors([(3, 5), (2, 3)])
    assert [tuple(p.shape) for p in priors] == [(3 * 5 * 3, 4), (2 * 3 * 3, 4)]
    base = gen.base_anchors[0]
    # index (y * W + x) * A + a  <->  base anchor a shifted by (x * 4, y * 4)
    y, x, a = 2, 3, 1
    torch.testing.assert_close(priors[0][(y * 5 + x) * 3 + a],
                               base[a] + torch.tensor([12., 8., 12., 8.]))
    torch.testing.assert_close(priors[1][:3], gen.base_anchors[1])


def test_valid_flags_mark_batch_padding_invalid():
    gen = AnchorGenerator(strides=[4], ratios=[1.0, 2.0], scales=[2])
    flags = gen.valid_flags([(4, 6)], pad_shape=(9, 12))[0]  # valid 3 rows x 3 cols
    assert flags.shape == (4 * 6 * 2,) and flags.dtype == torch.bool
    grid = flags.view(4, 6, 2)
    assert grid[:3, :3].all() and not grid[3].any() and not grid[:, 3:].any()


def test_anchor_inside_flags():
    anchors = torch.tensor([[0., 0., 10., 10.], [-5., 0., 5., 10.], [0., 0., 21., 10.]])
    valid = torch.tensor([True, True, False])
    assert anchor_inside_flags(anchors, valid, (20, 20), 0).tolist() == [True, False, False]
    assert anchor_inside_flags(anchors, valid, (20, 20), 5).tolist() == [True, True, False]
    assert anchor_inside_flags(anchors, valid, (20, 20), -1).tolist() == [True, True, False]


def test_bad_arguments():
    with pytest.raises(ValueError, match='scales'):
        AnchorGenerator(strides=[4], ratios=[1.0])
    with pytest.raises(ValueError, match='feature maps'):
        AnchorGenerator(strides=[4, 8], ratios=[1.0], scales=[1]).grid_priors([(2, 2)])


def test_round_base_anchors_as_torchvision():
    from mmft.models.task_modules import AnchorGenerator
    exact = AnchorGenerator(strides=[4], ratios=[0.5], scales=[8])
    rounded = AnchorGenerator(strides=[4], ratios=[0.5], scales=[8], round_base_anchors=True)
    assert torch.allclose(exact.base_anchors[0], torch.tensor([[-22.627, -11.314, 22.627,
                                                                 11.314]]), atol=1e-3)
    assert torch.equal(rounded.base_anchors[0], torch.tensor([[-23., -11., 23., 11.]]))
