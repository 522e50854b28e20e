"""CheckpointHook: a run stopped at any moment of a save resumes where an uninterrupted run
would be; outdated checkpoints go only after the new one is in place; bad arguments fail
when the hook is built."""
import glob
import itertools
import logging
import os.path as osp

import pytest
import torch
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.hooks import Hook
from mmengine.logging import MessageHub, MMLogger
from mmengine.model import BaseModel
from mmengine.runner import Runner

from mmft.engine import FinetuneRunner
from mmft.engine.checkpoints import NoCheckpointToResumeError, find_resume_checkpoint
from mmft.engine.hooks import CheckpointHook
from mmft.checkpoint import torch_load_safely
from mmft.registry import HOOKS
from tests.kill_during_save import Killed, stop_at

MAX_ITERS = 8
INTERVAL = 2
# a chain of runs, each resumed from what the previous one left and stopped at the next
# moment: (event, file, the iteration the next run must resume from)
CHAIN = [
    ('write', 'iter_4.pth', 2),  # killed while writing the new checkpoint
    ('rename', 'iter_4.pth', 2),  # written to its temporary file, not yet renamed
    ('write', 'last_checkpoint', 2),  # new checkpoint in place, pointer half-written
    ('rename', 'last_checkpoint', 2),
    ('remove', 'iter_2.pth', 4),  # the gap: new one named, the old one not yet deleted
    ('removed', 'iter_4.pth', 6),  # old one deleted
]


class RecordLr(Hook):
    priority = 'HIGHEST'  # before CheckpointHook saves (and maybe stops the run)

    def __init__(self) -> None:
        self.lrs = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.lrs[runner.iter + 1] = runner.optim_wrapper.get_lr()['lr'][0]


@pytest.fixture
def log_messages():
    """Messages logged through MMEngine's current logger during the test."""
    messages = []

    class _Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    logger = MMLogger.get_current_instance()
    handler = _Collect(level=logging.DEBUG)
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)


class _Toy(BaseModel):
    """One weight pulled towards each sample: its value depends on every step, in order."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, mode='tensor'):
        if mode == 'loss':
            return dict(loss=((self.weight - x) ** 2).mean())
        return [x]


def _loader(num: int = 4) -> dict:
    return dict(dataset=[dict(x=torch.tensor([float(i)])) for i in range(num)],
                sampler=dict(type='DefaultSampler', shuffle=False), batch_size=1,
                collate_fn=dict(type='default_collate'))


def _run(work_dir, hook_type='CheckpointHook', resume='auto'):
    """FinetuneRunner (its resume path) on a toy model: a run takes a fraction of a second."""
    runner = FinetuneRunner(
        model=_Toy(), work_dir=str(work_dir), train_dataloader=_loader(),
        train_cfg=dict(by_epoch=False, max_iters=MAX_ITERS),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                              end=MAX_ITERS)],
        default_hooks=dict(checkpoint=dict(type=hook_type, by_epoch=False, interval=INTERVAL,
                                           max_keep_ckpts=1)),
        resume=resume, default_scope='mmft', log_level='WARNING',
        experiment_name=f'ckpt-{next(_RUNS)}')
    recorder = RecordLr()
    runner.register_hook(recorder)
    return runner, recorder


_RUNS = itertools.count()


def _step(path: str) -> int:
    return int(osp.basename(path)[len('iter_'):-len('.pth')])


def test_a_run_stopped_at_any_moment_of_saving_resumes_like_an_uninterrupted_one(tmp_path):
    reference, ref_lrs = _run(tmp_path / 'reference', resume=False)
    reference.train()
    assert sorted(ref_lrs.lrs) == list(range(1, MAX_ITERS + 1))

    work_dir = str(tmp_path / 'killed')
    expected_start, temps = 0, []
    for event, name, resumes_at in CHAIN:
        runner, recorder = _run(work_dir)
        with stop_at(event, name) as state, pytest.raises(Killed):
            runner.train()
        assert state['stopped']
        assert min(recorder.lrs) == expected_start + 1, (event, name)
        for it, lr in recorder.lrs.items():
            assert lr == pytest.approx(ref_lrs.lrs[it], rel=1e-6), (event, name, it)
        # the previous run's unfinished writes were removed when this one started
        assert not [t for t in temps if osp.exists(t)]
        temps = glob.glob(osp.join(work_dir, '.*.tmp'))
        if event in ('write', 'rename'):
            assert [osp.basename(t).startswith(f'.{name}.') for t in temps] == [True]
        latest = find_resume_checkpoint(work_dir)
        assert _step(latest) == resumes_at, (event, name)
        assert torch_load_safely(latest)['meta']['iter'] == resumes_at
        expected_start = resumes_at

    runner, recorder = _run(work_dir)
    runner.train()
    assert sorted(recorder.lrs) == list(range(expected_start + 1, MAX_ITERS + 1))
    for it, lr in recorder.lrs.items():
        assert lr == pytest.approx(ref_lrs.lrs[it], rel=1e-6), it
    assert not glob.glob(osp.join(work_dir, '.*.tmp'))
    assert sorted(osp.basename(p) for p in glob.glob(osp.join(work_dir, '*.pth'))) == \
        [f'iter_{MAX_ITERS}.pth']  # max_keep_ckpts=1, untracked leftovers included
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work_dir, f'iter_{MAX_ITERS}.pth')
    # the same data order, optimizer momentum and schedule: the same weight
    assert torch.equal(runner.model.weight, reference.model.weight)
    assert reference.model.weight.item() != 0


def test_mmengines_own_hook_loses_the_only_checkpoint_in_the_gap(tmp_path):
    """What the hook fixes; resuming then refuses instead of silently starting over."""
    runner, _ = _run(tmp_path, hook_type='mmengine.CheckpointHook')
    with stop_at('removed', 'iter_2.pth'), pytest.raises(Killed):
        runner.train()
    assert not glob.glob(str(tmp_path / '*.pth'))
    with pytest.raises(NoCheckpointToResumeError, match='names .*iter_2.pth, which does not '
                       'exist.*no other complete checkpoint.*delete .*last_checkpoint'):
        find_resume_checkpoint(str(tmp_path))
    # --resume refuses too, instead of restarting at iteration 1 (from load_from, if set)
    resumed, recorder = _run(tmp_path)
    with pytest.raises(NoCheckpointToResumeError):
        resumed.train()
    assert not recorder.lrs


def test_a_stale_or_broken_pointer_falls_back_to_the_newest_complete_checkpoint(
        tmp_path, log_messages):
    good = tmp_path / 'iter_4.pth'
    torch.save({'state_dict': {}}, good)
    torch.save({'state_dict': {}}, tmp_path / 'iter_6.pth')
    data = (tmp_path / 'iter_6.pth').read_bytes()
    (tmp_path / 'iter_6.pth').write_bytes(data[:len(data) // 2])  # cut short by hand
    (tmp_path / 'iter_8.pth').write_bytes(b'')
    pointer = tmp_path / 'last_checkpoint'
    pointer.write_text(str(tmp_path / 'iter_2.pth'))
    assert find_resume_checkpoint(str(tmp_path)) == str(good)
    assert any('iter_2.pth, which does not exist; resuming from the newest complete '
               'checkpoint' in m for m in log_messages)
    pointer.write_text(str(tmp_path / 'iter_6.pth'))
    assert find_resume_checkpoint(str(tmp_path)) == str(good)
    assert any('iter_6.pth, which is incomplete' in m for m in log_messages)
    pointer.write_text(str(good))
    assert find_resume_checkpoint(str(tmp_path)) == str(good)
    pointer.unlink()  # no pointer: the newest complete file, silently
    assert find_resume_checkpoint(str(tmp_path)) == str(good)
    assert find_resume_checkpoint(str(tmp_path / 'nothing')) is None


@pytest.mark.parametrize('kwargs, error, message', [
    (dict(interva=1), TypeError, r"unknown argument\(s\) \['interva'\]; did you mean "
                                 r"'interval'\?"),
    (dict(interval=0), ValueError, r'interval=0: must be an int >= 1 \(or -1\)'),
    (dict(interval=1.5), ValueError, 'interval=1.5'),
    (dict(max_keep_ckpts=0), ValueError, 'max_keep_ckpts=0'),
    (dict(by_epoch='no'), TypeError, "by_epoch='no'"),
    (dict(save_begin=-1), ValueError, 'save_begin=-1'),
    (dict(save_best=3), TypeError, 'save_best=3'),
    (dict(save_best='bbox_mAP', rule='bigger'), ValueError, r"\['bigger'\] not in"),
    (dict(filename_tmpl='ckpt.pth'), ValueError, "exactly one '{}'"),
])
def test_bad_arguments_fail_when_the_hook_is_built(kwargs, error, message):
    with pytest.raises(error, match=message):
        HOOKS.build(dict(type='CheckpointHook', **kwargs))


def test_the_config_type_name_builds_mmfts_hook():
    hook = HOOKS.build(dict(type='CheckpointHook', interval=2, by_epoch=False,
                            max_keep_ckpts=1, save_best='auto'))
    assert type(hook) is CheckpointHook and hook.interval == 2


class _IterationScore(BaseMetric):
    """A score that improves at every validation: each one makes a new best checkpoint."""

    def process(self, data_batch, data_samples):
        self.results.append(0)

    def compute_metrics(self, results):
        return dict(score=float(MessageHub.get_current_instance().get_info('iter', 0)))


def test_the_previous_best_checkpoint_goes_only_after_the_new_one_is_saved(tmp_path):
    loader = _loader()
    runner = Runner(
        model=_Toy(), work_dir=str(tmp_path), train_dataloader=loader, val_dataloader=loader,
        train_cfg=dict(by_epoch=False, max_iters=4, val_interval=2), val_cfg=dict(),
        val_evaluator=Evaluator(_IterationScore()),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2,
                                           max_keep_ckpts=1, save_best='score',
                                           rule='greater')),
        default_scope='mmft', log_level='WARNING', experiment_name=f'best-{next(_RUNS)}')
    assert type(runner.hooks[-1]) is CheckpointHook
    with stop_at('remove', 'best_score_iter_2.pth'), pytest.raises(Killed):
        runner.train()
    # killed as the old best was about to go: the new best is already complete
    names = sorted(p.name for p in tmp_path.glob('*.pth'))
    assert names == ['best_score_iter_2.pth', 'best_score_iter_4.pth', 'iter_4.pth']
    assert torch_load_safely(str(tmp_path / 'best_score_iter_4.pth'))['meta']['iter'] == 4
