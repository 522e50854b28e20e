import math

import torch

from mmft.models.task_modules import DeltaXYWHBBoxCoder
from mmft.registry import TASK_UTILS


def test_encode_hand_computed():
    coder = DeltaXYWHBBoxCoder()
    priors = torch.tensor([[0., 0., 10., 20.]])
    gt = torch.tensor([[5., 5., 25., 25.]])
    # centres (5, 10) -> (15, 15); sizes (10, 20) -> (20, 20)
    expected = torch.tensor([[1.0, 0.25, math.log(2.0), 0.0]])
    torch.testing.assert_close(coder.encode(priors, gt), expected)
    normed = DeltaXYWHBBoxCoder(target_means=(0.5, 0., 0., 0.), target_stds=(0.1, 0.1, 0.2, 0.2))
    torch.testing.assert_close(normed.encode(priors, gt),
                               torch.tensor([[5.0, 2.5, math.log(2.0) / 0.2, 0.0]]))


def test_round_trip():
    torch.manual_seed(0)
    coder = TASK_UTILS.build(dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                                  target_stds=[0.1, 0.1, 0.2, 0.2]))
    xy = torch.rand(50, 2) * 100
    priors = torch.cat([xy, xy + 1 + torch.rand(50, 2) * 50], dim=1)
    xy = torch.rand(50, 2) * 100
    gt = torch.cat([xy, xy + 1 + torch.rand(50, 2) * 50], dim=1)
    decoded = coder.decode(priors, coder.encode(priors, gt))
    torch.testing.assert_close(decoded, gt, rtol=1e-4, atol=1e-3)


def test_decode_clip_clamp_and_shapes():
    coder = DeltaXYWHBBoxCoder()
    priors = torch.tensor([[10., 10., 20., 20.]])
    big = torch.tensor([[0., 0., 100., 100.]])  # dw, dh clipped to |log(16/1000)|
    out = coder.decode(priors, big)
    torch.testing.assert_close(out[0, 2] - out[0, 0], torch.tensor(10. * 1000 / 16))
    clipped = coder.decode(priors, big, max_shape=(30, 40))
    assert clipped.tolist() == [[0., 0., 40., 30.]]
    # several boxes per prior (class-specific regression)
    multi = coder.decode(priors.repeat(3, 1), torch.zeros(3, 8))
    assert multi.shape == (3, 8)
    torch.testing.assert_close(multi[:, 4:], priors.repeat(3, 1))
    assert coder.decode(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0, 4)
    ctr = DeltaXYWHBBoxCoder(add_ctr_clamp=True, ctr_clamp=2)
    shifted = ctr.decode(priors, torch.tensor([[5., 0., 0., 0.]]))
    torch.testing.assert_close(shifted, torch.tensor([[12., 10., 22., 20.]]))


def test_degenerate_boxes_encode_finite():
    coder = DeltaXYWHBBoxCoder()
    boxes = torch.tensor([[5., 5., 5., 9.], [0., 0., 10., 10.]])
    gt = torch.tensor([[5., 5., 5., 9.], [3., 3., 3., 3.]])
    deltas = coder.encode(boxes, gt)
    assert torch.isfinite(deltas).all()
    assert deltas[0].tolist() == [0., 0., 0., 0.]  # a degenerate gt as its own proposal
