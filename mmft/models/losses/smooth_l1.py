"""Smooth L1 and L1 regression losses on ``(N, 4)`` box deltas (or any shape)."""
from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor

from mmft.registry import MODELS
from .utils import weighted_loss


@weighted_loss
def smooth_l1_loss(pred: Tensor, target: Tensor, beta: float = 1.0) -> Tensor:
    """Element-wise ``0.5 * d**2 / beta`` for ``|d| < beta``, else ``|d| - 0.5 * beta``."""
    if beta <= 0:
        raise ValueError(f'SmoothL1Loss beta must be > 0, got {beta}')
    if pred.size() != target.size():
        raise ValueError(f'SmoothL1Loss pred {tuple(pred.shape)} and target '
                         f'{tuple(target.shape)} must have the same shape')
    if target.numel() == 0:
        return pred.sum() * 0
    diff = torch.abs(pred - target)
    return torch.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)


@weighted_loss
def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Element-wise ``|pred - target|``."""
    if pred.size() != target.size():
        raise ValueError(f'L1Loss pred {tuple(pred.shape)} and target '
                         f'{tuple(target.shape)} must have the same shape')
    if target.numel() == 0:
        return pred.sum() * 0
    return torch.abs(pred - target)


def _all_zero_weight(pred: Tensor, weight: Optional[Tensor]) -> Optional[Tensor]:
    """Zero loss that keeps the graph when every weight is 0 (no positives)."""
    if weight is not None and not torch.any(weight > 0):
        if pred.dim() == weight.dim() + 1:
            weight = weight.unsqueeze(1)
        return (pred * weight).sum()
    return None


@MODELS.register_module()
class SmoothL1Loss(nn.Module):
    """Smooth L1 loss.

    Args:
        beta: the L2 -> L1 switch point.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, beta: float = 1.0, reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.beta = beta
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        zero = _all_zero_weight(pred, weight)
        if zero is not None:
            return zero
        reduction = reduction_override if reduction_override else self.reduction
        return self.loss_weight * smooth_l1_loss(pred, target, weight, beta=self.beta,
                                                 reduction=reduction, avg_factor=avg_factor)


@MODELS.register_module()
class L1Loss(nn.Module):
    """L1 loss.

    Args:
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, reduction: str = 'mean', loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        zero = _all_zero_weight(pred, weight)
        if zero is not None:
            return zero
        reduction = reduction_override if reduction_override else self.reduction
        return self.loss_weight * l1_loss(pred, target, weight, reduction=reduction,
                                          avg_factor=avg_factor)
