"""Feature Pyramid Network (MMDetection 3.x arguments and keys).

Input: a tuple of backbone maps ``(B, in_channels[i], H_i, W_i)``, each level
half the size of the previous. Output: a tuple of ``num_outs`` maps with
``out_channels`` channels; levels beyond the backbone's come from stride-2
max-pooling (``add_extra_convs=False``) or stride-2 3x3 convs.

Keys: ``lateral_convs.{i}.conv.*`` (1x1), ``fpn_convs.{i}.conv.*`` (3x3, extra
convs appended after the per-level ones).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from mmft.registry import MODELS
from ..layers import ConvModule

_EXTRA_SOURCES = ('on_input', 'on_lateral', 'on_output')


@MODELS.register_module()
class FPN(BaseModule):
    """Feature Pyramid Network.

    Args:
        in_channels: channels of each backbone level.
        out_channels: channels of every output level.
        num_outs: number of output levels.
        start_level, end_level: backbone levels used (``end_level=-1``: the last).
        add_extra_convs: ``False`` (max-pool), ``True`` (= ``'on_input'``),
            ``'on_input'``, ``'on_lateral'`` or ``'on_output'``: the source of
            the first extra conv.
        relu_before_extra_convs: ReLU before the second and later extra convs.
        no_norm_on_lateral: no norm in lateral convs even with ``norm_cfg``.
        upsample_cfg: kwargs of ``F.interpolate`` in the top-down path.
    """

    def __init__(self,
                 in_channels: List[int],
                 out_channels: int,
                 num_outs: int,
                 start_level: int = 0,
                 end_level: int = -1,
                 add_extra_convs: Union[bool, str] = False,
                 relu_before_extra_convs: bool = False,
                 no_norm_on_lateral: bool = False,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Optional[Dict] = None,
                 act_cfg: Optional[Dict] = None,
                 upsample_cfg: Dict = dict(mode='nearest'),
                 init_cfg: Union[Dict, List[Dict]] = dict(
                     type='Xavier', layer='Conv2d', distribution='uniform')) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(in_channels, (list, tuple)) or not in_channels:
            raise TypeError(f'FPN in_channels must be a non-empty list, got {in_channels!r}')
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_ins = len(in_channels)
        self.num_outs = num_outs
        self.relu_before_extra_convs = relu_before_extra_convs
        self.no_norm_on_lateral = no_norm_on_lateral
        self.upsample_cfg = dict(upsample_cfg)

        if end_level in (-1, self.num_ins - 1):
            self.backbone_end_level = self.num_ins
            if num_outs < self.num_ins - start_level:
                raise ValueError(f'FPN num_outs={num_outs} must be >= the number of used input '
                                 f'levels ({self.num_ins - start_level})')
        else:
            self.backbone_end_level = end_level + 1
            if not end_level < self.num_ins:
                raise ValueError(f'FPN end_level={end_level} must be < '
                                 f'len(in_channels)={self.num_ins}')
            if num_outs != end_level - start_level + 1:
                raise ValueError(f'FPN num_outs={num_outs} must equal end_level - start_level + 1 '
                                 f'= {end_level - start_level + 1} when end_level is given')
        self.start_level = start_level
        self.end_level = end_level

        if add_extra_convs is True:
            add_extra_convs = 'on_input'
        elif isinstance(add_extra_convs, str) and add_extra_convs not in _EXTRA_SOURCES:
            raise ValueError(f'FPN add_extra_convs={add_extra_convs!r} is invalid; use False, True '
                             f'or one of {_EXTRA_SOURCES}')
        self.add_extra_convs = add_extra_convs

        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for i in range(self.start_level, self.backbone_end_level):
            self.lateral_convs.append(ConvModule(
                in_channels[i], out_channels, 1, conv_cfg=conv_cfg,
                norm_cfg=norm_cfg if not no_norm_on_lateral else None,
                act_cfg=act_cfg, inplace=False))
            self.fpn_convs.append(ConvModule(
                out_channels, out_channels, 3, padding=1, conv_cfg=conv_cfg,
                norm_cfg=norm_cfg, act_cfg=act_cfg, inplace=False))

        extra_levels = num_outs - self.backbone_end_level + self.start_level
        if self.add_extra_convs and extra_levels >= 1:
            for i in range(extra_levels):
                if i == 0 and self.add_extra_convs == 'on_input':
                    extra_in = self.in_channels[self.backbone_end_level - 1]
                else:
                    extra_in = out_channels
                self.fpn_convs.append(ConvModule(
                    extra_in, out_channels, 3, stride=2, padding=1, conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg, act_cfg=act_cfg, inplace=False))

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        if len(inputs) != self.num_ins:
            raise ValueError(f'FPN got {len(inputs)} input levels but in_channels has '
                             f'{self.num_ins}; match in_channels to the backbone out_indices')
        laterals = [conv(inputs[i + self.start_level])
                    for i, conv in enumerate(self.lateral_convs)]

        used_levels = len(laterals)
        for i in range(used_levels - 1, 0, -1):
            # size= (not a fixed factor) also handles odd input sizes
            if 'scale_factor' in self.upsample_cfg:
                up = F.interpolate(laterals[i], **self.upsample_cfg)
            else:
                up = F.interpolate(laterals[i], size=laterals[i - 1].shape[2:],
                                   **self.upsample_cfg)
            laterals[i - 1] = laterals[i - 1] + up

        outs = [self.fpn_convs[i](laterals[i]) for i in range(used_levels)]
        if self.num_outs > len(outs):
            if not self.add_extra_convs:
                for _ in range(self.num_outs - used_levels):
                    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            else:
                if self.add_extra_convs == 'on_input':
                    extra_source = inputs[self.backbone_end_level - 1]
                elif self.add_extra_convs == 'on_lateral':
                    extra_source = laterals[-1]
                else:
                    extra_source = outs[-1]
                outs.append(self.fpn_convs[used_levels](extra_source))
                for i in range(used_levels + 1, self.num_outs):
                    src = F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]
                    outs.append(self.fpn_convs[i](src))
        return tuple(outs)
