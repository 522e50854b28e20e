"""Freezing by pattern; frozen BatchNorm stays in eval mode; unfreezing undoes both."""
import pytest
import torch

from mmft.finetune.freeze import freeze, parameter_counts, unfreeze
from mmft.finetune.optim_groups import optimizer_param_ids, park_frozen, unpark


def test_freeze_and_norm_eval(make_detector):
    model = make_detector(3)
    names = freeze(model, ['backbone'])
    assert names == ['backbone.conv1.weight', 'backbone.bn1.weight', 'backbone.bn1.bias',
                     'backbone.layer1.weight', 'backbone.layer1.bias']
    assert all(not p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.roi_head.parameters())
    model.train()  # the runner calls this every epoch
    assert not model.backbone.bn1.training and model.roi_head.training
    mean = model.backbone.bn1.running_mean.clone()
    model.backbone(torch.randn(2, 3, 8, 8))
    assert torch.equal(model.backbone.bn1.running_mean, mean)
    counts = parameter_counts(model)
    assert counts['frozen'] == sum(p.numel() for p in model.backbone.parameters())


def test_unfreeze_restores_training_mode(make_detector):
    model = make_detector(3)
    freeze(model, ['backbone'])
    assert unfreeze(model, ['backbone.bn1']) == ['backbone.bn1.weight', 'backbone.bn1.bias']
    model.train()
    assert model.backbone.bn1.training
    assert not model.backbone.conv1.weight.requires_grad


def test_typo_in_freeze_is_an_error(make_detector):
    with pytest.raises(ValueError, match="finetune.freeze 'backbone.layr1' matches no name"):
        freeze(make_detector(3), ['backbone.layr1'])


def test_frozen_params_are_parked_and_come_back_at_the_scheduled_lr(make_detector):
    model = make_detector(3)
    freeze(model, ['backbone'])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    parked = park_frozen(optimizer)
    ids = optimizer_param_ids(optimizer)
    assert all(id(p) not in ids for p in model.backbone.parameters())
    assert all(id(p) in ids for p in model.roi_head.parameters())
    # the schedule has decayed lr to a tenth by the time the backbone thaws
    for group in optimizer.param_groups:
        group['initial_lr'], group['lr'] = 0.1, 0.01
    unfreeze(model, ['backbone'])
    assert unpark(optimizer, parked) == 5
    assert optimizer.param_groups[-1]['lr'] == pytest.approx(0.01)
    assert optimizer.param_groups[-1]['initial_lr'] == pytest.approx(0.1)
    assert all(id(p) in optimizer_param_ids(optimizer) for p in model.parameters())
    assert parked == []


def test_everything_frozen_is_refused(make_detector):
    model = make_detector(3)
    freeze(model, ['*'])
    with pytest.raises(ValueError, match='every parameter is frozen'):
        park_frozen(torch.optim.SGD(model.parameters(), lr=0.1))
