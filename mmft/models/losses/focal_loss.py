"""Sigmoid focal loss (Lin et al., RetinaNet), MMDetection 3.x arguments.

Shapes: ``pred (N, C)`` logits, one per foreground class (no background
column); ``target (N,)`` class indices in ``[0, C]`` where ``C`` means
background (all-zero one-hot), or a ``(N, C)`` 0/1 (or soft) target.
``weight`` is ``(N,)`` per prior or ``(N, C)`` per element.

Per element, with ``p = sigmoid(pred)`` and one-hot ``t``::

    pt = p * t + (1 - p) * (1 - t)
    loss = -(alpha * t + (1 - alpha) * (1 - t)) * (1 - pt) ** gamma * log(pt)
"""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmft.registry import MODELS
from .utils import weight_reduce_loss


def _one_hot(target: Tensor, num_classes: int) -> Tensor:
    """``(N,)`` indices (``num_classes`` = background) -> ``(N, C)`` float one-hot."""
    return F.one_hot(target.long(), num_classes + 1)[:, :num_classes].float()


def sigmoid_focal_loss(pred: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                       gamma: float = 2.0, alpha: float = 0.25, reduction: str = 'mean',
                       avg_factor: Optional[float] = None, activated: bool = False) -> Tensor:
    """Element-wise focal loss, weighted and reduced (see the module docstring).

    Args:
        activated: ``pred`` holds probabilities already (not logits).
    """
    if target.dim() == 1:
        if target.numel() != pred.size(0):
            raise ValueError(f'FocalLoss: {target.numel()} labels for {pred.size(0)} predictions')
        if target.numel() and (int(target.min()) < 0 or int(target.max()) > pred.size(1)):
            raise ValueError(f'FocalLoss labels must lie in [0, {pred.size(1)}] ({pred.size(1)} '
                             f'= background), got [{int(target.min())}, {int(target.max())}]')
        target = _one_hot(target, pred.size(1))
    elif target.shape != pred.shape:
        raise ValueError(f'FocalLoss target {tuple(target.shape)} must be (N,) labels or '
                         f'pred\'s shape {tuple(pred.shape)}')
    target = target.type_as(pred)
    if activated:
        prob = pred
        ce = F.binary_cross_entropy(pred, target, reduction='none')
    else:
        prob = pred.sigmoid()
        ce = F.binary_cross_entropy_with_logits(pred, target, reduction='none')
    pt = prob * target + (1 - prob) * (1 - target)
    focal_weight = (alpha * target + (1 - alpha) * (1 - target)) * (1 - pt).pow(gamma)
    loss = ce * focal_weight
    if weight is not None and weight.dim() == 1:
        if weight.numel() != loss.size(0):
            raise ValueError(f'FocalLoss: weight has {weight.numel()} values for '
                             f'{loss.size(0)} predictions')
        weight = weight.view(-1, 1)
    return weight_reduce_loss(loss, weight, reduction, avg_factor)


@MODELS.register_module()
class FocalLoss(nn.Module):
    """Sigmoid focal loss.

    Args:
        use_sigmoid: must be True (MMDetection has no softmax focal loss either).
        gamma: focusing exponent.
        alpha: weight of the positive term (``1 - alpha`` for negatives).
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: multiplier of the loss.
        activated: inputs are probabilities, not logits.
    """

    def __init__(self, use_sigmoid: bool = True, gamma: float = 2.0, alpha: float = 0.25,
                 reduction: str = 'mean', loss_weight: float = 1.0,
                 activated: bool = False) -> None:
        super().__init__()
        if not use_sigmoid:
            raise ValueError('FocalLoss supports use_sigmoid=True only; use CrossEntropyLoss '
                             'for a softmax classifier')
        self.use_sigmoid = use_sigmoid
        self.gamma = gamma
        self.alpha = alpha
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.activated = activated

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        reduction = reduction_override if reduction_override else self.reduction
        return self.loss_weight * sigmoid_focal_loss(
            pred, target, weight, gamma=self.gamma, alpha=self.alpha, reduction=reduction,
            avg_factor=avg_factor, activated=self.activated)
