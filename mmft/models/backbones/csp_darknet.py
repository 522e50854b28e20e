"""CSPDarknet, YOLOX's (and YOLOv5's) backbone (MMDetection 3.x keys and arguments).

Keys: ``stem.conv`` (a ``Focus``: the four pixel-parity sub-images of the input stacked
as 12 channels, then a 3x3 ConvModule), then ``stage{1..4}`` (``stage{1..5}`` for P6),
each an ``nn.Sequential`` of a stride-2 3x3 ConvModule (``.0``), for the last stage an
``SPPBottleneck`` (``.1``), and a ``CSPLayer`` of ``DarknetBottleneck``s (no channel
attention). Widths are ``int(c * widen_factor)``, block counts
``max(round(n * deepen_factor), 1)``; ``out_indices`` count the stem as 0, so the default
``(2, 3, 4)`` gives strides 8, 16, 32. Same stage layout as :class:`CSPNeXt`, which it
extends: only the stem, the block type and the arch table differ.
"""
import math
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from torch import Tensor

from mmft.registry import MODELS
from ..layers import ConvModule
from .cspnext import CSPNeXt


class Focus(nn.Module):
    """Space-to-depth (top-left, bottom-left, top-right, bottom-right pixels), then a conv.

    Args:
        in_channels: of the input image.
        out_channels: of the conv.
        kernel_size, stride: of the conv (padding keeps the size).
        conv_cfg, norm_cfg, act_cfg: layer configs.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1,
                 stride: int = 1, conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN', momentum=0.03, eps=0.001),
                 act_cfg: Dict = dict(type='Swish')) -> None:
        super().__init__()
        self.conv = ConvModule(in_channels * 4, out_channels, kernel_size, stride,
                               padding=(kernel_size - 1) // 2, conv_cfg=conv_cfg,
                               norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, x: Tensor) -> Tensor:
        # the channel order is part of the pretrained conv's weights: keep MMDetection's
        return self.conv(torch.cat((x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2],
                                    x[..., 1::2, 1::2]), dim=1))


@MODELS.register_module()
class CSPDarknet(CSPNeXt):
    """CSP-Darknet backbone (Ge et al., 2021, YOLOX).

    Args:
        arch: ``'P5'`` (3 outputs, stride 32 last) or ``'P6'``.
        deepen_factor, widen_factor: depth / width multipliers (YOLOX-s: 0.33 / 0.5).
        out_indices: which of stem (0) and stages (1..) to return.
        frozen_stages: freeze the stem and stages up to this index (-1: none).
        use_depthwise: depthwise-separable downsampling convs and bottlenecks.
        arch_ovewrite: replaces the arch table (MMDetection's spelling).
        spp_kernal_sizes: pools of the last stage's SPP (MMDetection's spelling).
        conv_cfg, norm_cfg, act_cfg: layer configs.
        norm_eval: keep BatchNorm in eval mode while training.
        init_cfg: MMDetection's default Kaiming-uniform (torch's own conv init), or
            ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
    """

    # in, out, blocks, add_identity, use_spp
    arch_settings = {
        'P5': [[64, 128, 3, True, False], [128, 256, 9, True, False],
               [256, 512, 9, True, False], [512, 1024, 3, False, True]],
        'P6': [[64, 128, 3, True, False], [128, 256, 9, True, False],
               [256, 512, 9, True, False], [512, 768, 3, True, False],
               [768, 1024, 3, False, True]],
    }
    cspnext_blocks = False

    def __init__(self,
                 arch: str = 'P5',
                 deepen_factor: float = 1.0,
                 widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (2, 3, 4),
                 frozen_stages: int = -1,
                 use_depthwise: bool = False,
                 arch_ovewrite: Optional[List] = None,
                 spp_kernal_sizes: Sequence[int] = (5, 9, 13),
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN', momentum=0.03, eps=0.001),
                 act_cfg: Dict = dict(type='Swish'),
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = dict(
                     type='Kaiming', layer='Conv2d', a=math.sqrt(5), distribution='uniform',
                     mode='fan_in', nonlinearity='leaky_relu')) -> None:
        super().__init__(arch=arch, deepen_factor=deepen_factor, widen_factor=widen_factor,
                         out_indices=out_indices, frozen_stages=frozen_stages,
                         use_depthwise=use_depthwise, expand_ratio=0.5,
                         arch_ovewrite=arch_ovewrite, spp_kernel_sizes=spp_kernal_sizes,
                         channel_attention=False, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                         act_cfg=act_cfg, norm_eval=norm_eval, init_cfg=init_cfg)

    def _make_stem(self, width: float, conv_cfg: Optional[Dict], cfg: Dict) -> nn.Module:
        """A 3x3 ``Focus`` to ``int(width)`` channels (stride 2 by the space-to-depth)."""
        return Focus(3, int(width), kernel_size=3, conv_cfg=conv_cfg, **cfg)
