"""IoU-type box losses on aligned ``(N, 4)`` ``(x1, y1, x2, y2)`` boxes (MMDetection 3.x).

- ``IoULoss``: ``mode='log'`` ``-log(iou)``, ``'linear'`` ``1 - iou``,
  ``'square'`` ``1 - iou ** 2``; IoU clamped to at least ``eps``.
- ``GIoULoss``: ``1 - giou``, ``giou = iou - (enclose - union) / enclose``.

``weight`` is ``(N,)`` or ``(N, 4)`` (averaged over the 4 coordinates). When
every weight is 0 the loss is ``(pred * weight).sum()``: zero, but connected
to the graph (no positives in the batch).
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from mmft.registry import MODELS
from .utils import weight_reduce_loss

IOU_MODES = ('linear', 'square', 'log')


def _aligned_iou_parts(pred: Tensor, target: Tensor, eps: float) -> Tuple[Tensor, Tensor]:
    """``(iou, union)`` of row i with row i."""
    area_p = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
    area_t = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
    lt = torch.max(pred[:, :2], target[:, :2])
    rb = torch.min(pred[:, 2:], target[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = (area_p + area_t - inter).clamp(min=eps)
    return inter / union, union


def iou_loss(pred: Tensor, target: Tensor, mode: str = 'log', eps: float = 1e-6) -> Tensor:
    """Element-wise (per box) IoU loss, ``(N,)``."""
    if mode not in IOU_MODES:
        raise ValueError(f'IoULoss mode must be one of {IOU_MODES}, got {mode!r}')
    ious = _aligned_iou_parts(pred, target, eps)[0].clamp(min=eps)
    if mode == 'linear':
        return 1 - ious
    if mode == 'square':
        return 1 - ious ** 2
    return -ious.log()


def giou_loss(pred: Tensor, target: Tensor, eps: float = 1e-7) -> Tensor:
    """Element-wise (per box) generalised IoU loss ``1 - giou``, ``(N,)``."""
    ious, union = _aligned_iou_parts(pred, target, eps)
    enclose_wh = (torch.max(pred[:, 2:], target[:, 2:])
                  - torch.min(pred[:, :2], target[:, :2])).clamp(min=0)
    enclose = (enclose_wh[:, 0] * enclose_wh[:, 1]).clamp(min=eps)
    return 1 - (ious - (enclose - union) / enclose)


class _BoxLoss(nn.Module):
    """Shared weight handling of the IoU-type losses."""

    def __init__(self, eps: float, reduction: str, loss_weight: float) -> None:
        super().__init__()
        self.eps = eps
        self.reduction = reduction
        self.loss_weight = loss_weight

    def _elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        name = type(self).__name__
        if pred.shape != target.shape or pred.size(-1) != 4:
            raise ValueError(f'{name} needs pred and target of the same (N, 4) shape, got '
                             f'{tuple(pred.shape)} and {tuple(target.shape)}')
        if weight is not None and not torch.any(weight > 0):
            if pred.dim() == weight.dim() + 1:
                weight = weight.unsqueeze(1)
            return (pred * weight).sum()
        reduction = reduction_override if reduction_override else self.reduction
        if weight is not None and weight.dim() > 1:
            if weight.shape != pred.shape:
                raise ValueError(f'{name} weight {tuple(weight.shape)} must be (N,) or '
                                 f'{tuple(pred.shape)}')
            weight = weight.mean(-1)
        loss = self._elementwise(pred, target)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)


@MODELS.register_module()
class IoULoss(_BoxLoss):
    """IoU loss (UnitBox / FCOS).

    Args:
        linear: deprecated switch for ``mode='linear'`` (MMDetection keeps it).
        eps: lower bound of the IoU (and the union).
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: multiplier of the loss.
        mode: ``'linear'``, ``'square'`` or ``'log'``.
    """

    def __init__(self, linear: bool = False, eps: float = 1e-6, reduction: str = 'mean',
                 loss_weight: float = 1.0, mode: str = 'log') -> None:
        super().__init__(eps, reduction, loss_weight)
        if mode not in IOU_MODES:
            raise ValueError(f'IoULoss mode must be one of {IOU_MODES}, got {mode!r}')
        self.mode = 'linear' if linear else mode

    def _elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        return iou_loss(pred, target, mode=self.mode, eps=self.eps)


@MODELS.register_module()
class GIoULoss(_BoxLoss):
    """Generalised IoU loss (Rezatofighi et al.).

    Args:
        eps: lower bound of the union and the enclosing area.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, eps: float = 1e-6, reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(eps, reduction, loss_weight)

    def _elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        return giou_loss(pred, target, eps=self.eps)
