"""HRFPN, HRNet's neck (MMDetection 3.x ``HRFPN`` arguments and keys).

All input levels are upsampled (bilinear) to the first one's size and concatenated,
reduced by a 1x1 conv (``reduction_conv.conv``), pooled into ``num_outs`` levels (stride
``2**i`` average or max pooling) and each passed through a 3x3 conv (``fpn_convs.{i}.conv``).
No norm, no activation; convs start with Caffe2's Xavier init (as MMDetection).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from torch import Tensor

from mmft.registry import MODELS
from ..layers import ConvModule


@MODELS.register_module()
class HRFPN(BaseModule):
    """Args:
        in_channels: channels of each HRNet output.
        out_channels: channels of every output level.
        num_outs: output levels.
        pooling_type: ``'AVG'`` or ``'MAX'``.
        stride: stride of the 3x3 output convs.
        with_cp: gradient checkpointing of the convs.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int, num_outs: int = 5,
                 pooling_type: str = 'AVG', conv_cfg: Optional[Dict] = None,
                 norm_cfg: Optional[Dict] = None, with_cp: bool = False, stride: int = 1,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg)
        if not isinstance(in_channels, (list, tuple)) or not in_channels:
            raise TypeError(f'HRFPN in_channels must be a list of ints, got {in_channels!r}')
        if pooling_type not in ('AVG', 'MAX'):
            raise ValueError(f"HRFPN pooling_type must be 'AVG' or 'MAX', got {pooling_type!r}")
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_outs = num_outs
        self.with_cp = with_cp
        # MMDetection builds these without a norm whatever norm_cfg says
        self.reduction_conv = ConvModule(sum(in_channels), out_channels, 1, conv_cfg=conv_cfg,
                                         act_cfg=None)
        self.fpn_convs = nn.ModuleList([
            ConvModule(out_channels, out_channels, 3, padding=1, stride=stride,
                       conv_cfg=conv_cfg, act_cfg=None) for _ in range(num_outs)])
        self.pooling = F.max_pool2d if pooling_type == 'MAX' else F.avg_pool2d
        self.init_weights()

    def init_weights(self) -> None:
        """Caffe2 Xavier (uniform, fan_in, gain 1) weights and zero biases."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1, mode='fan_in', nonlinearity='leaky_relu')
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _conv(self, conv: nn.Module, x: Tensor) -> Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(conv, x, use_reentrant=False)
        return conv(x)

    def forward(self, inputs: List[Tensor]) -> Tuple[Tensor, ...]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'HRFPN got {len(inputs)} inputs, configured for '
                             f'{len(self.in_channels)} (in_channels={self.in_channels})')
        size = inputs[0].shape[-2:]
        ups = [inputs[0]] + [F.interpolate(x, scale_factor=2**i, mode='bilinear')
                             for i, x in enumerate(inputs[1:], 1)]
        if any(u.shape[-2:] != size for u in ups):
            raise ValueError(f'HRFPN inputs {[tuple(x.shape[-2:]) for x in inputs]} are not '
                             'halvings of each other; pad images to a multiple of 32')
        out = self._conv(self.reduction_conv, torch.cat(ups, dim=1))
        levels = [out] + [self.pooling(out, kernel_size=2**i, stride=2**i)
                          for i in range(1, self.num_outs)]
        return tuple(self._conv(conv, x) for conv, x in zip(self.fpn_convs, levels))
