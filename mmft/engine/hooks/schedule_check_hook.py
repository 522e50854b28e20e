"""ScheduleCheckHook: warn when the lr schedule does not fit the training loop.

Shortening a run with ``--cfg-options train_cfg.max_epochs=4`` leaves the recipe's
``MultiStepLR milestones=[7]`` (and ``end=8``) as they are, so the learning rate never
decays and nothing says so. At the start of training this hook compares every scheduler
of ``param_scheduler`` with the loop's length and logs a warning that names both values
and the ``--cfg-options`` override that scales the schedule to the loop.

Units: a scheduler with ``by_epoch=True`` (MMEngine's default) counts epochs, one with
``by_epoch=False`` iterations. Its ``milestones`` count from its ``begin`` (MMEngine's
``last_step``). A milestone at or beyond the loop's end never fires; an ``end`` beyond
the loop's end never completes (``end`` equal to the loop's length is the usual full
schedule). FinetuneRunner adds this hook itself.
"""
from typing import Any, Dict, Iterator, List, Optional, Tuple

from mmengine.hooks import Hook

from mmft.registry import HOOKS


def _schedulers(param_scheduler: Any) -> Iterator[Tuple[str, Dict]]:
    """(``--cfg-options`` key, config) of every scheduler: a dict, a list, or a dict of
    lists (one per optimizer of an OptimWrapperDict)."""
    if param_scheduler is None:
        return
    if isinstance(param_scheduler, dict) and 'type' in param_scheduler:
        yield 'param_scheduler', param_scheduler
    elif isinstance(param_scheduler, dict):
        for name, group in param_scheduler.items():
            for key, cfg in _schedulers(group):
                yield key.replace('param_scheduler', f'param_scheduler.{name}', 1), cfg
    else:
        for i, cfg in enumerate(param_scheduler):
            if isinstance(cfg, dict):
                yield f'param_scheduler.{i}', cfg


def _fmt(values: List[int]) -> str:
    return '[' + ','.join(str(v) for v in values) + ']'


def schedule_warnings(param_scheduler: Any, max_epochs: Optional[int],
                      max_iters: Optional[int], loop_key: str) -> List[str]:
    """Warnings for the schedulers that do not fit a loop; empty when all fit.

    Args:
        param_scheduler: The config's ``param_scheduler`` (dict, list or dict of lists).
        max_epochs: The loop's length in epochs, None for an iteration-based loop (its
            ``by_epoch=True`` schedulers are then not checked).
        max_iters: The loop's length in iterations, None if unknown (then the
            ``by_epoch=False`` schedulers are not checked).
        loop_key: How the loop's length is set, for the message
            (``'train_cfg.max_epochs=4'``).
    """
    out = []
    for key, cfg in _schedulers(param_scheduler):
        by_epoch = cfg.get('by_epoch', True)
        length, unit = (max_epochs, 'epochs') if by_epoch else (max_iters, 'iterations')
        if not length:
            continue
        begin, end = int(cfg.get('begin', 0)), cfg.get('end')
        milestones = sorted(int(m) for m in cfg.get('milestones', ()) or ())
        late = [m for m in milestones if begin + m >= length]
        too_long = end is not None and end > length
        if not late and not too_long:
            continue
        problems, fixes = [], []
        if late:
            problems.append(f'milestones {_fmt(milestones)} (from begin={begin}) include '
                            f'{_fmt(late)}, at or beyond the loop\'s end: the value never '
                            f'steps there')
            if too_long and end > begin:  # keep each milestone's place in the schedule
                span, new_span = end - begin, length - begin
                new = sorted({max(1, m * new_span // span) for m in milestones})
            else:  # drop the unreachable ones; the last step of the loop if none is left
                new = [m for m in milestones if m not in late] or [max(1, length - begin - 1)]
            fixes.append(f'{key}.milestones={_fmt(new)}')
        if too_long:
            problems.append(f'end={end} lies beyond the loop\'s end: the schedule never '
                            f'completes')
            fixes.append(f'{key}.end={length}')
        out.append(f'{key} ({cfg.get("type", "?")}, in {unit}): '
                   f'{"; ".join(problems)}. The training loop runs {length} {unit} '
                   f'({loop_key}). To scale the schedule to the loop: --cfg-options '
                   f'{" ".join(fixes)}')
    return out


@HOOKS.register_module()
class ScheduleCheckHook(Hook):
    """Before training, log a warning for each scheduler that does not fit the loop."""

    priority = 'VERY_LOW'

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        train_cfg = runner.cfg.get('train_cfg') or {}
        by_epoch = 'max_epochs' in train_cfg or train_cfg.get('by_epoch', False)
        max_iters = getattr(loop, 'max_iters', None)
        if by_epoch:
            max_epochs = getattr(loop, 'max_epochs', None)
            loop_key = f'train_cfg.max_epochs={max_epochs}'
        else:
            max_epochs, loop_key = None, f'train_cfg.max_iters={max_iters}'
        for message in schedule_warnings(runner.cfg.get('param_scheduler'), max_epochs,
                                         max_iters, loop_key):
            runner.logger.warning(message)
