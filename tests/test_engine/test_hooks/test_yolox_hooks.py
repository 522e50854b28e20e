"""YOLOXModeSwitchHook (drops the mixing transforms and turns on the L1 loss for the last
epochs, once) and SyncNormHook (a no-op on one process; with two gloo processes every BN
state becomes the mean of the ranks')."""
import os
import socket
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope

from mmft.engine.hooks import SyncNormHook, YOLOXModeSwitchHook
from mmft.registry import HOOKS


class Mosaic:
    def __call__(self, results):
        return results


class MixUp(Mosaic):
    pass


class RandomFlip(Mosaic):
    pass


class _MixDataset:
    """What MultiImageMixDataset offers the hook."""

    def __init__(self):
        self.pipeline = [Mosaic(), RandomFlip()]
        self.skipped = None

    def update_skip_type_keys(self, keys):
        self.skipped = tuple(keys)


def _runner(epoch, dataset, max_epochs=10):
    model = SimpleNamespace(bbox_head=SimpleNamespace(use_l1=False))
    loader = SimpleNamespace(dataset=dataset, persistent_workers=False)
    return SimpleNamespace(epoch=epoch, max_epochs=max_epochs, model=model,
                           train_dataloader=loader, logger=SimpleNamespace(info=lambda m: None))


def test_mode_switch_drops_mixing_transforms_and_turns_on_l1_once():
    with DefaultScope.overwrite_default_scope('mmft'):
        hook = HOOKS.build(dict(type='YOLOXModeSwitchHook', num_last_epochs=3))
    dataset = SimpleNamespace(pipeline=Compose([Mosaic(), MixUp(), RandomFlip()]))
    runner = _runner(5, dataset)
    hook.before_train_epoch(runner)  # epoch 6 of 10 is not among the last 3 yet
    assert len(dataset.pipeline.transforms) == 3 and not runner.model.bbox_head.use_l1
    runner.epoch = 6  # (6 + 1) >= 10 - 3, as MMDetection counts
    hook.before_train_epoch(runner)
    assert [type(t).__name__ for t in dataset.pipeline.transforms] == ['RandomFlip']
    assert runner.model.bbox_head.use_l1
    dataset.pipeline = 'untouched'
    runner.epoch = 7
    hook.before_train_epoch(runner)  # switched once only
    assert dataset.pipeline == 'untouched'


def test_mode_switch_tells_a_mix_dataset_what_to_skip():
    dataset = _MixDataset()
    runner = _runner(9, dataset)
    runner.model = SimpleNamespace(module=runner.model)  # unwrapped like a DDP wrapper
    runner.model.module.bbox_head.use_l1 = False
    import mmft.engine.hooks.yolox_mode_switch_hook as mod
    original = mod.is_model_wrapper
    mod.is_model_wrapper = lambda m: hasattr(m, 'module')
    try:
        YOLOXModeSwitchHook(num_last_epochs=1).before_train_epoch(runner)
    finally:
        mod.is_model_wrapper = original
    assert dataset.skipped == ('Mosaic', 'RandomAffine', 'MixUp')
    assert runner.model.module.bbox_head.use_l1


def test_mode_switch_errors_are_named():
    with pytest.raises(ValueError, match='num_last_epochs'):
        YOLOXModeSwitchHook(num_last_epochs=-1)
    runner = _runner(9, _MixDataset())
    runner.model = SimpleNamespace(bbox_head=SimpleNamespace())
    with pytest.raises(TypeError, match='use_l1'):
        YOLOXModeSwitchHook(num_last_epochs=1).before_train_epoch(runner)


def _bn_model(rank):
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    bn = model[1]
    bn.running_mean.fill_(float(rank + 1))
    bn.running_var.fill_(float(2 * rank + 1))
    bn.weight.data.fill_(float(rank))
    bn.num_batches_tracked.fill_(4 * rank)
    model[0].weight.data.fill_(float(rank))
    return model


def test_sync_norm_is_a_no_op_on_one_process():
    model = _bn_model(1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    SyncNormHook().before_val_epoch(SimpleNamespace(model=model))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def _sync_worker(rank, port, out):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    try:
        model = _bn_model(rank)
        SyncNormHook().before_val_epoch(SimpleNamespace(model=model))
        torch.save(model.state_dict(), os.path.join(out, f'{rank}.pth'))
    finally:
        dist.destroy_process_group()


def test_sync_norm_averages_bn_states_over_two_gloo_processes(tmp_path):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    # fork: the workers need not import the test module again (seconds, not tens)
    mp.start_processes(_sync_worker, args=(port, str(tmp_path)), nprocs=2, start_method='fork')
    states = [torch.load(tmp_path / f'{r}.pth') for r in range(2)]
    for state in states:
        assert torch.equal(state['1.running_mean'], torch.full((2,), 1.5))
        assert torch.equal(state['1.running_var'], torch.full((2,), 2.0))
        assert torch.equal(state['1.weight'], torch.full((2,), 0.5))
        assert state['1.num_batches_tracked'].item() == 2
    # convs are not norms: each rank keeps its own
    assert states[0]['0.weight'].sum() == 0 and states[1]['0.weight'].sum() == 2
