"""Cross-stage-partial building blocks of CSPNeXt / CSPDarknet (MMDetection 3.x names).

Submodule names are checkpoint keys: ``CSPLayer`` has ``main_conv``, ``short_conv``,
``final_conv`` (1x1 ConvModules), ``blocks.{i}`` and, with channel attention,
``attention.fc``. ``CSPNeXtBlock`` has ``conv1`` (3x3) and ``conv2`` (a depthwise
separable ``kernel_size`` conv: ``conv2.depthwise_conv``, ``conv2.pointwise_conv``);
``DarknetBottleneck`` has ``conv1`` (1x1) and ``conv2`` (3x3). ``SPPBottleneck`` has
``conv1``, max-pools, ``conv2``. Norms default to BN(momentum=0.03, eps=0.001) as
MMDetection's (torch's momentum convention: 0.03 weight on the new batch).
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from torch import Tensor

from .conv_module import ConvModule
from .depthwise_separable_conv import DepthwiseSeparableConvModule

_BN = dict(type='BN', momentum=0.03, eps=0.001)


class ChannelAttention(nn.Module):
    """``x * hardsigmoid(fc(avgpool(x)))`` with a 1x1 conv ``fc`` (bias)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(channels, channels, 1, 1, 0, bias=True)
        self.act = nn.Hardsigmoid(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        # pooled in fp32: a half-precision mean of a large map loses the small terms
        out = self.global_avgpool(x.float()).to(x.dtype)
        return x * self.act(self.fc(out))


class DarknetBottleneck(nn.Module):
    """1x1 conv to ``out * expansion`` channels, 3x3 conv back, plus the input."""

    def __init__(self, in_channels: int, out_channels: int, expansion: float = 0.5,
                 add_identity: bool = True, use_depthwise: bool = False,
                 conv_cfg: Optional[Dict] = None, norm_cfg: Dict = _BN,
                 act_cfg: Dict = dict(type='Swish')) -> None:
        super().__init__()
        hidden = int(out_channels * expansion)
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        conv = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        self.conv1 = ConvModule(in_channels, hidden, 1, **cfg)
        self.conv2 = conv(hidden, out_channels, 3, stride=1, padding=1, **cfg)
        self.add_identity = add_identity and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPNeXtBlock(nn.Module):
    """3x3 conv, then a depthwise-separable ``kernel_size`` conv, plus the input."""

    def __init__(self, in_channels: int, out_channels: int, expansion: float = 0.5,
                 add_identity: bool = True, use_depthwise: bool = False,
                 kernel_size: int = 5, conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = _BN, act_cfg: Dict = dict(type='SiLU')) -> None:
        super().__init__()
        hidden = int(out_channels * expansion)
        conv = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        # MMDetection passes no conv_cfg to the first conv; kept so keys/layers match
        self.conv1 = conv(in_channels, hidden, 3, stride=1, padding=1, norm_cfg=norm_cfg,
                          act_cfg=act_cfg)
        self.conv2 = DepthwiseSeparableConvModule(hidden, out_channels, kernel_size, stride=1,
                                                  padding=kernel_size // 2, conv_cfg=conv_cfg,
                                                  norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.add_identity = add_identity and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPLayer(nn.Module):
    """Split into a main path (1x1 conv + ``num_blocks`` blocks) and a 1x1 shortcut,
    concatenate (main first), optionally reweight channels, fuse with a 1x1 conv.

    Args:
        in_channels, out_channels: of the layer.
        expand_ratio: hidden channels = ``out_channels * expand_ratio``.
        num_blocks: blocks on the main path.
        add_identity: residual inside the blocks.
        use_depthwise: depthwise-separable convs in the blocks.
        use_cspnext_block: ``CSPNeXtBlock`` (RTMDet) instead of ``DarknetBottleneck`` (YOLOX).
        channel_attention: ``ChannelAttention`` on the concatenation.
        conv_cfg, norm_cfg, act_cfg: layer configs.
    """

    def __init__(self, in_channels: int, out_channels: int, expand_ratio: float = 0.5,
                 num_blocks: int = 1, add_identity: bool = True, use_depthwise: bool = False,
                 use_cspnext_block: bool = False, channel_attention: bool = False,
                 conv_cfg: Optional[Dict] = None, norm_cfg: Dict = _BN,
                 act_cfg: Dict = dict(type='Swish'), init_cfg: Optional[Dict] = None) -> None:
        super().__init__()
        block = CSPNeXtBlock if use_cspnext_block else DarknetBottleneck
        mid = int(out_channels * expand_ratio)
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.channel_attention = channel_attention
        self.main_conv = ConvModule(in_channels, mid, 1, **cfg)
        self.short_conv = ConvModule(in_channels, mid, 1, **cfg)
        self.final_conv = ConvModule(2 * mid, out_channels, 1, **cfg)
        self.blocks = nn.Sequential(*[block(mid, mid, 1.0, add_identity, use_depthwise, **cfg)
                                      for _ in range(num_blocks)])
        if channel_attention:
            self.attention = ChannelAttention(2 * mid)

    def forward(self, x: Tensor) -> Tensor:
        x_final = torch.cat((self.blocks(self.main_conv(x)), self.short_conv(x)), dim=1)
        if self.channel_attention:
            x_final = self.attention(x_final)
        return self.final_conv(x_final)


class SPPBottleneck(nn.Module):
    """Spatial pyramid pooling: 1x1 conv to half, concat with stride-1 max-pools, 1x1 conv."""

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_sizes: Sequence[int] = (5, 9, 13), conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = _BN, act_cfg: Dict = dict(type='Swish')) -> None:
        super().__init__()
        mid = in_channels // 2
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv1 = ConvModule(in_channels, mid, 1, stride=1, **cfg)
        self.poolings = nn.ModuleList([nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)
                                       for k in kernel_sizes])
        self.conv2 = ConvModule(mid * (len(kernel_sizes) + 1), out_channels, 1, **cfg)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.poolings], dim=1))
