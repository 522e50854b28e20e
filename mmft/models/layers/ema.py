"""``ExpMomentumEMA`` (MMDetection 3.x name and arguments), for MMEngine's ``EMAHook``:
an exponential moving average whose momentum starts high and decays to ``momentum``::

    m_t = (1 - momentum) * exp(-(1 + t) / gamma) + momentum
    ema = ema + m_t * (param - ema)

so the averaged model follows the fresh weights closely at first (YOLOX, RTMDet)."""
import math
from typing import Optional

import torch.nn as nn
from mmengine.model import ExponentialMovingAverage
from torch import Tensor

from mmft.registry import MODELS


@MODELS.register_module()
class ExpMomentumEMA(ExponentialMovingAverage):
    """EMA with exponentially decaying momentum.

    Args:
        model: the model to average.
        momentum: the final momentum (weight of the new parameters).
        gamma: decay constant of the momentum, in updates.
        interval: update every ``interval`` steps.
        device: where the averaged copy lives.
        update_buffers: average buffers (BN statistics) too.
    """

    def __init__(self, model: nn.Module, momentum: float = 0.0002, gamma: int = 2000,
                 interval: int = 1, device: Optional[str] = None,
                 update_buffers: bool = False) -> None:
        super().__init__(model=model, momentum=momentum, interval=interval, device=device,
                         update_buffers=update_buffers)
        if gamma <= 0:
            raise ValueError(f'ExpMomentumEMA gamma must be > 0, got {gamma}')
        self.gamma = gamma

    def avg_func(self, averaged_param: Tensor, source_param: Tensor, steps: int) -> None:
        momentum = (1 - self.momentum) * math.exp(-float(1 + steps) / self.gamma) + \
            self.momentum
        averaged_param.lerp_(source_param, momentum)
