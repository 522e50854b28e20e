"""CSPNeXt, RTMDet's backbone (MMDetection 3.x keys and arguments).

Keys: ``stem.{0,1,2}`` (3x3 ConvModules: stride 2 to half the first stage's width,
then two stride-1 convs), then ``stage{1..4}`` (``stage{1..5}`` for P6), each an
``nn.Sequential`` of a stride-2 3x3 ConvModule (``.0``), for the last stage an
``SPPBottleneck`` (``.1``), and a ``CSPLayer`` of ``CSPNeXtBlock``s with channel
attention. Widths are ``int(c * widen_factor)``, block counts
``max(round(n * deepen_factor), 1)``. ``out_indices`` count the stem as 0; the
default ``(2, 3, 4)`` gives strides 8, 16, 32.
"""
import math
from typing import Dict, List, Optional, Sequence, Union

import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmft.checkpoint.pretrained import load_pretrained_init, pretrained_cfgs
from mmft.registry import MODELS
from ..layers import ConvModule
from ..layers.csp_layer import CSPLayer, DepthwiseSeparableConvModule, SPPBottleneck


@MODELS.register_module()
class CSPNeXt(BaseModule):
    """CSPNeXt backbone (Lyu et al., 2022).

    Args:
        arch: ``'P5'`` (3 outputs, stride 32 last) or ``'P6'``.
        deepen_factor, widen_factor: depth / width multipliers (tiny: 0.167 / 0.375).
        out_indices: which of stem (0) and stages (1..) to return.
        frozen_stages: freeze the stem and stages up to this index (-1: none).
        use_depthwise: depthwise-separable downsampling convs and blocks.
        expand_ratio: hidden width of the CSP layers.
        arch_ovewrite: replaces the arch table (MMDetection's spelling).
        spp_kernel_sizes: pools of the last stage's SPP.
        channel_attention: channel attention in every CSP layer.
        conv_cfg, norm_cfg, act_cfg: layer configs.
        norm_eval: keep BatchNorm in eval mode while training.
        init_cfg: MMDetection's default Kaiming-uniform (torch's own conv init), or
            ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
    """

    # in, out, blocks, add_identity, use_spp
    arch_settings = {
        'P5': [[64, 128, 3, True, False], [128, 256, 6, True, False],
               [256, 512, 6, True, False], [512, 1024, 3, False, True]],
        'P6': [[64, 128, 3, True, False], [128, 256, 6, True, False],
               [256, 512, 6, True, False], [512, 768, 3, True, False],
               [768, 1024, 3, False, True]],
    }

    # CSPLayers of CSPNeXtBlocks (CSPDarknet: DarknetBottlenecks)
    cspnext_blocks: bool = True

    def __init__(self,
                 arch: str = 'P5',
                 deepen_factor: float = 1.0,
                 widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (2, 3, 4),
                 frozen_stages: int = -1,
                 use_depthwise: bool = False,
                 expand_ratio: float = 0.5,
                 arch_ovewrite: Optional[List] = None,
                 spp_kernel_sizes: Sequence[int] = (5, 9, 13),
                 channel_attention: bool = True,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN', momentum=0.03, eps=0.001),
                 act_cfg: Dict = dict(type='SiLU'),
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = dict(
                     type='Kaiming', layer='Conv2d', a=math.sqrt(5), distribution='uniform',
                     mode='fan_in', nonlinearity='leaky_relu')) -> None:
        super().__init__(init_cfg=init_cfg)
        if arch not in self.arch_settings:
            raise ValueError(f"{type(self).__name__} arch must be one of "
                             f"{sorted(self.arch_settings)}, got {arch!r}")
        setting = arch_ovewrite or self.arch_settings[arch]
        if not set(out_indices) <= set(range(len(setting) + 1)):
            raise ValueError(f'{type(self).__name__} out_indices {tuple(out_indices)} must lie in '
                             f'0..{len(setting)} (0 is the stem)')
        if frozen_stages not in range(-1, len(setting) + 1):
            raise ValueError(f'{type(self).__name__} frozen_stages must be in -1..{len(setting)}, '
                             f'got {frozen_stages}')
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        cfg = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.stem = self._make_stem(setting[0][0] * widen_factor, conv_cfg, cfg)
        self.layers = ['stem']
        conv = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        for i, (in_ch, out_ch, num_blocks, add_identity, use_spp) in enumerate(setting):
            in_ch, out_ch = int(in_ch * widen_factor), int(out_ch * widen_factor)
            num_blocks = max(round(num_blocks * deepen_factor), 1)
            stage = [conv(in_ch, out_ch, 3, stride=2, padding=1, conv_cfg=conv_cfg, **cfg)]
            if use_spp:
                stage.append(SPPBottleneck(out_ch, out_ch, kernel_sizes=spp_kernel_sizes,
                                           conv_cfg=conv_cfg, **cfg))
            stage.append(CSPLayer(out_ch, out_ch, num_blocks=num_blocks,
                                  add_identity=add_identity, use_depthwise=use_depthwise,
                                  use_cspnext_block=self.cspnext_blocks,
                                  expand_ratio=expand_ratio,
                                  channel_attention=channel_attention, conv_cfg=conv_cfg,
                                  **cfg))
            self.add_module(f'stage{i + 1}', nn.Sequential(*stage))
            self.layers.append(f'stage{i + 1}')

    def _make_stem(self, width: float, conv_cfg: Optional[Dict], cfg: Dict) -> nn.Module:
        """Three 3x3 convs (stride 2, 1, 1) to ``int(width)`` channels; MMDetection passes
        no ``conv_cfg`` to them."""
        half = int(width // 2)
        return nn.Sequential(ConvModule(3, half, 3, padding=1, stride=2, **cfg),
                             ConvModule(half, half, 3, padding=1, stride=1, **cfg),
                             ConvModule(half, int(width), 3, padding=1, stride=1, **cfg))

    def init_weights(self) -> None:
        """Torch-default (Kaiming-uniform, a=sqrt(5)) convs with zero bias, unit norms,
        then the ``Pretrained`` checkpoint if any."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), mode='fan_in',
                                         nonlinearity='leaky_relu')
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, _BatchNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for cfg in pretrained_cfgs(self.init_cfg):
            load_pretrained_init(self, cfg['checkpoint'], prefix=cfg.get('prefix'),
                                 name=type(self).__name__)
        self._is_init = True

    def _freeze_stages(self) -> None:
        for i in range(self.frozen_stages + 1):
            layer = getattr(self, self.layers[i])
            layer.eval()
            for param in layer.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'CSPNeXt':
        """Switch mode, keeping frozen stages (and all BN with ``norm_eval``) in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def forward(self, x: Tensor) -> tuple:
        """Feature maps of ``out_indices``."""
        outs = []
        for i, name in enumerate(self.layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
