"""MobileNetV2 (MMDetection 3.x keys and arguments).

Keys: ``conv1`` (3x3 stride 2 stem), ``layer1..layer7`` of ``InvertedResidual`` blocks
(``expand_conv`` 1x1 (absent when the expand ratio is 1), ``depthwise_conv`` 3x3 grouped,
``linear_conv`` 1x1 without activation; each a ``ConvModule`` with ``conv``/``bn``) and
``conv2`` (1x1 to 1280). ``out_indices`` count ``layer1..layer7`` as 0..6 and ``conv2`` as 7;
strides of those outputs: 2, 4, 8, 16, 16, 32, 32, 32.

torchvision's ``mobilenet_v2`` ImageNet weights map one to one
(``mmft.checkpoint.converters.torchvision``: ``features.{n}`` -> these names).
"""
from typing import Dict, List, Optional, Sequence, Union

import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from torch import Tensor

from mmft.registry import MODELS
from ..layers import ConvModule
from .utils import freeze_modules, init_convs_and_norms, load_pretrained_cfgs, norms_to_eval


def make_divisible(value: float, divisor: int, min_value: Optional[int] = None,
                   min_ratio: float = 0.9) -> int:
    """``value`` rounded to a multiple of ``divisor``, never below ``min_ratio * value``."""
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return new_value + divisor if new_value < min_ratio * value else new_value


class InvertedResidual(BaseModule):
    """expand 1x1 -> depthwise 3x3 -> linear 1x1, plus the input when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int,
                 stride: int = 1, with_expand_conv: bool = True, conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN'), act_cfg: Dict = dict(type='ReLU6'),
                 with_cp: bool = False) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f'InvertedResidual stride must be 1 or 2, got {stride}')
        self.with_res_shortcut = stride == 1 and in_channels == out_channels
        self.with_expand_conv = with_expand_conv
        self.with_cp = with_cp
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        if with_expand_conv:
            self.expand_conv = ConvModule(in_channels, mid_channels, 1, act_cfg=act_cfg, **cfg)
        self.depthwise_conv = ConvModule(mid_channels, mid_channels, 3, stride=stride, padding=1,
                                         groups=mid_channels, act_cfg=act_cfg, **cfg)
        self.linear_conv = ConvModule(mid_channels, out_channels, 1, act_cfg=None, **cfg)

    def forward(self, x: Tensor) -> Tensor:
        def inner(x: Tensor) -> Tensor:
            out = self.expand_conv(x) if self.with_expand_conv else x
            out = self.linear_conv(self.depthwise_conv(out))
            return x + out if self.with_res_shortcut else out

        if self.with_cp and x.requires_grad:
            return cp.checkpoint(inner, x, use_reentrant=False)
        return inner(x)


@MODELS.register_module()
class MobileNetV2(BaseModule):
    """MobileNetV2 backbone (see the module docstring).

    Args:
        widen_factor: channel multiplier.
        out_indices: outputs to return (0..7).
        frozen_stages: stem and ``layer1..layer{frozen_stages}`` frozen (-1: none).
        conv_cfg, norm_cfg, act_cfg: layer configs (YOLOv3-MobileNetV2 uses LeakyReLU).
        norm_eval: keep BatchNorm in eval mode while training.
        with_cp: gradient checkpointing in the blocks.
        pretrained: deprecated, use ``init_cfg``.
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` loads after the default init;
            torchvision's ``mobilenet_v2`` ImageNet file works as is.
    """

    # expand ratio, channels, blocks, stride of the first block
    arch_settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
                     [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]

    def __init__(self,
                 widen_factor: float = 1.,
                 out_indices: Sequence[int] = (1, 2, 4, 7),
                 frozen_stages: int = -1,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN'),
                 act_cfg: Dict = dict(type='ReLU6'),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None) -> None:
        if init_cfg and pretrained:
            raise ValueError('MobileNetV2: give init_cfg or pretrained, not both')
        if isinstance(pretrained, str):
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)
        if not set(out_indices) <= set(range(8)):
            raise ValueError(f'MobileNetV2 out_indices must be a subset of 0..7, got '
                             f'{out_indices}')
        if frozen_stages not in range(-1, 8):
            raise ValueError(f'MobileNetV2 frozen_stages must be in -1..7, got {frozen_stages}')
        self.widen_factor = widen_factor
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.conv_cfg, self.norm_cfg, self.act_cfg = conv_cfg, norm_cfg, act_cfg
        self.norm_eval = norm_eval
        self.with_cp = with_cp

        self.in_channels = make_divisible(32 * widen_factor, 8)
        self.conv1 = ConvModule(3, self.in_channels, 3, stride=2, padding=1, conv_cfg=conv_cfg,
                                norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.layers: List[str] = []
        for i, (expand_ratio, channels, num_blocks, stride) in enumerate(self.arch_settings):
            out_channels = make_divisible(channels * widen_factor, 8)
            self.add_module(f'layer{i + 1}',
                            self._make_layer(out_channels, num_blocks, stride, expand_ratio))
            self.layers.append(f'layer{i + 1}')
        self.out_channel = int(1280 * widen_factor) if widen_factor > 1.0 else 1280
        self.conv2 = ConvModule(self.in_channels, self.out_channel, 1, conv_cfg=conv_cfg,
                                norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.layers.append('conv2')

    def _make_layer(self, out_channels: int, num_blocks: int, stride: int,
                    expand_ratio: int) -> nn.Sequential:
        blocks = []
        for i in range(num_blocks):
            blocks.append(InvertedResidual(
                self.in_channels, out_channels, int(round(self.in_channels * expand_ratio)),
                stride=stride if i == 0 else 1, with_expand_conv=expand_ratio != 1,
                conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg,
                with_cp=self.with_cp))
            self.in_channels = out_channels
        return nn.Sequential(*blocks)

    def init_weights(self) -> None:
        """Kaiming convs, unit BatchNorm (MMDetection's default), then the checkpoint."""
        init_convs_and_norms(self)
        load_pretrained_cfgs(self, self.init_cfg, 'MobileNetV2')
        self._is_init = True

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            freeze_modules(self.conv1)
        for i in range(1, self.frozen_stages + 1):
            freeze_modules(getattr(self, f'layer{i}'))

    def forward(self, x: Tensor) -> tuple:
        x = self.conv1(x)
        outs = []
        for i, name in enumerate(self.layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'MobileNetV2':
        """Switch mode, keeping frozen stages (and all BN with ``norm_eval``) in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            norms_to_eval(self)
        return self
