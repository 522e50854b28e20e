"""QualityFocalLoss against values computed by hand from its formula."""
import math

import pytest
import torch

from mmft.models.losses import QualityFocalLoss, quality_focal_loss


def _sig(x):
    return 1 / (1 + math.exp(-x))


def _bce(p, y):
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_pair_target_matches_the_formula():
    pred = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    labels = torch.tensor([1, 2])  # second prediction: background (2 = num_classes)
    scores = torch.tensor([0.8, 0.0])
    out = quality_focal_loss(pred, (labels, scores), beta=2.0)
    # row 0: class 0 negative, class 1 positive with target 0.8
    p00, p01 = _sig(0.5), _sig(-1.0)
    row0 = _bce(p00, 0) * p00 ** 2 + _bce(p01, 0.8) * abs(0.8 - p01) ** 2
    p10, p11 = _sig(2.0), _sig(0.0)
    row1 = _bce(p10, 0) * p10 ** 2 + _bce(p11, 0) * p11 ** 2
    assert out.tolist() == pytest.approx([row0, row1], rel=1e-5)


def test_module_weights_averages_and_soft_target():
    pred = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    loss = QualityFocalLoss(loss_weight=2.0)
    target = (torch.tensor([1, 2]), torch.tensor([0.8, 0.0]))
    per = quality_focal_loss(pred, target)
    weight = torch.tensor([1.0, 0.0])
    assert loss(pred, target, weight, avg_factor=4.0).item() == \
        pytest.approx(2.0 * per[0].item() / 4.0, rel=1e-5)
    soft = torch.tensor([[0.0, 0.8], [0.0, 0.0]])
    assert torch.allclose(quality_focal_loss(pred, soft), per)
    with pytest.raises(ValueError, match='use_sigmoid'):
        QualityFocalLoss(use_sigmoid=False)
    with pytest.raises(ValueError, match='weight'):
        loss(pred, target, torch.ones(2, 2))
