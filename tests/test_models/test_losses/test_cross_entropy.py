import pytest
import torch
import torch.nn.functional as F

from mmft.registry import MODELS

PRED = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0], [1.0, 1.0, 1.0]])
LABEL = torch.tensor([0, 2, 1, 2])


def test_softmax_vs_functional_and_fixed_number():
    loss = MODELS.build(dict(type='CrossEntropyLoss', loss_weight=2.0))
    torch.testing.assert_close(loss(PRED, LABEL), 2.0 * F.cross_entropy(PRED, LABEL))
    # fixed number: row 3 is uniform over 3 classes
    torch.testing.assert_close(MODELS.build(dict(type='CrossEntropyLoss'))(
        PRED[3:], LABEL[3:]), torch.tensor(1.0986123))


def test_softmax_weight_avg_factor_class_weight_ignore():
    ce = MODELS.build(dict(type='CrossEntropyLoss'))
    weight = torch.tensor([1., 0., 1., 1.])
    per = F.cross_entropy(PRED, LABEL, reduction='none')
    torch.testing.assert_close(ce(PRED, LABEL, weight, avg_factor=5.),
                               (per * weight).sum() / 5.)
    torch.testing.assert_close(ce(PRED, LABEL, reduction_override='sum'), per.sum())
    cw = MODELS.build(dict(type='CrossEntropyLoss', class_weight=[1., 2., 3.]))
    torch.testing.assert_close(
        cw(PRED, LABEL),
        F.cross_entropy(PRED, LABEL, weight=torch.tensor([1., 2., 3.]), reduction='none').mean())
    ign = MODELS.build(dict(type='CrossEntropyLoss', ignore_index=2, avg_non_ignore=True))
    torch.testing.assert_close(ign(PRED, LABEL), per[[0, 2]].mean())


def test_sigmoid_expands_labels_background_is_num_classes():
    bce = MODELS.build(dict(type='CrossEntropyLoss', use_sigmoid=True))
    pred = PRED[:, :2]
    label = torch.tensor([0, 2, 1, 2])  # 2 == background: all-zero target
    target = torch.tensor([[1., 0.], [0., 0.], [0., 1.], [0., 0.]])
    torch.testing.assert_close(bce(pred, label), F.binary_cross_entropy_with_logits(pred, target))
    weight = torch.tensor([1., 1., 0., 1.])
    expected = (F.binary_cross_entropy_with_logits(pred, target, reduction='none')
                * weight[:, None]).sum() / 3.
    torch.testing.assert_close(bce(pred, label, weight, avg_factor=3.), expected)
    # same-shape 0/1 targets
    torch.testing.assert_close(bce(pred, target), F.binary_cross_entropy_with_logits(pred, target))


def test_mask_loss_uses_the_label_channel():
    torch.manual_seed(0)
    pred = torch.randn(3, 4, 5, 5)
    target = (torch.rand(3, 5, 5) > 0.5).float()
    label = torch.tensor([1, 3, 0])
    loss = MODELS.build(dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))
    out = loss(pred, target, label)
    assert out.shape == (1,)
    expected = F.binary_cross_entropy_with_logits(pred[[0, 1, 2], [1, 3, 0]], target)
    torch.testing.assert_close(out[0], expected)
    assert loss(pred[:0], target[:0], label[:0]).item() == 0


def test_invalid_reduction_and_flags():
    with pytest.raises(ValueError, match='reduction'):
        MODELS.build(dict(type='CrossEntropyLoss', reduction='avg'))(PRED, LABEL)
    with pytest.raises(ValueError, match='use_sigmoid'):
        MODELS.build(dict(type='CrossEntropyLoss', use_sigmoid=True, use_mask=True))
