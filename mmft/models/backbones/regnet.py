"""RegNetX backbone with MMDetection 3.x's ``RegNet`` arguments and keys.

Keys are ResNet's (``conv1, bn1, layer{i}.{j}.conv{1,2,3}, .bn{1,2,3}, .downsample.{0,1}``)
with a 3x3 stride-2 stem of ``stem_channels`` and no max-pool, and bottlenecks of
expansion 1 whose 3x3 conv has ``stage_width // group_w`` groups. Stage widths come
from the arch's linear rule, quantised (Radosavovic et al. 2020): block ``j`` gets
``w0 * wm ** round(log((w0 + wa * j) / w0) / log(wm))`` rounded to a multiple of 8;
consecutive blocks of equal width form a stage; widths are then made divisible by the
group width. torchvision's ``regnet_x_*`` use the same rule, so their ImageNet weights
convert (``stem`` -> ``conv1/bn1``, ``trunk_output.block{i}.block{i}-{j}.f.{a,b,c}`` ->
``conv{1,2,3}``, ``proj`` -> ``downsample``).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch.nn as nn
from mmengine.model import BaseModule

from mmft.registry import MODELS
from ..layers import build_conv_layer, build_norm_layer
from .resnet import Bottleneck, ResNet


class RegNetBottleneck(Bottleneck):
    """ResNeXt bottleneck with expansion 1 (RegNetX's X block)."""

    expansion = 1


def regnet_stages(w0: int, wa: float, wm: float, depth: int, group_w: int,
                  bot_mul: float = 1.0, divisor: int = 8
                  ) -> Tuple[List[int], List[int], List[int]]:
    """``(stage widths, blocks per stage, group width per stage)`` of a RegNet arch."""
    if wa < 0 or w0 <= 0 or wm <= 1 or w0 % divisor:
        raise ValueError(f'RegNet arch w0={w0}, wa={wa}, wm={wm}: need wa >= 0, wm > 1 and '
                         f'w0 > 0 a multiple of {divisor}')
    cont = np.arange(depth) * wa + w0
    exps = np.round(np.log(cont / w0) / np.log(wm))
    widths = (np.round(w0 * np.power(wm, exps) / divisor) * divisor).astype(int).tolist()
    stage_widths, stage_blocks = [], []
    for w in widths:
        if stage_widths and stage_widths[-1] == w:
            stage_blocks[-1] += 1
        else:
            stage_widths.append(w)
            stage_blocks.append(1)
    # make the bottleneck width a multiple of the (possibly reduced) group width
    bottleneck = [int(w * bot_mul) for w in stage_widths]
    groups = [min(group_w, b) for b in bottleneck]
    bottleneck = [int(round(b / g) * g) for b, g in zip(bottleneck, groups)]
    stage_widths = [int(b / bot_mul) for b in bottleneck]
    return stage_widths, stage_blocks, groups


@MODELS.register_module()
class RegNet(ResNet):
    """RegNetX (``arch='regnetx_3.2gf'`` or an explicit ``dict(w0, wa, wm, group_w, depth,
    bot_mul)``). Other arguments as :class:`ResNet`; ``deep_stem`` / ``avg_down`` raise.

    Output channels of ``regnetx_3.2gf``: 96, 192, 432, 1008 (strides 4, 8, 16, 32).
    """

    arch_settings = {
        'regnetx_400mf': dict(w0=24, wa=24.48, wm=2.54, group_w=16, depth=22, bot_mul=1.0),
        'regnetx_800mf': dict(w0=56, wa=35.73, wm=2.28, group_w=16, depth=16, bot_mul=1.0),
        'regnetx_1.6gf': dict(w0=80, wa=34.01, wm=2.25, group_w=24, depth=18, bot_mul=1.0),
        'regnetx_3.2gf': dict(w0=88, wa=26.31, wm=2.25, group_w=48, depth=25, bot_mul=1.0),
        'regnetx_4.0gf': dict(w0=96, wa=38.65, wm=2.43, group_w=40, depth=23, bot_mul=1.0),
        'regnetx_6.4gf': dict(w0=184, wa=60.83, wm=2.07, group_w=56, depth=17, bot_mul=1.0),
        'regnetx_8.0gf': dict(w0=80, wa=49.56, wm=2.88, group_w=120, depth=23, bot_mul=1.0),
        'regnetx_12gf': dict(w0=168, wa=73.36, wm=2.37, group_w=112, depth=19, bot_mul=1.0),
    }

    def __init__(self,
                 arch: Union[str, Dict],
                 in_channels: int = 3,
                 stem_channels: int = 32,
                 base_channels: int = 32,
                 strides: Sequence[int] = (2, 2, 2, 2),
                 dilations: Sequence[int] = (1, 1, 1, 1),
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 style: str = 'pytorch',
                 deep_stem: bool = False,
                 avg_down: bool = False,
                 frozen_stages: int = -1,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = True,
                 dcn: Optional[Dict] = None,
                 stage_with_dcn: Sequence[bool] = (False, False, False, False),
                 plugins: Optional[List[Dict]] = None,
                 with_cp: bool = False,
                 zero_init_residual: bool = True,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None) -> None:
        if isinstance(arch, str):
            if arch not in self.arch_settings:
                raise KeyError(f'RegNet arch {arch!r} is unknown; use one of '
                               f'{sorted(self.arch_settings)} or a dict(w0, wa, wm, group_w, '
                               'depth, bot_mul)')
            arch_name, arch = arch, self.arch_settings[arch]
        elif isinstance(arch, dict):
            missing = {'w0', 'wa', 'wm', 'group_w', 'depth'} - set(arch)
            if missing:
                raise KeyError(f'RegNet arch dict {arch} lacks {sorted(missing)}')
            arch_name = 'custom'
        else:
            raise TypeError(f'RegNet arch must be a name or a dict, got {type(arch).__name__}')
        widths, blocks, group_ws = regnet_stages(arch['w0'], arch['wa'], arch['wm'],
                                                 arch['depth'], arch['group_w'],
                                                 arch.get('bot_mul', 1.0))
        num_stages = len(widths)
        if not 1 <= num_stages <= 4:
            raise ValueError(f'RegNet arch {arch} gives {num_stages} stages; 1..4 supported')
        if len(strides) != num_stages or len(dilations) != num_stages:
            raise ValueError(f'RegNet strides {tuple(strides)} / dilations {tuple(dilations)} '
                             f'need one entry per stage ({num_stages})')
        if not out_indices or max(out_indices) >= num_stages:
            raise ValueError(f'RegNet out_indices {tuple(out_indices)} must be < {num_stages}')
        if deep_stem or avg_down:
            raise NotImplementedError('RegNet deep_stem / avg_down are not supported')
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError('RegNet: set either init_cfg or the deprecated pretrained')
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        BaseModule.__init__(self, init_cfg)
        self.arch_name = arch_name
        self.arch = dict(arch)
        self.stage_widths = widths
        self.group_widths = group_ws
        self.depth = sum(blocks)
        self.zero_init_residual = zero_init_residual
        self.stem_channels = stem_channels
        self.base_channels = base_channels
        self.num_stages = num_stages
        self.strides = tuple(strides)
        self.dilations = tuple(dilations)
        self.out_indices = tuple(out_indices)
        self.style = style
        self.frozen_stages = frozen_stages
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.dcn = dcn
        self.stage_with_dcn = tuple(stage_with_dcn)
        if dcn is not None and len(self.stage_with_dcn) != num_stages:
            raise ValueError(f'RegNet stage_with_dcn needs {num_stages} entries')
        self.plugins = plugins
        self.block = RegNetBottleneck
        self.stage_blocks = blocks

        self.conv1 = build_conv_layer(conv_cfg, in_channels, stem_channels, 3, stride=2,
                                      padding=1, bias=False)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()  # RegNet's stem has no pooling
        self.inplanes = stem_channels
        self.res_layers = []
        for i, num_blocks in enumerate(blocks):
            width = int(round(widths[i] * arch.get('bot_mul', 1.0)))
            self._stage = dict(groups=width // group_ws[i], base_width=group_ws[i],
                               base_channels=widths[i])
            layer = self._make_res_layer(widths[i], num_blocks, self.strides[i],
                                         self.dilations[i], **self._stage_extras(i))
            self.inplanes = widths[i]
            self.add_module(f'layer{i + 1}', layer)
            self.res_layers.append(f'layer{i + 1}')
        del self._stage
        self.feat_dim = widths[-1]
        self._freeze_stages()

    def _stage_extras(self, stage: int) -> Dict:
        extras = super()._stage_extras(stage)
        extras.update(self._stage)
        return extras

    @property
    def model_name(self) -> str:
        return f'RegNet({self.arch_name})'
