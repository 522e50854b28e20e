"""DiceLoss against values worked out by hand from MMDetection's formula."""
import pytest
import torch

from mmft.models.losses import DiceLoss, dice_loss

# two instances of 4 pixels: probabilities and binary targets
PROB = torch.tensor([[0.5, 0.5, 0.0, 1.0], [0.2, 0.0, 0.0, 0.0]])
TARGET = torch.tensor([[1, 0, 0, 1], [0, 0, 0, 0]])


def test_vnet_form_by_hand():
    # instance 0: inter 0.5 + 1 = 1.5; sum p^2 = 1.5; sum t^2 = 2 -> 1 - 3 / 3.5
    # instance 1: inter 0; sum p^2 = 0.04 -> 1 - 0 = 1
    loss = dice_loss(PROB, TARGET, eps=0.0, reduction='none')
    assert torch.allclose(loss, torch.tensor([1 - 3 / 3.5, 1.0]))
    # eps is added to each sum of squares
    loss = dice_loss(PROB, TARGET, eps=0.5, reduction='none')
    assert torch.allclose(loss[0], torch.tensor(1 - 3 / 4.5))


def test_naive_form_by_hand():
    # instance 0: (2 * 1.5 + 1) / (2 + 2 + 1); instance 1: (0 + 1) / (0.2 + 0 + 1)
    loss = dice_loss(PROB, TARGET, eps=1.0, naive_dice=True, reduction='none')
    assert torch.allclose(loss, torch.tensor([1 - 4 / 5, 1 - 1 / 1.2]))


def test_module_sigmoid_weight_and_avg_factor():
    logits = torch.logit(PROB.clamp(1e-6, 1 - 1e-6)).reshape(2, 2, 2)
    module = DiceLoss(loss_weight=2.0, eps=1e-8)
    per = dice_loss(PROB, TARGET, eps=1e-8, reduction='none')
    assert torch.allclose(module(logits, TARGET.reshape(2, 2, 2)), 2.0 * per.mean(), atol=1e-5)
    assert torch.allclose(module(logits, TARGET, avg_factor=4.0), 2.0 * per.sum() / 4, atol=1e-5)
    weight = torch.tensor([1.0, 0.0])
    assert torch.allclose(module(logits, TARGET, weight=weight, reduction_override='sum'),
                          2.0 * per[0], atol=1e-5)
    # activate=False takes probabilities as they are
    assert torch.allclose(DiceLoss(activate=False, eps=1e-8)(PROB, TARGET), per.mean(),
                          atol=1e-6)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match='same number'):
        dice_loss(PROB, TARGET[:, :3])
    with pytest.raises(ValueError, match='weight'):
        dice_loss(PROB, TARGET, weight=torch.ones(3))
    with pytest.raises(ValueError, match='use_sigmoid'):
        DiceLoss(use_sigmoid=False)
