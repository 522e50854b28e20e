"""SSD's extra layers and L2 norm (MMDetection 3.x ``SSDNeck``).

Outputs: the backbone's maps (the first one L2-normalised and scaled per channel when
``l2_norm_scale``), then one map per extra level. Extra level ``i``: a 1x1 ``ConvModule``
to ``out_channels[n + i] // 2`` and a ``kernel x kernel`` one (3, or ``last_kernel_size``
for the last level) of stride ``level_strides[i]`` and padding ``level_paddings[i]``, where
``n = len(in_channels)``; with ``use_depthwise`` (SSDLite) the second is a depthwise 3x3 plus
pointwise 1x1 pair.

Keys: ``l2_norm.weight`` (C,), ``extra_layers.{i}.0.conv.*``, ``extra_layers.{i}.1.conv.*``
(``.1.depthwise_conv.*`` / ``.1.pointwise_conv.*`` with ``use_depthwise``), plus ``bn``
with a ``norm_cfg``.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmft.registry import MODELS
from ..layers import ConvModule
from ..layers.depthwise_separable_conv import DepthwiseSeparableConvModule


class L2Norm(nn.Module):
    """``weight * x / ||x||`` over channels (``weight`` starts at ``scale``)."""

    def __init__(self, n_dims: int, scale: float = 20., eps: float = 1e-10) -> None:
        super().__init__()
        self.n_dims = n_dims
        self.weight = nn.Parameter(torch.full((n_dims,), float(scale)))
        self.eps = eps
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        # the norm in fp32: fp16 squares overflow
        x_float = x.float()
        norm = x_float.pow(2).sum(1, keepdim=True).sqrt() + self.eps
        return (self.weight[None, :, None, None].float() * x_float / norm).type_as(x)


@MODELS.register_module()
class SSDNeck(BaseModule):
    """SSD's extra feature levels (see the module docstring).

    Args:
        in_channels: channels of the backbone's outputs.
        out_channels: channels of every output level (starting with ``in_channels``).
        level_strides, level_paddings: of each extra level's second conv.
        l2_norm_scale: initial L2 norm scale of the first map; None for no L2 norm.
        last_kernel_size: kernel of the last extra level's second conv.
        use_depthwise: depthwise-separable second convs (SSDLite).
        conv_cfg, norm_cfg, act_cfg: layer configs.
        init_cfg: MMDetection's default: Xavier-uniform convs.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: Sequence[int],
                 level_strides: Sequence[int],
                 level_paddings: Sequence[int],
                 l2_norm_scale: Optional[float] = 20.,
                 last_kernel_size: int = 3,
                 use_depthwise: bool = False,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Optional[Dict] = None,
                 act_cfg: Optional[Dict] = dict(type='ReLU'),
                 init_cfg: Optional[Union[Dict, List[Dict]]] = [
                     dict(type='Xavier', distribution='uniform', layer='Conv2d'),
                     dict(type='Constant', val=1, layer='BatchNorm2d')]) -> None:
        super().__init__(init_cfg=init_cfg)
        in_channels, out_channels = list(in_channels), list(out_channels)
        num_extra = len(out_channels) - len(in_channels)
        if num_extra <= 0 or num_extra != len(level_strides) or \
                len(level_strides) != len(level_paddings):
            raise ValueError(f'SSDNeck: {len(out_channels)} out_channels for {len(in_channels)} '
                             f'in_channels need one level_stride and level_padding per extra '
                             f'level, got {len(level_strides)} and {len(level_paddings)}')
        if in_channels != out_channels[:len(in_channels)]:
            raise ValueError(f'SSDNeck out_channels {out_channels} must start with in_channels '
                             f'{in_channels}')
        if l2_norm_scale:
            self.l2_norm = L2Norm(in_channels[0], l2_norm_scale)
        self.extra_layers = nn.ModuleList()
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        second = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        for i, (channels, stride, padding) in enumerate(
                zip(out_channels[len(in_channels):], level_strides, level_paddings)):
            kernel = last_kernel_size if i == num_extra - 1 else 3
            self.extra_layers.append(nn.Sequential(
                ConvModule(out_channels[len(in_channels) - 1 + i], channels // 2, 1, **cfg),
                second(channels // 2, channels, kernel, stride=stride, padding=padding, **cfg)))

    def init_weights(self) -> None:
        super().init_weights()
        # the init_cfg's Xavier does not know the L2 norm's scale (MMDetection adds an override)
        if hasattr(self, 'l2_norm'):
            nn.init.constant_(self.l2_norm.weight, self.l2_norm.scale)

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        outs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if hasattr(self, 'l2_norm'):
            outs[0] = self.l2_norm(outs[0])
        feat = outs[-1]
        for layer in self.extra_layers:
            feat = layer(feat)
            outs.append(feat)
        return tuple(outs)
