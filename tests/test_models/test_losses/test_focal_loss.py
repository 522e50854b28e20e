"""FocalLoss against torchvision's sigmoid_focal_loss (an implementation no one here wrote)."""
import pytest
import torch
from torchvision.ops import sigmoid_focal_loss as tv_focal

from mmft.models.losses import FocalLoss


def test_matches_torchvision_elementwise_and_with_avg_factor():
    torch.manual_seed(0)
    pred = torch.randn(12, 5) * 3
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 5, 5, 2, 5, 0, 5])  # 5 = background
    onehot = torch.zeros(12, 5)
    onehot[labels < 5, labels[labels < 5]] = 1
    expected = tv_focal(pred, onehot, alpha=0.25, gamma=2.0, reduction='none')
    got = FocalLoss(reduction='none')(pred, labels)
    assert torch.allclose(got, expected, atol=1e-6)
    # avg_factor: sum / avg_factor, times loss_weight
    loss = FocalLoss(loss_weight=2.0)(pred, labels, avg_factor=4)
    assert torch.allclose(loss, 2.0 * expected.sum() / 4, atol=1e-6)
    # soft / one-hot targets of pred's shape give the same
    assert torch.allclose(FocalLoss(reduction='sum')(pred, onehot), expected.sum(), atol=1e-5)


def test_per_prior_weights_and_gamma_alpha():
    torch.manual_seed(1)
    pred, labels = torch.randn(6, 3), torch.tensor([0, 3, 1, 3, 2, 3])
    onehot = torch.nn.functional.one_hot(labels, 4)[:, :3].float()
    weight = torch.tensor([1., 0., 1., 1., 0.5, 0.])
    expected = tv_focal(pred, onehot, alpha=0.5, gamma=1.0, reduction='none') * weight[:, None]
    got = FocalLoss(gamma=1.0, alpha=0.5, reduction='sum')(pred, labels, weight)
    assert torch.allclose(got, expected.sum(), atol=1e-6)
    probs = pred.sigmoid()
    activated = FocalLoss(gamma=1.0, alpha=0.5, reduction='sum', activated=True)
    assert torch.allclose(activated(probs, labels, weight), expected.sum(), atol=1e-5)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r'labels must lie in \[0, 3\]'):
        FocalLoss()(torch.randn(2, 3), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match='use_sigmoid=True only'):
        FocalLoss(use_sigmoid=False)
    with pytest.raises(ValueError, match='2 labels for 3 predictions'):
        FocalLoss()(torch.randn(3, 3), torch.tensor([0, 1]))
