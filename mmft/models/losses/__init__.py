"""Losses (registered in MODELS)."""
from .cross_entropy import (CrossEntropyLoss, binary_cross_entropy, cross_entropy,
                            mask_cross_entropy)
from .dice_loss import DiceLoss, dice_loss
from .focal_loss import FocalLoss, sigmoid_focal_loss
from .gfocal_loss import QualityFocalLoss, quality_focal_loss
from .iou_loss import GIoULoss, IoULoss, giou_loss, iou_loss
from .mse_loss import MSELoss, mse_loss
from .smooth_l1 import L1Loss, SmoothL1Loss, l1_loss, smooth_l1_loss
from .utils import reduce_loss, weight_reduce_loss, weighted_loss

__all__ = [
    'CrossEntropyLoss', 'cross_entropy', 'binary_cross_entropy', 'mask_cross_entropy',
    'SmoothL1Loss', 'L1Loss', 'smooth_l1_loss', 'l1_loss', 'reduce_loss', 'weight_reduce_loss',
    'weighted_loss', 'FocalLoss', 'sigmoid_focal_loss', 'IoULoss', 'GIoULoss', 'iou_loss',
    'giou_loss', 'MSELoss', 'mse_loss', 'QualityFocalLoss', 'quality_focal_loss',
    'DiceLoss', 'dice_loss'
]
