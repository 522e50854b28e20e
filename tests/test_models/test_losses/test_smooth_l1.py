import pytest
import torch
import torch.nn.functional as F

from mmft.models.losses import weight_reduce_loss
from mmft.registry import MODELS

PRED = torch.tensor([[0.0, 0.5, 2.0, -1.0], [0.05, 0.1, 0.0, 3.0]])
TARGET = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.1, 0.0]])


def test_smooth_l1_vs_functional_and_fixed_numbers():
    loss = MODELS.build(dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0))
    torch.testing.assert_close(loss(PRED, TARGET),
                               F.smooth_l1_loss(PRED, TARGET, beta=1.0 / 9.0))
    beta1 = MODELS.build(dict(type='SmoothL1Loss', beta=1.0, reduction='none'))
    # |d| = .5 -> .125 ; |d| = 2 -> 1.5
    assert beta1(PRED, TARGET)[0].tolist() == [0.0, 0.125, 1.5, 0.5]


def test_l1_weight_and_avg_factor():
    l1 = MODELS.build(dict(type='L1Loss', loss_weight=0.5))
    weight = torch.tensor([[1., 1., 1., 1.], [0., 0., 0., 0.]])
    torch.testing.assert_close(l1(PRED, TARGET), 0.5 * F.l1_loss(PRED, TARGET))
    torch.testing.assert_close(l1(PRED, TARGET, weight, avg_factor=2.), torch.tensor(0.5 * 3.5 / 2))
    zero = l1(PRED.requires_grad_(), TARGET, torch.zeros_like(weight))
    assert zero.item() == 0 and zero.requires_grad  # no positives: zero loss, graph kept


def test_weight_reduce_loss_semantics():
    loss = torch.tensor([1., 2., 3.])
    weighted = weight_reduce_loss(loss, torch.tensor([1., 0., 1.]), 'mean')
    assert weighted.item() == pytest.approx(4 / 3)
    assert weight_reduce_loss(loss, None, 'mean', avg_factor=8.).item() == pytest.approx(6 / 8)
    assert weight_reduce_loss(loss, None, 'sum').item() == 6
    assert weight_reduce_loss(loss, None, 'mean', avg_factor=0.).isfinite()
    with pytest.raises(ValueError, match='avg_factor'):
        weight_reduce_loss(loss, None, 'sum', avg_factor=2.)


def test_empty_targets():
    loss = MODELS.build(dict(type='SmoothL1Loss'))
    pred = torch.zeros(0, 4, requires_grad=True)
    out = loss(pred, torch.zeros(0, 4), avg_factor=1.)
    assert out.item() == 0 and out.requires_grad
