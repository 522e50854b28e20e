"""PipelineSwitchHook switches the training dataset's pipeline at its epoch; ExpMomentumEMA
follows the model with MMDetection's decaying momentum."""
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.registry import DefaultScope

from mmft.engine.hooks import PipelineSwitchHook
from mmft.registry import HOOKS, MODELS


class _Dataset:
    pipeline = 'old'


def _runner(epoch, dataset):
    loader = SimpleNamespace(dataset=dataset, persistent_workers=False)
    logger = SimpleNamespace(info=lambda msg: None)
    return SimpleNamespace(epoch=epoch, train_dataloader=loader, logger=logger)


def test_pipeline_switch_hook_switches_once_at_its_epoch():
    with DefaultScope.overwrite_default_scope('mmft'):
        hook = HOOKS.build(dict(type='PipelineSwitchHook', switch_epoch=2,
                                switch_pipeline=[dict(type='RandomFlip', prob=1.0)]))
    inner = _Dataset()
    wrapped = SimpleNamespace(dataset=inner)  # a dataset wrapper without its own pipeline
    hook.before_train_epoch(_runner(1, wrapped))
    assert inner.pipeline == 'old'
    with DefaultScope.overwrite_default_scope('mmft'):
        hook.before_train_epoch(_runner(2, wrapped))
    assert type(inner.pipeline.transforms[0]).__name__ == 'RandomFlip'
    with pytest.raises(ValueError, match='switch_epoch'):
        PipelineSwitchHook(-1, [])


def test_exp_momentum_ema_follows_the_decaying_momentum():
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    with DefaultScope.overwrite_default_scope('mmft'):
        ema = MODELS.build(dict(type='ExpMomentumEMA', model=model, momentum=0.0002,
                                gamma=10))
    expected = 0.0
    for step in range(5):
        with torch.no_grad():
            model.weight.fill_(float(step + 1))
        ema.update_parameters(model)
        if step == 0:  # MMEngine's first update copies the weights
            expected = 1.0
            continue
        m = (1 - 0.0002) * math.exp(-(1 + step) / 10) + 0.0002
        expected = expected + m * (step + 1 - expected)
        assert ema.module.weight[0, 0].item() == pytest.approx(expected, rel=1e-5)
