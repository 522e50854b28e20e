"""GradualUnfreezeHook: thaw frozen layers at the iterations or epochs the config names.

The classic recipe: train the new heads on top of a frozen pretrained body for a
while, then let the body adapt too. Stages come from ``finetune.unfreeze``::

    finetune = dict(freeze=['backbone', 'neck'],
                    unfreeze=[dict(patterns=['neck'], iter=500),
                              dict(patterns=['backbone.layer4'], epoch=2)])

FinetuneRunner adds this hook itself when ``finetune.unfreeze`` is set. Each
checkpoint records the stages applied so far, in order, so that a resumed run
re-creates the same optimizer groups before it loads the optimizer state.
"""
from typing import Optional

from mmengine.hooks import Hook

from mmft.registry import HOOKS


@HOOKS.register_module()
class GradualUnfreezeHook(Hook):
    """Before each training iteration, apply the unfreezing stages whose time has come."""

    priority = 'ABOVE_NORMAL'  # before the optimizer step hooks of the same iteration

    def before_train(self, runner) -> None:
        if not hasattr(runner, 'apply_unfreeze_stage'):
            raise TypeError('GradualUnfreezeHook needs mmft\'s FinetuneRunner (it moves the '
                            'thawed parameters into the optimizer); remove runner_type from the '
                            'config or set it to FinetuneRunner')

    def before_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None
                          ) -> None:
        for index, stage in enumerate(runner.finetune_cfg.unfreeze):
            if index not in runner.unfrozen_stages and stage.reached(runner.iter, runner.epoch):
                runner.apply_unfreeze_stage(index)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        from mmft.engine.runner import UNFROZEN_STAGES
        checkpoint.setdefault('meta', {})[UNFROZEN_STAGES] = list(runner.unfrozen_stages)
