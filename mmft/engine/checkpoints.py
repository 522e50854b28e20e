"""Which checkpoint a resumed run starts from, and the leftovers of interrupted saves.

A work_dir written by mmft's :class:`~mmft.engine.hooks.CheckpointHook` holds:

- ``iter_N.pth`` / ``epoch_N.pth``: complete checkpoints (each written to a temporary file
  and renamed, so a file with that name is never half-written by mmft);
- ``last_checkpoint``: the path of the newest one (also written atomically);
- ``.<name>.<random>.tmp``: a write that a killed run never finished; never read, removed
  when the next run starts.

:func:`find_resume_checkpoint` trusts ``last_checkpoint`` when the file it names is there
and complete; otherwise it warns and takes the newest complete checkpoint. It refuses to
return nothing when ``last_checkpoint`` shows that checkpoints existed: restarting from
iteration 1 with exit 0 would look like a successful resume.
"""
import glob
import logging
import os
import os.path as osp
import re
import zipfile
from typing import List, Optional, Tuple

from mmengine.logging import print_log

POINTER = 'last_checkpoint'
#: the names CheckpointHook gives by default
CHECKPOINT_NAME = re.compile(r'(iter|epoch)_(\d+)\.pth')
#: what mmft.checkpoint.write_atomically leaves behind when killed: tempfile.mkstemp's
#: ``.<target name>.<8 random characters>.tmp``
TEMP_NAME = re.compile(r'\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp')
_ZIP_MAGIC = b'PK\x03\x04'


class NoCheckpointToResumeError(FileNotFoundError):
    """``last_checkpoint`` exists, but no complete checkpoint is left to resume from."""


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole checkpoint file (not empty, not cut short).

    ``torch.save`` writes a zip archive whose directory sits at the very end, so a file cut
    short has no readable directory. Files in torch's legacy (non-zip) format cannot be
    checked this cheaply and count as complete when not empty.
    """
    try:
        if osp.getsize(path) == 0:
            return False
        with open(path, 'rb') as f:
            head = f.read(4)
    except OSError:
        return False
    return zipfile.is_zipfile(path) if head == _ZIP_MAGIC else True


def checkpoint_files(folder: str) -> List[Tuple[float, int, str]]:
    """``(mtime, step, path)`` of the complete ``iter_N.pth`` / ``epoch_N.pth`` in ``folder``,
    oldest first."""
    found = []
    for path in glob.glob(osp.join(glob.escape(folder), '*.pth')):
        match = CHECKPOINT_NAME.fullmatch(osp.basename(path))
        if match and is_complete_checkpoint(path):
            found.append((osp.getmtime(path), int(match[2]), path))
    return sorted(found)


def _warn(message: str) -> None:
    print_log(message, logger='current', level=logging.WARNING)


def find_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint to resume from: what ``last_checkpoint`` names, if it is there and
    complete; else (with a warning) the newest complete ``iter_*.pth`` / ``epoch_*.pth``.

    Returns:
        The path, or None when the work_dir has neither a ``last_checkpoint`` nor a
        checkpoint (a first run).

    Raises:
        NoCheckpointToResumeError: ``last_checkpoint`` exists but no complete checkpoint is
            left, so resuming cannot continue the earlier run.
    """
    pointer = osp.join(work_dir, POINTER)
    named = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
    if named and osp.isfile(named) and is_complete_checkpoint(named):
        return named
    folders = [work_dir] + ([osp.dirname(named)] if named and osp.dirname(named) else [])
    found = sorted({c for folder in dict.fromkeys(folders) for c in checkpoint_files(folder)})
    newest = found[-1][2] if found else None
    if named is None:  # no pointer at all: an older run, or checkpoints copied in by hand
        return newest
    if not named:
        problem = f'{pointer} is empty (a run was killed while writing it)'
    elif not osp.isfile(named):
        problem = f'{pointer} names {named}, which does not exist'
    else:
        problem = f'{pointer} names {named}, which is incomplete (cut short or empty)'
    if newest is None:
        raise NoCheckpointToResumeError(
            f'cannot resume: {problem}, and {work_dir} holds no other complete checkpoint '
            '(iter_*.pth / epoch_*.pth). To start this work_dir over, delete '
            f'{pointer} (or train with a new --work-dir); to resume from a file elsewhere, '
            'pass --resume PATH.')
    _warn(f'{problem}; resuming from the newest complete checkpoint, {newest}, instead')
    return newest


def remove_stale_temp_files(folder: str) -> List[str]:
    """Delete the ``.<name>.<random>.tmp`` files that interrupted atomic writes left in
    ``folder`` (checkpoint-sized, never read). Returns the paths removed."""
    removed, size = [], 0
    if not osp.isdir(folder):
        return removed
    for name in sorted(os.listdir(folder)):
        path = osp.join(folder, name)
        if TEMP_NAME.fullmatch(name) and osp.isfile(path):
            try:
                size += osp.getsize(path)
                os.remove(path)
            except FileNotFoundError:  # another rank or process got there first
                continue
            removed.append(path)
    if removed:
        _warn(f'removed {len(removed)} unfinished write(s) ({size / 2 ** 20:.1f} MiB) that an '
              f'interrupted run left in {folder}: {[osp.basename(p) for p in removed]}')
    return removed
