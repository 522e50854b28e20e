"""Keep frozen parameters out of the optimizer, and bring them in when they thaw.

MMEngine's optimizer constructors put every parameter into a param group,
frozen or not. :func:`park_frozen` moves the frozen ones into "parked" copies
of their groups (same lr, weight decay, paramwise multipliers), so the
optimizer never sees them: no momentum buffers, no weight decay applied to
weights that must not change. :func:`unpark` hands them back as new groups
when gradual unfreezing reaches them, at the learning rate the schedule has
reached by then.
"""
from typing import Any, Dict, Iterable, List

from torch.optim import Optimizer


def park_frozen(optimizer: Optimizer) -> List[Dict[str, Any]]:
    """Remove parameters with ``requires_grad=False`` from ``optimizer``.

    Returns:
        The parked groups: each a copy of its original group's settings with
        only its frozen parameters.
    """
    parked, kept = [], []
    for group in optimizer.param_groups:
        frozen = [p for p in group['params'] if not p.requires_grad]
        trainable = [p for p in group['params'] if p.requires_grad]
        if frozen:
            parked.append({**group, 'params': frozen})
        if trainable:
            group['params'] = trainable
            kept.append(group)
    if not kept:
        raise ValueError('every parameter is frozen: the optimizer would have nothing to '
                         'train; narrow finetune.freeze')
    optimizer.param_groups[:] = kept
    return parked


def unpark(optimizer: Optimizer, parked: List[Dict[str, Any]],
           schedulers: Iterable[Any] = ()) -> int:
    """Add parked parameters that are trainable again to ``optimizer``.

    A new group gets its base lr times the factor the schedule has applied so
    far (the first group's ``lr / initial_lr``), so a warm-up or a step decay
    applies to it from now on as to everything else. Schedulers that keep one
    base value per group (``base_values``) get one for the new group.

    Returns:
        The number of parameters added.
    """
    reference = optimizer.param_groups[0]
    factor = reference['lr'] / reference.get('initial_lr', reference['lr'])
    added = 0
    for group in parked:
        thawed = [p for p in group['params'] if p.requires_grad]
        if not thawed:
            continue
        group['params'] = [p for p in group['params'] if not p.requires_grad]
        base_lr = group.get('initial_lr', group['lr'])
        new_group = {k: v for k, v in group.items() if k != 'params'}
        new_group.update(params=thawed, initial_lr=base_lr, lr=base_lr * factor)
        optimizer.add_param_group(new_group)
        for scheduler in schedulers:
            # MMEngine's schedulers hold the OptimWrapper, torch's the optimizer
            owner = getattr(scheduler, 'optimizer', None)
            if getattr(owner, 'optimizer', owner) is optimizer and \
                    hasattr(scheduler, 'base_values'):
                name = getattr(scheduler, 'param_name', 'lr')
                scheduler.base_values.append(new_group.get(f'initial_{name}', new_group[name]))
        added += len(thawed)
    parked[:] = [g for g in parked if g['params']]
    return added


def optimizer_param_ids(optimizer: Optimizer) -> set:
    """``id`` of every parameter the optimizer updates."""
    return {id(p) for g in optimizer.param_groups for p in g['params']}

