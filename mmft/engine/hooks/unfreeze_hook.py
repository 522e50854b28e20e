"""GradualUnfreezeHook: thaw frozen layers at the iterations or epochs the config names.

The classic recipe: train the new heads on top of a frozen pretrained body for a
while, then let the body adapt too. Stages come from ``finetune.unfreeze``::

    finetune = dict(freeze=['backbone', 'neck'],
                    unfreeze=[dict(patterns=['neck'], iter=500),
                              dict(patterns=['backbone.layer4'], epoch=2)])

FinetuneRunner adds this hook itself when ``finetune.unfreeze`` is set.
"""
from typing import Optional, Set

from mmengine.hooks import Hook

from mmft.registry import HOOKS


@HOOKS.register_module()
class GradualUnfreezeHook(Hook):
    """Before each training iteration, unfreeze the stages whose time has come."""

    priority = 'ABOVE_NORMAL'  # before the optimizer step hooks of the same iteration

    def __init__(self) -> None:
        self._done: Set[int] = set()

    def before_train(self, runner) -> None:
        if not hasattr(runner, 'unfreeze'):
            raise TypeError('GradualUnfreezeHook needs mmft\'s FinetuneRunner (it moves the '
                            'thawed parameters into the optimizer); remove runner_type from the '
                            'config or set it to FinetuneRunner')

    def before_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None
                          ) -> None:
        from mmft.engine.runner import stage_reached
        for index, stage in enumerate(runner.finetune_cfg.unfreeze):
            if index not in self._done and stage_reached(stage, runner.iter, runner.epoch):
                runner.unfreeze(stage.patterns)
                self._done.add(index)
