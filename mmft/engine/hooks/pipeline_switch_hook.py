"""``PipelineSwitchHook`` (MMDetection 3.x name and arguments): from ``switch_epoch`` on,
the training dataset runs ``switch_pipeline`` (RTMDet drops Mosaic / MixUp for its last
epochs). The dataloader's workers hold copies of the old pipeline, so the loader is told
to start new workers."""
from typing import Dict, List

from mmengine.dataset import Compose
from mmengine.hooks import Hook

from mmft.registry import HOOKS


def _pipeline_owner(dataset):
    """The dataset whose ``pipeline`` the loader's samples run (through wrappers)."""
    while not hasattr(dataset, 'pipeline') and hasattr(dataset, 'dataset'):
        dataset = dataset.dataset
    if not hasattr(dataset, 'pipeline'):
        raise TypeError(f'PipelineSwitchHook: {type(dataset).__name__} has no pipeline to '
                        'switch')
    return dataset


def restart_workers(loader) -> None:
    """Make ``loader`` start new workers at its next epoch: persistent workers keep the
    dataset they were started with."""
    if getattr(loader, 'persistent_workers', False):
        loader._DataLoader__initialized = False
        loader._iterator = None
        loader._DataLoader__initialized = True


def set_train_pipeline(loader, pipeline) -> None:
    """Give the dataset behind ``loader`` (through wrappers) ``pipeline`` from its next
    epoch on."""
    _pipeline_owner(loader.dataset).pipeline = pipeline
    restart_workers(loader)


@HOOKS.register_module()
class PipelineSwitchHook(Hook):
    """Switch the training pipeline at an epoch.

    Args:
        switch_epoch: first epoch (0-based, as ``runner.epoch``) of the new pipeline.
        switch_pipeline: the new list of transform configs.
    """

    def __init__(self, switch_epoch: int, switch_pipeline: List[Dict]) -> None:
        if not isinstance(switch_epoch, int) or switch_epoch < 0:
            raise ValueError(f'PipelineSwitchHook switch_epoch must be an int >= 0, got '
                             f'{switch_epoch!r}')
        self.switch_epoch = switch_epoch
        self.switch_pipeline = switch_pipeline
        self._switched = False

    def before_train_epoch(self, runner) -> None:
        if self._switched or runner.epoch < self.switch_epoch:
            return
        set_train_pipeline(runner.train_dataloader, Compose(self.switch_pipeline))
        runner.logger.info(f'PipelineSwitchHook: training pipeline switched at epoch '
                           f'{runner.epoch}')
        self._switched = True
