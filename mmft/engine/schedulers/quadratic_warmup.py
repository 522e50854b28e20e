"""Quadratic warm-up (YOLOX): the value grows as the square of the elapsed fraction.

From ``begin`` to ``end`` (``T = end - begin`` steps) the value after step ``t`` is
``base * ((t + 1) / T) ** 2``. Each step adds ``base * (2t + 1) / T**2`` to the group's
current value rather than setting it, so that another scheduler acting on the same value
in the same steps composes with it as MMEngine's chained schedulers do (MMDetection's
QuadraticWarmupParamScheduler behaves the same).
"""
from typing import List

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.momentum_scheduler import MomentumSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler

from mmft.registry import PARAM_SCHEDULERS


@PARAM_SCHEDULERS.register_module()
class QuadraticWarmupParamScheduler(_ParamScheduler):
    """Warm ``param_name`` up quadratically from 0 to its base value over ``[begin, end)``.

    Args:
        optimizer: the optimizer (or OptimWrapper) whose groups are scheduled.
        param_name: the group key, e.g. ``'lr'``.
        begin, end: the steps (iterations, or epochs with ``by_epoch``) of the warm-up;
            ``end`` must be finite.
        last_step, by_epoch, verbose: as MMEngine's schedulers.
    """

    def __init__(self, optimizer, param_name: str, begin: int = 0, end: int = INF,
                 last_step: int = -1, by_epoch: bool = True, verbose: bool = False) -> None:
        if end >= INF or end <= begin:
            raise ValueError(f'{type(self).__name__} needs a finite end after begin, got '
                             f'begin={begin}, end={end}: set end to the step where the '
                             'warm-up is over (e.g. end=5 epochs)')
        self.total_iters = end - begin
        super().__init__(optimizer=optimizer, param_name=param_name, begin=begin, end=end,
                         last_step=last_step, by_epoch=by_epoch, verbose=verbose)

    @classmethod
    def build_iter_from_epoch(cls, *args, begin: int = 0, end: int = INF,
                              by_epoch: bool = True, epoch_length: int = None, **kwargs):
        """The same warm-up in iterations (``convert_to_iter_based=True``)."""
        if not by_epoch:
            raise ValueError(f'{cls.__name__}: convert_to_iter_based needs by_epoch=True')
        if epoch_length is None or epoch_length <= 0:
            raise ValueError(f'{cls.__name__}: epoch_length must be a positive int, got '
                             f'{epoch_length}')
        end = end if end == INF else end * epoch_length
        return cls(*args, begin=begin * epoch_length, end=end, by_epoch=False, **kwargs)

    def _get_value(self) -> List[float]:
        step = self.last_step
        increments = [base * (2 * step + 1) / self.total_iters ** 2 for base in self.base_values]
        if step == 0:  # the first step sets the value: the warm-up starts from zero
            return increments
        return [group[self.param_name] + inc
                for group, inc in zip(self.optimizer.param_groups, increments)]


@PARAM_SCHEDULERS.register_module()
class QuadraticWarmupLR(LRSchedulerMixin, QuadraticWarmupParamScheduler):
    """Quadratic warm-up of the learning rate."""


@PARAM_SCHEDULERS.register_module()
class QuadraticWarmupMomentum(MomentumSchedulerMixin, QuadraticWarmupParamScheduler):
    """Quadratic warm-up of the momentum (or Adam's beta1)."""
