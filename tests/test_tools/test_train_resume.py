"""tools/train.py killed mid-run resumes with --resume at the same iteration and lr."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest

from mmft.engine.runner import latest_checkpoint
from tests.tiny_runs import REPO_ROOT, make_shapes_data, tiny_config

SCHEDULE_ITERS = 50  # the lr schedule spans this many iterations in every run below


def _train(config: str, work_dir: str, *extra: str, wait: bool = True):
    cmd = [sys.executable, osp.join(REPO_ROOT, 'tools/train.py'), config,
           '--work-dir', work_dir, *extra]
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO_ROOT)
    if not wait:
        return subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _logged(work_dir: str) -> dict:
    """iteration -> lr, from the newest run's scalars.json in ``work_dir``."""
    runs = sorted(d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d)))
    lrs = {}
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        for line in f:
            record = json.loads(line)
            if 'lr' in record:
                lrs[record['iter']] = record['lr']
    return lrs


@pytest.mark.slow
def test_killed_run_resumes_with_the_same_iteration_and_lr(tmp_path):
    shapes = make_shapes_data(str(tmp_path / 'data'), num_train=4, num_val=2)
    config = str(tmp_path / 'tiny.py')
    tiny_config(shapes['source'], str(tmp_path / 'unused'), max_iters=SCHEDULE_ITERS,
                checkpoint_interval=1).dump(config)

    killed = str(tmp_path / 'killed')
    proc = _train(config, killed, wait=False)
    deadline = time.time() + 120
    while not osp.exists(osp.join(killed, 'iter_2.pth')):
        assert proc.poll() is None, 'training ended before its second checkpoint'
        assert time.time() < deadline, 'no checkpoint after 120 s'
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up, as with a crash or a preemption
    proc.wait()
    # what --resume picks: last_checkpoint, or the newest file if the kill broke the pointer
    last = latest_checkpoint(killed)
    done = int(osp.basename(last)[len('iter_'):-len('.pth')])
    assert done >= 2

    stop = done + 2
    _train(config, killed, '--resume', 'auto', '--cfg-options', f'train_cfg.max_iters={stop}')
    resumed = _logged(killed)
    assert sorted(resumed) == list(range(done + 1, stop + 1))

    reference = str(tmp_path / 'reference')
    _train(config, reference, '--cfg-options', f'train_cfg.max_iters={stop}')
    expected = _logged(reference)
    for it, lr in resumed.items():
        assert lr == pytest.approx(expected[it], rel=1e-6), it


def test_a_broken_last_checkpoint_pointer_falls_back_to_the_newest_file(tmp_path):
    for i, name in enumerate(('iter_2.pth', 'iter_10.pth', 'iter_3.pth')):
        (tmp_path / name).write_bytes(b'x')
        os.utime(tmp_path / name, (1000 + i, 1000 + i))
    (tmp_path / 'last_checkpoint').write_text('')  # killed while MMEngine rewrote it
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_3.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_10.pth'))
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_10.pth')
    assert latest_checkpoint(str(tmp_path / 'empty')) is None


def test_sigkill_between_writing_the_new_checkpoint_and_deleting_the_old(tmp_path):
    """A real SIGKILL at the moment MMEngine's own hook has no checkpoint on disk."""
    shapes = make_shapes_data(str(tmp_path / 'data'), num_train=4, num_val=2)
    config = str(tmp_path / 'tiny.py')
    tiny_config(shapes['source'], str(tmp_path / 'unused'), max_iters=SCHEDULE_ITERS,
                checkpoint_interval=2, model=dict(
                    backbone=dict(base_channels=16), neck=dict(in_channels=[16, 32, 64, 128])),
                default_hooks=dict(checkpoint=dict(max_keep_ckpts=1))).dump(config)
    work_dir = str(tmp_path / 'killed')
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO_ROOT)
    killed = subprocess.run(
        [sys.executable, osp.join(REPO_ROOT, 'tests/kill_during_save.py'), 'remove',
         'iter_2.pth', osp.join(REPO_ROOT, 'tools/train.py'), config, '--work-dir', work_dir],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    files = sorted(f for f in os.listdir(work_dir) if osp.isfile(osp.join(work_dir, f)))
    assert files == ['iter_2.pth', 'iter_4.pth', 'last_checkpoint', 'tiny.py']
    assert latest_checkpoint(work_dir) == osp.join(work_dir, 'iter_4.pth')

    _train(config, work_dir, '--resume', '--cfg-options', 'train_cfg.max_iters=6')
    resumed = _logged(work_dir)
    assert sorted(resumed) == [5, 6]
    for it, lr in resumed.items():  # LinearLR: 0.1 x 0.01 at step 0 to 0.01 at step end - 1
        assert lr == pytest.approx(0.01 * (0.1 + 0.9 * (it - 1) / (SCHEDULE_ITERS - 1)),
                                   rel=1e-6)
    # iter_2.pth, which the killed run did not get to delete, went when the resumed run started
    assert sorted(f for f in os.listdir(work_dir) if f.endswith('.pth')) == ['iter_6.pth']
