"""``YOLOXModeSwitchHook`` (MMDetection 3.x name and arguments): for the last
``num_last_epochs`` epochs YOLOX trains without Mosaic / RandomAffine / MixUp and with the
L1 box loss (``bbox_head.use_l1``)."""
from typing import Sequence

from mmengine.dataset import Compose
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmft.registry import HOOKS
from .pipeline_switch_hook import _pipeline_owner, restart_workers, set_train_pipeline


@HOOKS.register_module()
class YOLOXModeSwitchHook(Hook):
    """Drop the mixing transforms and switch the L1 loss on near the end of training.

    A dataset with ``update_skip_type_keys`` (MMDetection's ``MultiImageMixDataset``) is
    told which transform types to skip; any other dataset's pipeline is rebuilt without
    them (as :class:`PipelineSwitchHook` switches pipelines).

    Args:
        num_last_epochs: epochs at the end that run in the switched mode.
        skip_type_keys: transform type names to drop.
    """

    def __init__(self, num_last_epochs: int = 15,
                 skip_type_keys: Sequence[str] = ('Mosaic', 'RandomAffine', 'MixUp')) -> None:
        if not isinstance(num_last_epochs, int) or num_last_epochs < 0:
            raise ValueError(f'YOLOXModeSwitchHook num_last_epochs must be an int >= 0, got '
                             f'{num_last_epochs!r}')
        self.num_last_epochs = num_last_epochs
        self.skip_type_keys = tuple(skip_type_keys)
        self._has_switched = False

    def before_train_epoch(self, runner) -> None:
        if self._has_switched or runner.epoch + 1 < runner.max_epochs - self.num_last_epochs:
            return
        loader = runner.train_dataloader
        dataset = loader.dataset
        if hasattr(dataset, 'update_skip_type_keys'):
            dataset.update_skip_type_keys(self.skip_type_keys)
            restart_workers(loader)
        else:
            pipeline = _pipeline_owner(dataset).pipeline
            transforms = pipeline.transforms if isinstance(pipeline, Compose) else pipeline
            kept = [t for t in transforms if type(t).__name__ not in self.skip_type_keys]
            set_train_pipeline(loader, Compose(kept))
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        head = model.detector.bbox_head if hasattr(model, 'detector') else model.bbox_head
        if not hasattr(head, 'use_l1'):
            raise TypeError(f'YOLOXModeSwitchHook: {type(head).__name__} has no use_l1 switch '
                            '(the hook is for YOLOXHead)')
        head.use_l1 = True
        runner.logger.info(f'YOLOXModeSwitchHook: from epoch {runner.epoch} without '
                           f'{", ".join(self.skip_type_keys)}, with the L1 loss')
        self._has_switched = True
