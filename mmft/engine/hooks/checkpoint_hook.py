"""CheckpointHook: MMEngine's, with saving that a kill at any moment cannot undo.

MMEngine's hook (0.10) deletes the oldest kept checkpoint *before* writing the new one
and writes ``last_checkpoint`` with a plain ``open``. With ``max_keep_ckpts=1`` a run
killed in between leaves no checkpoint at all, and ``--resume`` then silently starts
over. This hook, registered as ``CheckpointHook`` in scope ``mmft`` (so MMDetection
configs' ``default_hooks.checkpoint=dict(type='CheckpointHook', ...)`` get it), keeps
MMEngine's arguments and file names and changes the order:

1. the new checkpoint is written (atomically: temporary file, fsync, rename);
2. ``last_checkpoint`` is rewritten atomically to name it;
3. only then are outdated checkpoints (``max_keep_ckpts``, the previous ``save_best``
   file) deleted. Each checkpoint records the steps it made outdated, so a run resumed
   after a kill in this last step deletes them at its start.

At every moment the work_dir holds a complete checkpoint that ``last_checkpoint`` names.
Before training, the temporary files of writes that a killed run never finished are
removed. Arguments are checked when the hook is built, so a typo stops the run before it
trains, not at its first save.
"""
import difflib
import inspect
import os.path as osp
from numbers import Integral
from pathlib import Path
from typing import Any, List, Optional, Union

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook as MMEngineCheckpointHook

from mmft.checkpoint import setup_checkpoint_io, write_atomically
from mmft.registry import HOOKS
from ..checkpoints import POINTER, remove_stale_temp_files

#: message_hub runtime info: the steps whose checkpoints a save made outdated
OUTDATED_KEY = 'outdated_ckpt_ids'


def _closest(name: str, known: List[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ''


def _check_int(name: str, value: Any, minimum: int, allow_minus_one: bool = False) -> None:
    ok = isinstance(value, Integral) and not isinstance(value, bool) and \
        (value >= minimum or (allow_minus_one and value == -1))
    if not ok:
        allowed = f'an int >= {minimum}' + (' (or -1)' if allow_minus_one else '')
        raise ValueError(f'CheckpointHook {name}={value!r}: must be {allowed}; fix '
                         f'default_hooks.checkpoint.{name} in the config')


def _check_str_list(name: str, value: Any, allowed: Optional[tuple] = None) -> None:
    if value is None:
        return
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or \
            not all(isinstance(v, str) or (v is None and allowed) for v in items):
        raise TypeError(f'CheckpointHook {name}={value!r}: must be a str or a list of str; fix '
                        f'default_hooks.checkpoint.{name} in the config')
    if allowed is not None:
        bad = [v for v in items if v not in allowed]
        if bad:
            raise ValueError(f'CheckpointHook {name}={value!r}: {bad} not in {allowed}; fix '
                             f'default_hooks.checkpoint.{name} in the config')


class _DeferredRemovals:
    """A file backend whose ``remove`` / ``rmtree`` wait until :meth:`flush`."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self.pending: List[str] = []

    def remove(self, path: str) -> None:
        self.pending.append(str(path))

    def rmtree(self, path: str) -> None:
        self.pending.append(str(path))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


@HOOKS.register_module()
class CheckpointHook(MMEngineCheckpointHook):
    """Save checkpoints periodically, never leaving the work_dir without one.

    Arguments are MMEngine's :class:`mmengine.hooks.CheckpointHook`'s (``interval``,
    ``by_epoch``, ``save_optimizer``, ``save_param_scheduler``, ``out_dir``,
    ``max_keep_ckpts``, ``save_last``, ``save_best``, ``rule``, ``greater_keys``,
    ``less_keys``, ``file_client_args``, ``filename_tmpl``, ``backend_args``,
    ``published_keys``, ``save_begin``); see the module docstring for what differs.

    Raises:
        TypeError: an argument MMEngine's hook does not have (it would only fail at the
            first save), or one of the wrong type.
        ValueError: a value out of range, e.g. ``interval=0``.
    """

    def __init__(self, interval: int = -1, by_epoch: bool = True,
                 max_keep_ckpts: int = -1, save_best: Union[str, List[str], None] = None,
                 rule: Union[str, List[str], None] = None,
                 filename_tmpl: Optional[str] = None,
                 out_dir: Optional[Union[str, Path]] = None, save_begin: int = 0,
                 **kwargs) -> None:
        known = list(inspect.signature(MMEngineCheckpointHook.__init__).parameters)
        known = [k for k in known if k not in ('self', 'kwargs')]
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            # MMEngine passes unknown arguments on to Runner.save_checkpoint, which takes
            # none: the run would train until its first save, then fail there
            raise TypeError(
                f'CheckpointHook got unknown argument(s) {unknown}'
                f'{_closest(unknown[0], known)} Known arguments: {known}. Fix '
                'default_hooks.checkpoint in the config.')
        _check_int('interval', interval, 1, allow_minus_one=True)
        if not isinstance(by_epoch, bool):
            raise TypeError(f'CheckpointHook by_epoch={by_epoch!r}: must be True or False')
        _check_int('max_keep_ckpts', max_keep_ckpts, 1, allow_minus_one=True)
        _check_int('save_begin', save_begin, 0)
        _check_str_list('save_best', save_best)
        _check_str_list('rule', rule, allowed=('greater', 'less', None))
        if filename_tmpl is not None and (not isinstance(filename_tmpl, str) or
                                          filename_tmpl.count('{}') != 1):
            raise ValueError(f'CheckpointHook filename_tmpl={filename_tmpl!r}: must be a str '
                             "with exactly one '{}' (the epoch or iteration), e.g. "
                             "'iter_{}.pth'")
        if out_dir is not None and not isinstance(out_dir, (str, Path)):
            raise TypeError(f'CheckpointHook out_dir={out_dir!r}: must be a folder path')
        super().__init__(interval=interval, by_epoch=by_epoch, max_keep_ckpts=max_keep_ckpts,
                         save_best=save_best, rule=rule, filename_tmpl=filename_tmpl,
                         out_dir=out_dir, save_begin=save_begin, **kwargs)

    def before_train(self, runner) -> None:
        # atomic checkpoint files even when nothing called register_all_modules (a Runner
        # built from Python that found this hook through default_scope='mmft')
        setup_checkpoint_io()
        super().before_train(runner)
        if not is_main_process():
            return
        for folder in dict.fromkeys((runner.work_dir, str(self.out_dir))):
            if '://' not in folder:
                remove_stale_temp_files(folder)
        # a run killed between its save and the deletions leaves the outdated checkpoints
        # that its last checkpoint recorded: delete them now
        outdated = runner.message_hub.get_info(OUTDATED_KEY) or []
        keep = set(getattr(self, 'keep_ckpt_ids', ()))
        for step in outdated:
            if self.max_keep_ckpts > 0 and step not in keep:
                self._remove(self.file_backend.join_path(self.out_dir,
                                                         self.filename_tmpl.format(step)))

    def _remove(self, path: str) -> None:
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # DeepSpeed saves a checkpoint as a folder
            self.file_backend.rmtree(path)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        outdated = []
        # _save_best_checkpoint may save the step that was just saved again (to record the
        # new best in message_hub): then nothing is outdated
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            # before saving: the checkpoint records the list it belongs to, as in MMEngine,
            # and what it supersedes, for a resumed run to finish an interrupted deletion
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
            runner.message_hub.update_info(OUTDATED_KEY, outdated)

        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(self.out_dir, filename, self.file_client_args,
                               save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta,
                               by_epoch=self.by_epoch, backend_args=self.backend_args,
                               **self.args)
        if not is_main_process():
            return
        write_atomically(str(self.last_ckpt).encode(), osp.join(runner.work_dir, POINTER))
        for old in outdated:  # only now that a newer complete checkpoint is named
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
            if path != self.last_ckpt:
                self._remove(path)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        # MMEngine's version deletes the previous best file before saving the new one:
        # run it with deletions held back until everything it saves is written
        backend = self.file_backend
        deferred = self.file_backend = _DeferredRemovals(backend)
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend = backend
        in_use = {self.last_ckpt, getattr(self, 'best_ckpt_path', None),
                  *getattr(self, 'best_ckpt_path_dict', {}).values()}
        for path in dict.fromkeys(deferred.pending):
            if path not in in_use:
                self._remove(path)
