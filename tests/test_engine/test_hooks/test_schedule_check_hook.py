"""ScheduleCheckHook: a schedule longer than the loop is reported with the override to fix."""
import argparse
import logging
import os.path as osp
import shlex

from mmengine.config import Config, DictAction

from mmft.engine import FinetuneRunner
from mmft.engine.hooks.schedule_check_hook import ScheduleCheckHook, schedule_warnings
from tests.tiny_runs import REPO_ROOT, SOURCE_CLASSES, make_shapes_data, tiny_config

# the Cityscapes recipe's (and MMDetection's) schedule
RECIPE = [dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
          dict(type='MultiStepLR', begin=0, end=8, by_epoch=True, milestones=[7], gamma=0.1)]


def test_the_recipe_fits_its_own_loop():
    assert schedule_warnings(RECIPE, 8, 8 * 372, 'train_cfg.max_epochs=8') == []


def test_shorter_loop_names_both_values_and_the_override():
    (message,) = schedule_warnings(RECIPE, 4, 4 * 372, 'train_cfg.max_epochs=4')
    assert message == (
        'param_scheduler.1 (MultiStepLR, in epochs): milestones [7] (from begin=0) include '
        "[7], at or beyond the loop's end: the value never steps there; end=8 lies beyond the "
        "loop's end: the schedule never completes. The training loop runs 4 epochs "
        '(train_cfg.max_epochs=4). To scale the schedule to the loop: --cfg-options '
        'param_scheduler.1.milestones=[3] param_scheduler.1.end=4')


def test_milestone_at_the_loop_length_never_fires():
    (message,) = schedule_warnings([dict(type='MultiStepLR', milestones=[8, 11])], 11, None,
                                   'train_cfg.max_epochs=11')
    assert 'include [11]' in message and message.endswith('param_scheduler.0.milestones=[8]')
    assert schedule_warnings([dict(type='MultiStepLR', milestones=[8, 10])], 11, None, '') == []


def test_milestones_count_from_begin():
    sched = [dict(type='MultiStepLR', by_epoch=False, begin=100, milestones=[60])]
    assert schedule_warnings(sched, None, 161, 'x') == []
    (message,) = schedule_warnings(sched, None, 160, 'train_cfg.max_iters=160')
    assert 'in iterations' in message and 'from begin=100' in message
    assert message.endswith('--cfg-options param_scheduler.0.milestones=[59]')


def test_iteration_schedulers_against_an_epoch_loop_and_unknown_lengths():
    warmup = [dict(type='LinearLR', by_epoch=False, end=500)]
    (message,) = schedule_warnings(warmup, 2, 300, 'train_cfg.max_epochs=2')
    assert message.startswith('param_scheduler.0 (LinearLR, in iterations): end=500 lies')
    assert 'runs 300 iterations (train_cfg.max_epochs=2)' in message
    assert message.endswith('--cfg-options param_scheduler.0.end=300')
    # an iteration loop has no epoch count: by_epoch schedulers are not judged
    assert schedule_warnings(RECIPE[1:], None, 100, 'train_cfg.max_iters=100') == []


def test_single_dict_and_per_optimizer_schedulers():
    one = dict(type='CosineAnnealingLR', by_epoch=True, end=12, T_max=12)
    (message,) = schedule_warnings(one, 6, None, 'train_cfg.max_epochs=6')
    assert message.endswith('--cfg-options param_scheduler.end=6')
    (message,) = schedule_warnings(dict(generator=[one], discriminator=[]), 6, None, '')
    assert message.endswith('--cfg-options param_scheduler.generator.0.end=6')


def test_finetune_runner_warns_at_the_start_of_a_run(tmp_path):
    """A real FinetuneRunner with the README's override: the hook is registered and warns."""
    data = make_shapes_data(str(tmp_path / 'data'), num_train=2, num_val=1)
    cfg = tiny_config(data['source'], str(tmp_path / 'work'), SOURCE_CLASSES)
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=4, val_interval=100)
    cfg.param_scheduler = RECIPE
    runner = FinetuneRunner.from_cfg(cfg)
    (hook,) = [h for h in runner.hooks if isinstance(h, ScheduleCheckHook)]
    messages = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    runner.logger.addHandler(handler)
    try:
        hook.before_train(runner)
    finally:
        runner.logger.removeHandler(handler)
    # 2 images, batch 2: 1 iteration an epoch, 4 in all, so the 500-iteration warmup too
    assert len(messages) == 2
    assert messages[0].endswith('The training loop runs 4 iterations (train_cfg.max_epochs=4). '
                                'To scale the schedule to the loop: --cfg-options '
                                'param_scheduler.0.end=4')
    assert messages[1].endswith('param_scheduler.1.milestones=[3] param_scheduler.1.end=4')


def test_readme_override_fits_the_cityscapes_loop():
    """The README's shortened run names the matching param_scheduler override."""
    with open(osp.join(REPO_ROOT, 'README.md')) as f:
        readme = f.read()
    command = next(line for line in readme.splitlines()
                   if line.startswith('python tools/train.py configs/finetune/cityscapes.py'))
    parser = argparse.ArgumentParser()  # train.py's option, parsed as train.py does
    parser.add_argument('config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(shlex.split(command)[2:])
    cfg = Config.fromfile(osp.join(REPO_ROOT, args.config))
    cfg.merge_from_dict(args.cfg_options)
    assert cfg.train_cfg.max_epochs == 4
    epoch_schedulers = [s for s in cfg.param_scheduler if s.get('by_epoch', True)]
    assert schedule_warnings(epoch_schedulers, 4, None, 'train_cfg.max_epochs=4') == []
