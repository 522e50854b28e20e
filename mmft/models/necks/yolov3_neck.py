"""YOLOv3's neck (MMDetection 3.x ``YOLOV3Neck``): top-down fusion of three levels.

Inputs come low level first (stride 8, 16, 32); outputs come high level first (32, 16, 8),
the order ``YOLOV3Head`` reads. ``detect1`` (five convs alternating 1x1 and 3x3) runs on the
deepest input; for ``i >= 1``, ``conv{i}`` (1x1) reduces the previous output, which is
upsampled x2 (nearest), concatenated with the next shallower input, and run through
``detect{i+1}``.

Keys: ``detect{k}.conv{1..5}.{conv,bn}.*``, ``conv{i}.{conv,bn}.*``.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from mmft.registry import MODELS
from ..layers import ConvModule

_DEFAULT_ACT = dict(type='LeakyReLU', negative_slope=0.1)


class DetectionBlock(BaseModule):
    """conv1 1x1 (C) -> conv2 3x3 (2C) -> conv3 1x1 (C) -> conv4 3x3 (2C) -> conv5 1x1 (C)."""

    def __init__(self, in_channels: int, out_channels: int, conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN', requires_grad=True),
                 act_cfg: Dict = _DEFAULT_ACT) -> None:
        super().__init__()
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        double = out_channels * 2
        self.conv1 = ConvModule(in_channels, out_channels, 1, **cfg)
        self.conv2 = ConvModule(out_channels, double, 3, padding=1, **cfg)
        self.conv3 = ConvModule(double, out_channels, 1, **cfg)
        self.conv4 = ConvModule(out_channels, double, 3, padding=1, **cfg)
        self.conv5 = ConvModule(double, out_channels, 1, **cfg)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))


@MODELS.register_module()
class YOLOV3Neck(BaseModule):
    """YOLOv3 neck (see the module docstring).

    Args:
        num_scales: levels (3).
        in_channels: channels of the inputs, deepest first (e.g. ``[1024, 512, 256]``).
        out_channels: channels of the outputs, deepest first (e.g. ``[512, 256, 128]``).
        conv_cfg, norm_cfg, act_cfg: layer configs.
    """

    def __init__(self, num_scales: int, in_channels: Sequence[int],
                 out_channels: Sequence[int], conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN', requires_grad=True),
                 act_cfg: Dict = _DEFAULT_ACT,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not num_scales == len(in_channels) == len(out_channels):
            raise ValueError(f'YOLOV3Neck num_scales={num_scales} needs as many in_channels '
                             f'({list(in_channels)}) and out_channels ({list(out_channels)})')
        self.num_scales = num_scales
        self.in_channels = list(in_channels)
        self.out_channels = list(out_channels)
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.detect1 = DetectionBlock(in_channels[0], out_channels[0], **cfg)
        for i in range(1, num_scales):
            in_c, out_c = in_channels[i], out_channels[i]
            self.add_module(f'conv{i}', ConvModule(out_channels[i - 1], out_c, 1, **cfg))
            self.add_module(f'detect{i + 1}', DetectionBlock(in_c + out_c, out_c, **cfg))

    def forward(self, feats: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        if len(feats) != self.num_scales:
            raise ValueError(f'YOLOV3Neck has {self.num_scales} scales but got {len(feats)} '
                             'inputs; set backbone out_indices to give as many')
        out = self.detect1(feats[-1])
        outs = [out]
        for i, x in enumerate(reversed(feats[:-1])):
            tmp = F.interpolate(getattr(self, f'conv{i + 1}')(out), scale_factor=2)
            out = getattr(self, f'detect{i + 2}')(torch.cat((tmp, x), 1))
            outs.append(out)
        return tuple(outs)
