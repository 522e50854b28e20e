"""Stop a training run at an exact moment of saving, as a SIGKILL there would.

Moments (``event`` on the file named ``name``, e.g. ``iter_4.pth`` or ``last_checkpoint``):

- ``'write'``: while its temporary file is written (the file is cut to half its size, then
  the run stops: a kill in the middle of the write);
- ``'rename'``: the temporary file is complete but not yet renamed to ``name``;
- ``'remove'``: just before ``name`` is deleted (the new checkpoint is already in place);
- ``'removed'``: just after it is deleted.

In-process (tests): :func:`stop_at` raises :class:`Killed` at that moment and from then
on lets nothing change the disk (no clean-up of temporary files, as after a real kill).
As a script it runs tools/train.py and SIGKILLs itself there::

    python tests/kill_during_save.py EVENT NAME tools/train.py CONFIG --work-dir DIR ...
"""
import os
import os.path as osp
import runpy
import signal
import sys
from contextlib import contextmanager
from typing import Callable, Iterator
from unittest import mock

EVENTS = ('write', 'rename', 'remove', 'removed')


class Killed(BaseException):
    """The simulated kill (a BaseException: nothing in the run may catch it)."""


def _path_of(fd: int) -> str:
    return os.readlink(f'/proc/self/fd/{fd}')


def _is_temp_of(path: str, name: str) -> bool:
    base = osp.basename(path)
    return base.startswith(f'.{name}.') and base.endswith('.tmp')


@contextmanager
def stop_at(event: str, name: str, kill: Callable[[], None] = None) -> Iterator[dict]:
    """Patch the file operations of saving so that ``kill`` (default: raise Killed) runs
    at ``event`` on ``name``; yields a dict whose ``'stopped'`` says if it happened."""
    if event not in EVENTS:
        raise ValueError(f'event must be one of {EVENTS}, got {event!r}')
    state = dict(stopped=False)
    real_fsync, real_replace, real_remove = os.fsync, os.replace, os.remove

    def stop() -> None:
        state['stopped'] = True
        if kill is not None:
            kill()
        raise Killed(f'{event} {name}')

    def fsync(fd):
        if state['stopped']:
            return None
        if event == 'write' and _is_temp_of(_path_of(fd), name):
            os.ftruncate(fd, os.fstat(fd).st_size // 2)
            stop()
        return real_fsync(fd)

    def replace(src, dst, *args, **kwargs):
        if state['stopped']:
            return None
        if event == 'rename' and osp.basename(str(dst)) == name:
            stop()
        return real_replace(src, dst, *args, **kwargs)

    def remove(path, *args, **kwargs):
        if state['stopped']:
            return None
        hit = osp.basename(str(path)) == name
        if hit and event == 'remove':
            stop()
        real_remove(path, *args, **kwargs)
        if hit and event == 'removed':
            stop()

    with mock.patch('os.fsync', fsync), mock.patch('os.replace', replace), \
            mock.patch('os.remove', remove), mock.patch('os.unlink', remove):
        yield state


def _sigkill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == '__main__':
    event, name, script, *args = sys.argv[1:]
    sys.argv = [script, *args]
    with stop_at(event, name, kill=_sigkill):
        runpy.run_path(script, run_name='__main__')
    sys.exit(3)  # the moment never came
