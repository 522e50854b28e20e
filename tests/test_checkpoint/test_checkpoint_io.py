"""Safe checkpoint reading and atomic writing (mmft/checkpoint/)."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.logging.history_buffer import HistoryBuffer

from mmft.checkpoint import (AtomicLocalBackend, UnsafeCheckpointError, read_checkpoint,
                              write_atomically)


class _RunsShell:
    """A pickle payload: unpickling it would call os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


class _ReachesForTofile:
    """getattr(np.ndarray, 'tofile') would let a pickle write any file."""

    def __reduce__(self):
        return (getattr, (np.ndarray, 'tofile'))


def _mmengine_like_checkpoint():
    buffer = HistoryBuffer()
    buffer.update(0.5)
    buffer.update(0.25)
    return {
        'meta': {'epoch': 1, 'iter': 2, 'dataset_meta': {'classes': ('a', 'b')}},
        'state_dict': {'module.backbone.w': torch.ones(2, 2)},
        'message_hub': {'log_scalars': {'train/loss': buffer},
                        'runtime_info': {'np_scalar': np.float64(1.5),
                                         'np_array': np.arange(3)}},
        'optimizer': {'state': {}, 'param_groups': [{'lr': 0.01}]},
    }


def test_mmengine_checkpoint_reads_under_weights_only(tmp_path):
    path = str(tmp_path / 'epoch_1.pth')
    torch.save(_mmengine_like_checkpoint(), path)
    loaded = read_checkpoint(path)
    assert loaded.format == 'mmengine'
    assert list(loaded.state_dict) == ['backbone.w']  # DDP's module. stripped
    assert loaded.meta['dataset_meta']['classes'] == ('a', 'b')
    buffer = loaded.raw['message_hub']['log_scalars']['train/loss']
    assert buffer.statistics('mean') == pytest.approx(0.375)
    # mmengine's own resume path calls torch.load without weights_only
    assert torch.load(path)['meta']['iter'] == 2


def test_malicious_checkpoint_is_refused_without_running(tmp_path):
    marker = tmp_path / 'payload_ran'
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'x': _RunsShell(marker)}, path)
    with pytest.raises(UnsafeCheckpointError, match='system'):
        read_checkpoint(path)
    with pytest.raises(Exception):
        torch.load(path)  # the default path is guarded too
    assert not marker.exists()


def test_getattr_is_limited_to_history_buffer_statistics(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save({'x': _ReachesForTofile()}, path)
    with pytest.raises(UnsafeCheckpointError, match='tofile'):
        read_checkpoint(path)


def test_plain_and_model_state_dicts(tmp_path):
    torch.save({'conv1.weight': torch.ones(1)}, tmp_path / 'plain.pth')
    torch.save({'model': {'w': torch.ones(1)}}, tmp_path / 'model.pth')
    assert read_checkpoint(tmp_path / 'plain.pth').format == 'state_dict'
    assert read_checkpoint(tmp_path / 'model.pth').format == 'model'


def test_ema_checkpoints_are_recognised(tmp_path):
    """MMEngine's EMAHook saves the average as state_dict and the raw weights beside it."""
    average, raw = {'w': torch.ones(2)}, {'module.w': torch.zeros(2)}
    torch.save({'state_dict': average, 'ema_state_dict': raw, 'meta': {}}, tmp_path / 'e.pth')
    torch.save({'state_dict': average, 'meta': {}}, tmp_path / 'p.pth')
    loaded = read_checkpoint(str(tmp_path / 'e.pth'))
    assert loaded.ema and torch.equal(loaded.state_dict['w'], torch.ones(2))
    assert not read_checkpoint(str(tmp_path / 'p.pth')).ema


def test_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        read_checkpoint(tmp_path / 'nowhere.pth')


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / 'latest.pth'
    write_atomically(b'good', path)
    with pytest.raises(TypeError):
        write_atomically(object(), path)  # type: ignore[arg-type]
    assert path.read_bytes() == b'good'
    assert sorted(os.listdir(tmp_path)) == ['latest.pth']  # no temporary left over


def test_target_is_replaced_only_by_a_complete_file(tmp_path, monkeypatch):
    """Until the rename, the old file is intact and the new bytes sit complete
    in a temporary file beside it: a kill at any moment leaves one of the two."""
    path = tmp_path / 'epoch_1.pth'
    path.write_bytes(b'old checkpoint')
    seen = {}
    real_replace = os.replace

    def checking_replace(src, dst):
        seen['target_before_rename'] = open(dst, 'rb').read()
        seen['temporary'] = open(src, 'rb').read()
        seen['same_folder'] = osp.dirname(src) == osp.dirname(str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, 'replace', checking_replace)
    AtomicLocalBackend().put(b'new checkpoint', str(path))
    assert seen == {'target_before_rename': b'old checkpoint',
                    'temporary': b'new checkpoint', 'same_folder': True}
    assert path.read_bytes() == b'new checkpoint'


_SAVE_FOREVER = """
import sys, torch
from mmengine.runner.checkpoint import save_checkpoint
from mmft.checkpoint import setup_checkpoint_io
setup_checkpoint_io()
big = {'state_dict': {'w': torch.full((24, 1024, 1024), 2.0)}}
print('saving', flush=True)
while True:
    save_checkpoint(big, sys.argv[1])
"""


def test_process_killed_while_saving_never_leaves_a_broken_checkpoint(tmp_path):
    path = str(tmp_path / 'epoch_1.pth')
    torch.save({'state_dict': {'w': torch.ones(1)}}, path)
    proc = subprocess.Popen([sys.executable, '-c', _SAVE_FOREVER, path],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'saving'
        time.sleep(1.0)  # well inside a 100 MB write-and-rename loop
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    weights = read_checkpoint(path).state_dict['w']
    assert weights.numel() in (1, 24 * 1024 * 1024)  # old or new, never partial
    assert float(weights.flatten()[-1]) in (1.0, 2.0)


def test_mmengine_writes_go_through_the_atomic_backend(tmp_path):
    backend = get_file_backend(str(tmp_path / 'x.pth'))
    assert isinstance(backend, AtomicLocalBackend)
    backend.put_text('epoch_1.pth', str(tmp_path / 'sub' / 'last_checkpoint'))
    assert (tmp_path / 'sub' / 'last_checkpoint').read_text() == 'epoch_1.pth'
    assert osp.isfile(tmp_path / 'sub' / 'last_checkpoint')
