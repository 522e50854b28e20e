"""GCNet's global context block, a ResNet plugin (mmcv's ``ContextBlock`` names).

Parameters: ``conv_mask`` (``C -> 1`` 1x1 conv, attention pooling only) and, per fusion,
``channel_add_conv`` / ``channel_mul_conv`` = ``Sequential(conv C->P, LayerNorm([P, 1, 1]),
ReLU, conv P->C)`` with ``P = int(C * ratio)``; the last conv starts at zero so the block
starts as the identity. Used as ``plugins=[dict(cfg=dict(type='ContextBlock',
ratio=1. / 16), stages=(False, True, True, True), position='after_conv3')]``.
"""
from typing import Sequence

import torch
import torch.nn as nn
from torch import Tensor

from mmft.registry import MODELS


@MODELS.register_module()
class ContextBlock(nn.Module):
    """Pool a global context vector, transform it, add (and/or multiply) it everywhere.

    Args:
        in_channels: channels of the input (and output).
        ratio: bottleneck width of the transform, as a share of ``in_channels``.
        pooling_type: ``'att'`` (softmax attention over positions) or ``'avg'``.
        fusion_types: any of ``'channel_add'``, ``'channel_mul'``.
    """

    _abbr_ = 'context_block'

    def __init__(self, in_channels: int, ratio: float, pooling_type: str = 'att',
                 fusion_types: Sequence[str] = ('channel_add', )) -> None:
        super().__init__()
        if pooling_type not in ('att', 'avg'):
            raise ValueError(f"ContextBlock pooling_type must be 'att' or 'avg', "
                             f'got {pooling_type!r}')
        fusion_types = tuple(fusion_types)
        if not fusion_types or not set(fusion_types) <= {'channel_add', 'channel_mul'}:
            raise ValueError(f"ContextBlock fusion_types must be a non-empty subset of "
                             f"('channel_add', 'channel_mul'), got {fusion_types}")
        self.in_channels = in_channels
        self.ratio = ratio
        self.planes = int(in_channels * ratio)
        self.pooling_type = pooling_type
        self.fusion_types = fusion_types
        if pooling_type == 'att':
            self.conv_mask = nn.Conv2d(in_channels, 1, kernel_size=1)
            self.softmax = nn.Softmax(dim=2)
        else:
            self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.channel_add_conv = self._transform() if 'channel_add' in fusion_types else None
        self.channel_mul_conv = self._transform() if 'channel_mul' in fusion_types else None
        self.init_weights()

    def _transform(self) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(self.in_channels, self.planes, kernel_size=1),
            nn.LayerNorm([self.planes, 1, 1]), nn.ReLU(inplace=True),
            nn.Conv2d(self.planes, self.in_channels, kernel_size=1))

    def init_weights(self) -> None:
        """Kaiming (fan_in) attention conv; zero last transform convs: identity at start."""
        if self.pooling_type == 'att':
            nn.init.kaiming_normal_(self.conv_mask.weight, mode='fan_in', nonlinearity='relu')
            nn.init.zeros_(self.conv_mask.bias)
        for transform in (self.channel_add_conv, self.channel_mul_conv):
            if transform is not None:
                nn.init.zeros_(transform[-1].weight)
                nn.init.zeros_(transform[-1].bias)

    def spatial_pool(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B, C, 1, 1)`` context."""
        b, c = x.shape[:2]
        if self.pooling_type == 'avg':
            return self.avg_pool(x)
        weights = self.softmax(self.conv_mask(x).view(b, 1, -1))  # B, 1, HW
        return torch.bmm(x.view(b, c, -1), weights.transpose(1, 2)).view(b, c, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        context = self.spatial_pool(x)
        out = x
        if self.channel_mul_conv is not None:
            out = out * torch.sigmoid(self.channel_mul_conv(context))
        if self.channel_add_conv is not None:
            out = out + self.channel_add_conv(context)
        return out
