"""Cross-entropy losses: softmax over classes, per-class sigmoid, and mask BCE.

Shapes:
- softmax: ``pred (N, C)`` logits, ``label (N,)`` in ``[0, C)``; for a
  detector's classifier ``C = num_classes + 1`` with background last.
- sigmoid: ``pred (N, C)`` and ``label (N,)`` in ``[0, C]``, ``C`` (or
  ``ignore_index``) meaning background / ignore (expanded to one-hot), or a
  ``label`` of ``pred``'s shape with 0/1 targets.
- mask: ``pred (N, C, H, W)`` logits, ``target (N, H, W)`` in [0, 1] and the
  class ``label (N,)`` choosing the channel of each RoI. Detectors call it
  as ``loss(pred, target, label)``: the label goes in the weight position.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmft.registry import MODELS
from .utils import weight_reduce_loss

_DEFAULT_IGNORE = -100  # torch's default ignore_index


def cross_entropy(pred: Tensor, label: Tensor, weight: Optional[Tensor] = None,
                  reduction: str = 'mean', avg_factor: Optional[float] = None,
                  class_weight: Optional[Tensor] = None, ignore_index: Optional[int] = -100,
                  avg_non_ignore: bool = False) -> Tensor:
    """Softmax cross-entropy with per-sample ``weight`` (N,) and ``avg_factor``."""
    ignore_index = _DEFAULT_IGNORE if ignore_index is None else ignore_index
    loss = F.cross_entropy(pred, label, weight=class_weight, reduction='none',
                           ignore_index=ignore_index)
    if avg_factor is None and avg_non_ignore and reduction == 'mean':
        avg_factor = label.numel() - (label == ignore_index).sum().item()
    if weight is not None:
        weight = weight.float()
    return weight_reduce_loss(loss, weight=weight, reduction=reduction, avg_factor=avg_factor)


def _expand_onehot_labels(labels: Tensor, label_weights: Optional[Tensor], label_channels: int,
                          ignore_index: int) -> Tuple[Tensor, Tensor, Tensor]:
    """``(N,)`` class indices -> ``(N, C)`` one-hot; labels >= C (background) are all zero."""
    valid_mask = (labels >= 0) & (labels != ignore_index)
    in_range = valid_mask & (labels < label_channels)
    bin_labels = labels.new_zeros((labels.size(0), label_channels))
    rows = torch.nonzero(in_range, as_tuple=False).view(-1)
    bin_labels[rows, labels[rows]] = 1
    valid_mask = valid_mask.view(-1, 1).expand(labels.size(0), label_channels).float()
    if label_weights is None:
        bin_label_weights = valid_mask
    else:
        bin_label_weights = label_weights.view(-1, 1).repeat(1, label_channels) * valid_mask
    return bin_labels, bin_label_weights, valid_mask


def binary_cross_entropy(pred: Tensor, label: Tensor, weight: Optional[Tensor] = None,
                         reduction: str = 'mean', avg_factor: Optional[float] = None,
                         class_weight: Optional[Tensor] = None, ignore_index: Optional[int] = -100,
                         avg_non_ignore: bool = False) -> Tensor:
    """Sigmoid BCE; ``label`` (N,) class indices are expanded to one-hot over ``pred``'s C."""
    ignore_index = _DEFAULT_IGNORE if ignore_index is None else ignore_index
    if pred.dim() != label.dim():
        label, weight, valid_mask = _expand_onehot_labels(label, weight, pred.size(-1),
                                                          ignore_index)
    else:
        valid_mask = ((label >= 0) & (label != ignore_index)).float()
        weight = valid_mask if weight is None else weight * valid_mask
    if avg_factor is None and avg_non_ignore and reduction == 'mean':
        avg_factor = valid_mask.sum().item()
    loss = F.binary_cross_entropy_with_logits(pred, label.float(), pos_weight=class_weight,
                                              reduction='none')
    return weight_reduce_loss(loss, weight.float(), reduction=reduction, avg_factor=avg_factor)


def mask_cross_entropy(pred: Tensor, target: Tensor, label: Tensor, reduction: str = 'mean',
                       avg_factor: Optional[float] = None, class_weight: Optional[Tensor] = None,
                       ignore_index: Optional[int] = None, **kwargs) -> Tensor:
    """Mean BCE between each RoI's ``label`` channel of ``pred`` and ``target``; shape (1,)."""
    if ignore_index is not None:
        raise ValueError('mask cross-entropy does not support ignore_index; leave it None')
    if reduction != 'mean' or avg_factor is not None:
        raise ValueError("mask cross-entropy supports only reduction='mean' without avg_factor")
    num_rois = pred.size(0)
    if num_rois == 0:
        return pred.sum()[None] * 0
    inds = torch.arange(num_rois, dtype=torch.long, device=pred.device)
    pred_slice = pred[inds, label.long()]
    return F.binary_cross_entropy_with_logits(pred_slice, target.float(), weight=class_weight,
                                              reduction='mean')[None]


@MODELS.register_module()
class CrossEntropyLoss(nn.Module):
    """Cross-entropy loss: softmax (default), sigmoid or mask.

    Args:
        use_sigmoid: per-class sigmoid BCE instead of softmax.
        use_mask: mask BCE on the label's channel (Mask R-CNN).
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        class_weight: per-class weights.
        ignore_index: label to ignore (default -100 as torch).
        loss_weight: multiplier of the loss.
        avg_non_ignore: average over non-ignored elements only.
    """

    def __init__(self, use_sigmoid: bool = False, use_mask: bool = False, reduction: str = 'mean',
                 class_weight: Optional[List[float]] = None, ignore_index: Optional[int] = None,
                 loss_weight: float = 1.0, avg_non_ignore: bool = False) -> None:
        super().__init__()
        if use_sigmoid and use_mask:
            raise ValueError('CrossEntropyLoss: use_sigmoid and use_mask cannot both be True')
        self.use_sigmoid = use_sigmoid
        self.use_mask = use_mask
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.class_weight = class_weight
        self.ignore_index = ignore_index
        self.avg_non_ignore = avg_non_ignore
        if use_sigmoid:
            self.cls_criterion = binary_cross_entropy
        elif use_mask:
            self.cls_criterion = mask_cross_entropy
        else:
            self.cls_criterion = cross_entropy

    def extra_repr(self) -> str:
        return (f'use_sigmoid={self.use_sigmoid}, use_mask={self.use_mask}, '
                f'loss_weight={self.loss_weight}, avg_non_ignore={self.avg_non_ignore}')

    def forward(self, cls_score: Tensor, label: Tensor, weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None,
                ignore_index: Optional[int] = None, **kwargs) -> Tensor:
        reduction = reduction_override if reduction_override else self.reduction
        if ignore_index is None:
            ignore_index = self.ignore_index
        class_weight = cls_score.new_tensor(self.class_weight) \
            if self.class_weight is not None else None
        return self.loss_weight * self.cls_criterion(
            cls_score, label, weight, class_weight=class_weight, reduction=reduction,
            avg_factor=avg_factor, ignore_index=ignore_index, avg_non_ignore=self.avg_non_ignore,
            **kwargs)
