"""Dice loss (MMDetection 3.x ``DiceLoss`` arguments and formula).

Shapes: ``pred (N, ...)`` (logits, or probabilities with ``activate=False``) and
``target (N, ...)`` of the same shape (binary masks); everything after the first dimension
is flattened, so the loss is ``(N,)`` before weighting. With ``p`` the probabilities and
``t`` the targets of one instance::

    V-Net (naive_dice=False):  1 - 2 * sum(p * t) / ((sum(p * p) + eps) + (sum(t * t) + eps))
    naive (naive_dice=True):   1 - (2 * sum(p * t) + eps) / (sum(p) + sum(t) + eps)
"""
from typing import Optional

import torch.nn as nn
from torch import Tensor

from mmft.registry import MODELS
from .utils import weight_reduce_loss


def dice_loss(pred: Tensor, target: Tensor, weight: Optional[Tensor] = None,
              eps: float = 1e-3, reduction: str = 'mean', naive_dice: bool = False,
              avg_factor: Optional[float] = None) -> Tensor:
    """Dice loss of probabilities ``pred`` against ``target`` (module docstring).

    Args:
        weight: ``(N,)`` per-instance weights.
    """
    if pred.shape[0] != target.shape[0] or pred[0].numel() != target[0].numel():
        raise ValueError(f'dice_loss: pred {tuple(pred.shape)} and target '
                         f'{tuple(target.shape)} must hold the same number of instances and '
                         'of elements per instance')
    p = pred.flatten(1)
    t = target.flatten(1).to(p.dtype)
    inter = (p * t).sum(1)
    if naive_dice:
        score = (2 * inter + eps) / (p.sum(1) + t.sum(1) + eps)
    else:
        score = 2 * inter / (((p * p).sum(1) + eps) + ((t * t).sum(1) + eps))
    loss = 1 - score
    if weight is not None and weight.shape != loss.shape:
        raise ValueError(f'dice_loss weight must be (N,) = ({loss.numel()},) per instance, '
                         f'got {tuple(weight.shape)}')
    return weight_reduce_loss(loss, weight, reduction, avg_factor)


@MODELS.register_module()
class DiceLoss(nn.Module):
    """Dice loss of sigmoid mask predictions (RTMDet-Ins, Mask2Former).

    Args:
        use_sigmoid: probabilities are ``sigmoid(pred)`` (the only activation there is).
        activate: apply the sigmoid; False when ``pred`` already holds probabilities.
        reduction: 'none', 'mean' or 'sum'.
        naive_dice: first powers in the denominator (module docstring), else V-Net's squares.
        loss_weight: multiplier.
        eps: keeps the ratio finite for empty masks.
    """

    def __init__(self, use_sigmoid: bool = True, activate: bool = True, reduction: str = 'mean',
                 naive_dice: bool = False, loss_weight: float = 1.0, eps: float = 1e-3) -> None:
        super().__init__()
        if activate and not use_sigmoid:
            raise ValueError('DiceLoss(activate=True) supports only use_sigmoid=True; pass '
                             'probabilities with activate=False for any other activation')
        self.use_sigmoid = use_sigmoid
        self.activate = activate
        self.reduction = reduction
        self.naive_dice = naive_dice
        self.loss_weight = loss_weight
        self.eps = eps

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                reduction_override: Optional[str] = None,
                avg_factor: Optional[float] = None) -> Tensor:
        """Weighted, reduced loss; ``avg_factor`` divides the sum with ``reduction='mean'``."""
        reduction = reduction_override or self.reduction
        if self.activate:
            pred = pred.sigmoid()
        return self.loss_weight * dice_loss(pred, target, weight, eps=self.eps,
                                            reduction=reduction, naive_dice=self.naive_dice,
                                            avg_factor=avg_factor)
