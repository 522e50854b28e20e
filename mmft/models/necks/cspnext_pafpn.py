"""CSPNeXtPAFPN, RTMDet's neck (MMDetection 3.x keys and arguments).

Keys: ``reduce_layers.{j}`` (1x1 ConvModules, top level first), ``top_down_blocks.{j}``
and ``bottom_up_blocks.{j}`` (``CSPLayer``s of ``CSPNeXtBlock``s, no identity),
``downsamples.{j}`` (3x3 stride-2), ``out_convs.{i}`` (3x3 to ``out_channels``).
Top-down: the top map is reduced to the next level's width, upsampled, concatenated
(upsampled first) and fused; bottom-up: the fused map is downsampled, concatenated
with the next top-down output and fused. Outputs: one map per input, same strides.
"""
import math
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmft.registry import MODELS
from ..layers import ConvModule
from ..layers.csp_layer import CSPLayer, DepthwiseSeparableConvModule


@MODELS.register_module()
class CSPNeXtPAFPN(BaseModule):
    """Path aggregation network with CSPNeXt blocks.

    Args:
        in_channels: per input level.
        out_channels: of every output level.
        num_csp_blocks: blocks per CSP layer.
        use_depthwise: depthwise-separable downsamples and output convs.
        expand_ratio: hidden width of the CSP layers.
        upsample_cfg: ``nn.Upsample`` arguments.
        conv_cfg, norm_cfg, act_cfg: layer configs.
        init_cfg: MMDetection's default Kaiming-uniform (torch's own conv init).
    """

    # CSPLayers of CSPNeXtBlocks (YOLOXPAFPN: DarknetBottlenecks)
    cspnext_blocks: bool = True

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int,
                 num_csp_blocks: int = 3,
                 use_depthwise: bool = False,
                 expand_ratio: float = 0.5,
                 upsample_cfg: Dict = dict(scale_factor=2, mode='nearest'),
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN', momentum=0.03, eps=0.001),
                 act_cfg: Dict = dict(type='Swish'),
                 init_cfg: Optional[Union[Dict, List[Dict]]] = dict(
                     type='Kaiming', layer='Conv2d', a=math.sqrt(5), distribution='uniform',
                     mode='fan_in', nonlinearity='leaky_relu')) -> None:
        super().__init__(init_cfg)
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        csp = dict(num_blocks=num_csp_blocks, add_identity=False, use_depthwise=use_depthwise,
                   use_cspnext_block=self.cspnext_blocks, expand_ratio=expand_ratio, **cfg)
        conv = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        self.upsample = nn.Upsample(**upsample_cfg)
        self.reduce_layers = nn.ModuleList()
        self.top_down_blocks = nn.ModuleList()
        for idx in range(len(in_channels) - 1, 0, -1):
            self.reduce_layers.append(ConvModule(in_channels[idx], in_channels[idx - 1], 1,
                                                 **cfg))
            self.top_down_blocks.append(CSPLayer(in_channels[idx - 1] * 2, in_channels[idx - 1],
                                                 **csp))
        self.downsamples = nn.ModuleList()
        self.bottom_up_blocks = nn.ModuleList()
        for idx in range(len(in_channels) - 1):
            self.downsamples.append(conv(in_channels[idx], in_channels[idx], 3, stride=2,
                                         padding=1, **cfg))
            self.bottom_up_blocks.append(CSPLayer(in_channels[idx] * 2, in_channels[idx + 1],
                                                  **csp))
        self.out_convs = nn.ModuleList([self._out_conv(conv, c, out_channels, cfg)
                                        for c in in_channels])

    def _out_conv(self, conv: type, in_channels: int, out_channels: int,
                  cfg: Dict) -> nn.Module:
        """3x3 (depthwise-separable with ``use_depthwise``) output conv of one level."""
        return conv(in_channels, out_channels, 3, padding=1, **cfg)

    def forward(self, inputs: Sequence[Tensor]) -> tuple:
        """One ``out_channels`` map per input level."""
        n = len(self.in_channels)
        if len(inputs) != n:
            raise ValueError(f'{type(self).__name__} has in_channels for {n} levels but got '
                             f'{len(inputs)} feature maps')
        inner_outs = [inputs[-1]]
        for idx in range(n - 1, 0, -1):
            j = n - 1 - idx
            high = self.reduce_layers[j](inner_outs[0])
            inner_outs[0] = high
            inner_outs.insert(0, self.top_down_blocks[j](
                torch.cat([self.upsample(high), inputs[idx - 1]], 1)))
        outs = [inner_outs[0]]
        for idx in range(n - 1):
            outs.append(self.bottom_up_blocks[idx](
                torch.cat([self.downsamples[idx](outs[-1]), inner_outs[idx + 1]], 1)))
        return tuple(conv(out) for conv, out in zip(self.out_convs, outs))
