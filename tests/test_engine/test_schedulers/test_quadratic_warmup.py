"""QuadraticWarmupLR / Momentum (YOLOX's warm-up), and MMDetection's ``mmdet.`` type names."""
import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope

from mmft.engine.schedulers import QuadraticWarmupLR, QuadraticWarmupMomentum
from mmft.registry import PARAM_SCHEDULERS


def _optim(lr=0.01, momentum=0.9):
    params = [torch.nn.Parameter(torch.zeros(2))]
    return torch.optim.SGD(params, lr=lr, momentum=momentum)


def test_lr_grows_as_the_square_of_the_elapsed_fraction_then_stays():
    optim = _optim()
    scheduler = QuadraticWarmupLR(optim, begin=0, end=4, by_epoch=False)
    seen = []
    for _ in range(6):
        seen.append(optim.param_groups[0]['lr'])
        optim.step()
        scheduler.step()
    expected = [0.01 * ((t + 1) / 4) ** 2 for t in range(4)] + [0.01, 0.01]
    assert seen == pytest.approx(expected)


def test_momentum_and_begin_offset():
    optim = _optim(momentum=0.8)
    scheduler = QuadraticWarmupMomentum(optim, begin=2, end=4, by_epoch=False)
    seen = []
    for _ in range(5):
        seen.append(optim.param_groups[0]['momentum'])
        optim.step()
        scheduler.step()
    # untouched before begin; then 1/4 and 4/4 of the base
    assert seen == pytest.approx([0.8, 0.8, 0.2, 0.8, 0.8])


def test_epoch_based_warm_up_converts_to_iterations():
    optim = _optim()
    scheduler = QuadraticWarmupLR.build_iter_from_epoch(optim, begin=0, end=2,
                                                        epoch_length=3)
    assert (scheduler.begin, scheduler.end, scheduler.by_epoch) == (0, 6, False)
    assert optim.param_groups[0]['lr'] == pytest.approx(0.01 / 36)


def test_needs_a_finite_end():
    with pytest.raises(ValueError, match='finite end'):
        QuadraticWarmupLR(_optim(), begin=0)


def test_mmdetection_scoped_names_build_under_mmft():
    """YOLOX's configs write type='mmdet.QuadraticWarmupLR': the name means mmft's type."""
    optim = OptimWrapper(_optim())
    with DefaultScope.overwrite_default_scope('mmft'):
        scheduler = PARAM_SCHEDULERS.build(
            dict(type='mmdet.QuadraticWarmupLR', by_epoch=True, begin=0, end=5,
                 convert_to_iter_based=True), default_args=dict(optimizer=optim,
                                                                 epoch_length=10))
    assert isinstance(scheduler, QuadraticWarmupLR) and scheduler.end == 50
    with DefaultScope.overwrite_default_scope('mmft'), pytest.raises(KeyError, match='mmdet'):
        PARAM_SCHEDULERS.build(dict(type='mmdet.NoSuchLR'),
                               default_args=dict(optimizer=optim))
