"""MMDetection's sanity hooks (its SSD / SSDLite configs list them in ``custom_hooks``).

``NumClassCheckHook``: before training and validation, every module with a
``num_classes`` that follows the dataset (not RPN's objectness) must have as many classes
as ``dataset.metainfo['classes']``. ``CheckInvalidLossHook``: every ``interval`` training
iterations the summed loss must be finite.
"""
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmft.registry import HOOKS


@HOOKS.register_module()
class NumClassCheckHook(Hook):
    """Stop before a run whose heads' ``num_classes`` differ from the dataset's classes."""

    def _check(self, runner, mode: str) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        loader = runner.train_dataloader if mode == 'train' else runner.val_dataloader
        classes = getattr(loader.dataset, 'metainfo', {}).get('classes')
        ft = getattr(runner, 'finetune_cfg', None)
        if ft is not None and ft.incremental.enabled:
            classes = runner.dataset_classes()  # the heads have the old and the new classes
        if classes is None:
            runner.logger.warning(f'NumClassCheckHook: the {mode} dataset has no metainfo '
                                  'classes; the heads are not checked')
            return
        if isinstance(classes, str):
            raise TypeError(f'NumClassCheckHook: {mode} dataset metainfo classes is the string '
                            f'{classes!r}; make it a tuple, e.g. classes=({classes!r}, )')
        for name, module in model.named_modules():
            num = getattr(module, 'num_classes', None)
            if not isinstance(num, int) or not getattr(module, 'num_classes_from_dataset', True):
                continue
            if num != len(classes):
                raise ValueError(f'NumClassCheckHook: {name} ({type(module).__name__}) has '
                                 f'num_classes={num} but the {mode} dataset has {len(classes)} '
                                 f'classes {tuple(classes)}; set num_classes={len(classes)} '
                                 "(or num_classes='auto')")

    def before_train_epoch(self, runner) -> None:
        self._check(runner, 'train')

    def before_val_epoch(self, runner) -> None:
        self._check(runner, 'val')


@HOOKS.register_module()
class CheckInvalidLossHook(Hook):
    """Raise when the training loss is NaN or infinite (checked every ``interval`` iters)."""

    def __init__(self, interval: int = 50) -> None:
        self.interval = interval

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if outputs is None or 'loss' not in outputs or \
                not self.every_n_train_iters(runner, self.interval):
            return
        if not torch.isfinite(outputs['loss']).all():
            raise FloatingPointError(f'CheckInvalidLossHook: loss is {outputs["loss"].item()} at '
                                     f'iteration {runner.iter + 1}; lower the learning rate or '
                                     'check the data (empty / degenerate boxes)')
