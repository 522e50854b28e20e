"""Mean squared error (MMDetection's ``MSELoss``), element-wise with the shared weighting."""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmft.registry import MODELS
from .utils import weighted_loss


@weighted_loss
def mse_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Element-wise ``(pred - target) ** 2``."""
    return F.mse_loss(pred, target, reduction='none')


@MODELS.register_module()
class MSELoss(nn.Module):
    """Squared error, weighted and reduced as every mmft loss.

    Args:
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, reduction: str = 'mean', loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        if reduction_override not in (None, 'none', 'mean', 'sum'):
            raise ValueError(f'MSELoss reduction_override must be none/mean/sum, got '
                             f'{reduction_override!r}')
        reduction = reduction_override or self.reduction
        return self.loss_weight * mse_loss(pred, target, weight, reduction=reduction,
                                           avg_factor=avg_factor)
