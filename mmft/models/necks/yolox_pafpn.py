"""YOLOXPAFPN, YOLOX's neck (MMDetection 3.x keys and arguments).

The same path aggregation as :class:`CSPNeXtPAFPN` (which it extends) with its keys
``reduce_layers.{j}``, ``top_down_blocks.{j}``, ``downsamples.{j}``, ``bottom_up_blocks.{j}``,
``out_convs.{i}``; the CSP layers hold ``DarknetBottleneck``s and every ``out_convs.{i}``
is a 1x1 ConvModule (never depthwise).
"""
import math
from typing import Dict, List, Optional, Sequence, Union

import torch.nn as nn

from mmft.registry import MODELS
from ..layers import ConvModule
from .cspnext_pafpn import CSPNeXtPAFPN


@MODELS.register_module()
class YOLOXPAFPN(CSPNeXtPAFPN):
    """Path aggregation network with CSP-Darknet blocks.

    Args:
        in_channels: per input level.
        out_channels: of every output level.
        num_csp_blocks: bottlenecks per CSP layer.
        use_depthwise: depthwise-separable downsamples and bottlenecks.
        upsample_cfg: ``nn.Upsample`` arguments.
        conv_cfg, norm_cfg, act_cfg: layer configs.
        init_cfg: MMDetection's default Kaiming-uniform (torch's own conv init).
    """

    cspnext_blocks = False

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int,
                 num_csp_blocks: int = 3,
                 use_depthwise: bool = False,
                 upsample_cfg: Dict = dict(scale_factor=2, mode='nearest'),
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN', momentum=0.03, eps=0.001),
                 act_cfg: Dict = dict(type='Swish'),
                 init_cfg: Optional[Union[Dict, List[Dict]]] = dict(
                     type='Kaiming', layer='Conv2d', a=math.sqrt(5), distribution='uniform',
                     mode='fan_in', nonlinearity='leaky_relu')) -> None:
        super().__init__(in_channels, out_channels, num_csp_blocks=num_csp_blocks,
                         use_depthwise=use_depthwise, expand_ratio=0.5,
                         upsample_cfg=upsample_cfg, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                         act_cfg=act_cfg, init_cfg=init_cfg)

    def _out_conv(self, conv: type, in_channels: int, out_channels: int,
                  cfg: Dict) -> nn.Module:
        return ConvModule(in_channels, out_channels, 1, **cfg)
