"""Deformable convolutions (DCN v1 and modulated v2) on ``torchvision.ops.deform_conv2d``.

Parameter names follow mmcv's ``DeformConv2dPack`` / ``ModulatedDeformConv2dPack``, so an
MMDetection ``dcn=dict(type='DCN'|'DCNv2', ...)`` checkpoint loads key for key:
``weight`` (``out, in / groups, kh, kw``), ``bias`` (v2 with ``bias=True`` only) and
``conv_offset.{weight,bias}``, the plain conv that predicts the offsets from the input.

Offset layout (mmcv's and torchvision's): for deform group ``g`` and kernel position
``k = i * kw + j``, channel ``2 * (g * kh * kw + k)`` is the vertical (y) offset and the
next one the horizontal (x) offset. DCNv2's ``conv_offset`` has ``3 * kh * kw`` channels
per deform group: the first two thirds are those offsets, the last third the mask logits
(sigmoid). ``conv_offset`` starts at zero: the layer first samples the regular grid.
"""
import math
from typing import Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor
from torch.nn.modules.utils import _pair
from torchvision.ops import deform_conv2d

from mmft.registry import MODELS
from .conv_module import CONV_LAYERS

IntPair = Union[int, Tuple[int, int]]


class _DeformConvBase(nn.Module):
    """Weight, bias and offset conv shared by both versions; ``offset_factor`` is 2 or 3."""

    offset_factor = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: IntPair = 0, dilation: IntPair = 1,
                 groups: int = 1, deform_groups: int = 1, bias: bool = False) -> None:
        super().__init__()
        name = type(self).__name__
        if in_channels % groups or out_channels % groups:
            raise ValueError(f'{name}: in_channels {in_channels} and out_channels '
                             f'{out_channels} must both be divisible by groups={groups}')
        if in_channels % deform_groups:
            raise ValueError(f'{name}: in_channels {in_channels} must be divisible by '
                             f'deform_groups={deform_groups}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.deform_groups = deform_groups
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        kh, kw = self.kernel_size
        self.conv_offset = nn.Conv2d(in_channels, deform_groups * self.offset_factor * kh * kw,
                                     self.kernel_size, stride=self.stride, padding=self.padding,
                                     dilation=self.dilation, bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform weight in +-1/sqrt(fan_in) (as mmcv), zero bias and offsets."""
        bound = 1. / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        self.init_weights()

    def init_weights(self) -> None:
        """Zero the offset conv, so the layer starts as a regular-grid conv."""
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def _deform(self, x: Tensor, offset: Tensor, mask: Union[Tensor, None]) -> Tensor:
        return deform_conv2d(x, offset, self.weight, self.bias, stride=self.stride,
                             padding=self.padding, dilation=self.dilation, mask=mask)

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, '
                f'stride={self.stride}, padding={self.padding}, dilation={self.dilation}, '
                f'groups={self.groups}, deform_groups={self.deform_groups}, '
                f'bias={self.bias is not None}')


@MODELS.register_module()
class DeformConv2dPack(_DeformConvBase):
    """DCN v1: ``conv_offset(x)`` gives the sampling offsets (``dict(type='DCN')``)."""

    def forward(self, x: Tensor) -> Tensor:
        return self._deform(x, self.conv_offset(x), None)


@MODELS.register_module()
class ModulatedDeformConv2dPack(_DeformConvBase):
    """DCN v2: offsets plus a sigmoid mask per sample (``dict(type='DCNv2')``)."""

    offset_factor = 3

    def __init__(self, *args, bias: bool = True, **kwargs) -> None:
        super().__init__(*args, bias=bias, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv_offset(x)
        split = 2 * self.deform_groups * self.kernel_size[0] * self.kernel_size[1]
        return self._deform(x, out[:, :split], out[:, split:].sigmoid())


CONV_LAYERS.update({'DCN': DeformConv2dPack, 'DeformConv2dPack': DeformConv2dPack,
                    'DCNv2': ModulatedDeformConv2dPack,
                    'ModulatedDeformConv2dPack': ModulatedDeformConv2dPack})
