"""IoULoss and GIoULoss against torchvision's box_iou / generalized_box_iou_loss."""
import math

import pytest
import torch
from torchvision.ops import box_iou, generalized_box_iou_loss

from mmft.models.losses import GIoULoss, IoULoss

PRED = torch.tensor([[0., 0., 10., 10.], [5., 5., 15., 25.], [0., 0., 4., 4.]])
TARGET = torch.tensor([[0., 0., 10., 20.], [5., 5., 15., 25.], [10., 10., 20., 20.]])


def test_iou_modes():
    iou = box_iou(PRED, TARGET).diagonal().clamp(min=1e-6)
    assert torch.allclose(IoULoss(reduction='none', mode='linear')(PRED, TARGET), 1 - iou)
    assert torch.allclose(IoULoss(reduction='none', mode='square')(PRED, TARGET), 1 - iou ** 2)
    log = IoULoss(reduction='none')(PRED, TARGET)  # default mode 'log'
    assert torch.allclose(log, -iou.log())
    assert log[0].item() == pytest.approx(math.log(2)) and log[1].item() == pytest.approx(0)
    assert IoULoss(linear=True).mode == 'linear'


def test_giou_weights_and_avg_factor():
    expected = generalized_box_iou_loss(PRED, TARGET, reduction='none')
    assert torch.allclose(GIoULoss(reduction='none')(PRED, TARGET), expected, atol=1e-6)
    weight = torch.tensor([1., 0.5, 0.])
    got = GIoULoss(loss_weight=2.)(PRED, TARGET, weight=weight, avg_factor=3.)
    assert torch.allclose(got, 2 * (expected * weight).sum() / 3, atol=1e-6)
    # (N, 4) weights are averaged over the coordinates
    got4 = GIoULoss(reduction='sum')(PRED, TARGET, weight=weight[:, None].expand(3, 4))
    assert torch.allclose(got4, (expected * weight).sum(), atol=1e-6)


def test_all_zero_weights_keep_the_graph():
    pred = PRED.clone().requires_grad_()
    loss = GIoULoss()(pred, TARGET, weight=torch.zeros(3))
    assert loss.item() == 0
    loss.backward()
    assert pred.grad is not None


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="mode must be one of"):
        IoULoss(mode='cubic')
    with pytest.raises(ValueError, match=r'same \(N, 4\) shape'):
        GIoULoss()(PRED, TARGET[:2])
