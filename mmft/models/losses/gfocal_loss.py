"""Quality focal loss (Li et al., Generalized Focal Loss), MMDetection 3.x arguments.

Shapes: ``pred (N, C)`` logits (sigmoid, no background column); ``target`` either a
pair ``(labels (N,), scores (N,))`` with labels in ``[0, C]`` (``C`` = background)
and the positive's quality target (its IoU) in ``scores``, or a soft ``(N, C)``
tensor. With ``p = sigmoid(pred)`` and soft target ``y`` per element::

    loss = BCE(p, y) * |y - p| ** beta

(for the pair form ``y`` is 0 except at a positive's label, where it is its score).
The element losses are summed over classes: the loss is ``(N,)`` before weighting.
"""
from typing import Optional, Tuple, Union

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmft.registry import MODELS
from .utils import weight_reduce_loss


def _soft_target(pred: Tensor, target: Union[Tensor, Tuple[Tensor, Tensor]]) -> Tensor:
    if isinstance(target, Tensor):
        if target.shape != pred.shape:
            raise ValueError(f'QualityFocalLoss tensor target {tuple(target.shape)} must have '
                             f'pred\'s shape {tuple(pred.shape)}')
        return target.type_as(pred)
    if len(target) != 2:
        raise ValueError('QualityFocalLoss target must be (labels, scores) or an (N, C) tensor')
    labels, scores = target
    num_classes = pred.size(1)
    if labels.numel() != pred.size(0) or scores.numel() != pred.size(0):
        raise ValueError(f'QualityFocalLoss: {labels.numel()} labels / {scores.numel()} scores '
                         f'for {pred.size(0)} predictions')
    soft = pred.new_zeros(pred.shape)
    pos = ((labels >= 0) & (labels < num_classes)).nonzero().squeeze(1)
    soft[pos, labels[pos].long()] = scores[pos].type_as(pred)
    return soft


def quality_focal_loss(pred: Tensor, target: Union[Tensor, Tuple[Tensor, Tensor]],
                       beta: float = 2.0, activated: bool = False) -> Tensor:
    """Per-prediction ``(N,)`` QFL (see the module docstring)."""
    soft = _soft_target(pred, target)
    if activated:
        prob = pred
        bce = F.binary_cross_entropy(pred, soft, reduction='none')
    else:
        prob = pred.sigmoid()
        bce = F.binary_cross_entropy_with_logits(pred, soft, reduction='none')
    return (bce * (soft - prob).abs().pow(beta)).sum(dim=1)


@MODELS.register_module()
class QualityFocalLoss(nn.Module):
    """QFL: sigmoid scores trained toward the box quality (IoU) of positives.

    Args:
        use_sigmoid: must be True (MMDetection has no softmax QFL).
        beta: exponent of the modulating factor.
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: multiplier.
        activated: ``pred`` holds probabilities, not logits.
    """

    def __init__(self, use_sigmoid: bool = True, beta: float = 2.0, reduction: str = 'mean',
                 loss_weight: float = 1.0, activated: bool = False) -> None:
        super().__init__()
        if use_sigmoid is not True:
            raise ValueError('QualityFocalLoss supports only use_sigmoid=True')
        self.use_sigmoid = use_sigmoid
        self.beta = beta
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.activated = activated

    def forward(self, pred: Tensor, target: Union[Tensor, Tuple[Tensor, Tensor]],
                weight: Optional[Tensor] = None, avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        reduction = reduction_override or self.reduction
        loss = quality_focal_loss(pred, target, self.beta, self.activated)
        if weight is not None and weight.shape != loss.shape:
            raise ValueError(f'QualityFocalLoss weight must be (N,) per prediction, got '
                             f'{tuple(weight.shape)} for {loss.numel()} predictions')
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)
