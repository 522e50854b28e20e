"""Loss weighting and reduction shared by every loss (MMDetection semantics).

``avg_factor``: with ``reduction='mean'`` the weighted element-wise loss is
summed and divided by ``avg_factor`` (e.g. the number of sampled anchors)
instead of by the element count; it cannot be combined with ``'sum'``.
"""
import functools
from typing import Callable, Optional

import torch
from torch import Tensor

_REDUCTIONS = ('none', 'mean', 'sum')


def reduce_loss(loss: Tensor, reduction: str) -> Tensor:
    """Reduce an element-wise loss by ``'none'``, ``'mean'`` or ``'sum'``."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f'loss reduction must be one of {_REDUCTIONS}, got {reduction!r}')
    if reduction == 'mean':
        return loss.mean()
    if reduction == 'sum':
        return loss.sum()
    return loss


def weight_reduce_loss(loss: Tensor, weight: Optional[Tensor] = None, reduction: str = 'mean',
                       avg_factor: Optional[float] = None) -> Tensor:
    """Multiply by ``weight`` (broadcastable) and reduce, dividing by ``avg_factor`` if given."""
    if weight is not None:
        loss = loss * weight
    if avg_factor is None:
        return reduce_loss(loss, reduction)
    if reduction == 'mean':
        # eps keeps an avg_factor of 0 (no samples) from producing NaN
        eps = torch.finfo(torch.float32).eps
        return loss.sum() / (avg_factor + eps)
    if reduction != 'none':
        raise ValueError('avg_factor can not be used with reduction="sum"; use "mean"')
    return loss


def weighted_loss(loss_func: Callable) -> Callable:
    """Turn ``loss_func(pred, target, **kw)`` (element-wise) into
    ``f(pred, target, weight=None, reduction='mean', avg_factor=None, **kw)``."""

    @functools.wraps(loss_func)
    def wrapper(pred: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                reduction: str = 'mean', avg_factor: Optional[float] = None, **kwargs) -> Tensor:
        loss = loss_func(pred, target, **kwargs)
        return weight_reduce_loss(loss, weight, reduction, avg_factor)

    return wrapper
