"""SSD's VGG backbone (MMDetection 3.x ``SSDVGG``: mmcv's VGG plus SSD's fc6/fc7 convs).

Keys: ``features.{i}.{weight,bias}``, one ``nn.Sequential`` in torchvision's VGG order
(conv, ReLU per conv, a 2x2 max-pool per stage; no BatchNorm), the last stage's pool
dropped unless ``with_last_pool``; SSD then appends a 3x3 stride-1 max-pool, ``fc6`` as a
3x3 conv of dilation 6 (512 -> 1024) and ``fc7`` as a 1x1 conv (1024 -> 1024), each
followed by a ReLU. For VGG-16: convs at ``0 2 5 7 10 12 14 17 19 21 24 26 28``, fc6 at
``31``, fc7 at ``33``; ``out_feature_indices=(22, 34)`` are conv4_3's and fc7's ReLUs
(stride 8 and 16 of a 300 px input: 38x38 and 19x19).

The first 13 convs have torchvision's ``vgg16`` names and shapes; fc6/fc7 come from the
classifier's fc layers by SSD's decimation (``mmft.checkpoint.converters.vgg``).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmft.checkpoint.converters.vgg import add_ssd_fc_convs
from mmft.checkpoint.pretrained import load_pretrained_init, pretrained_cfgs
from mmft.registry import MODELS

# convs per stage of mmcv's VGG
VGG_ARCH = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}


def make_vgg_features(depth: int, with_last_pool: bool, ceil_mode: bool) -> List[nn.Module]:
    """mmcv VGG's ``features`` layers (no BatchNorm)."""
    layers: List[nn.Module] = []
    in_channels = 3
    for stage, num_convs in enumerate(VGG_ARCH[depth]):
        planes = 64 * 2**stage if stage < 4 else 512
        for _ in range(num_convs):
            layers += [nn.Conv2d(in_channels, planes, 3, padding=1), nn.ReLU(inplace=True)]
            in_channels = planes
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=ceil_mode))
    if not with_last_pool:
        layers.pop(-1)
    return layers


@MODELS.register_module()
class SSDVGG(BaseModule):
    """VGG for SSD (see the module docstring).

    Args:
        depth: 11, 13, 16 or 19.
        with_last_pool: keep the last stage's 2x2 pool (SSD: False).
        ceil_mode: ceil in every 2x2 pool (38x38 conv4_3 maps at 300 px).
        out_indices: kept for MMDetection configs; the outputs are chosen by
            ``out_feature_indices``.
        out_feature_indices: indices in ``features`` whose outputs are returned.
        pretrained: deprecated, use ``init_cfg``.
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` loads a checkpoint after the
            default init (Kaiming convs); a torchvision ``vgg16`` or a Caffe VGG-16 file
            works (fc6/fc7 decimated from the fc layers).
        input_size, l2_norm_scale: deprecated in MMDetection, accepted and unused
            (the L2 norm lives in ``SSDNeck``).
    """

    def __init__(self,
                 depth: int,
                 with_last_pool: bool = False,
                 ceil_mode: bool = True,
                 out_indices: Sequence[int] = (3, 4),
                 out_feature_indices: Sequence[int] = (22, 34),
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None,
                 input_size: Optional[int] = None,
                 l2_norm_scale: Optional[float] = None) -> None:
        if depth not in VGG_ARCH:
            raise KeyError(f'SSDVGG depth must be one of {sorted(VGG_ARCH)}, got {depth}')
        if init_cfg and pretrained:
            raise ValueError('SSDVGG: give init_cfg or pretrained, not both')
        if isinstance(pretrained, str):
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)
        self.depth = depth
        self.out_indices = out_indices
        layers = make_vgg_features(depth, with_last_pool, ceil_mode)
        layers += [nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
                   nn.Conv2d(512, 1024, kernel_size=3, padding=6, dilation=6),
                   nn.ReLU(inplace=True),
                   nn.Conv2d(1024, 1024, kernel_size=1),
                   nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        bad = [i for i in out_feature_indices if not 0 <= i < len(self.features)]
        if bad:
            raise ValueError(f'SSDVGG out_feature_indices {bad} are outside features '
                             f'(0..{len(self.features) - 1})')
        self.out_feature_indices = tuple(out_feature_indices)

    def init_weights(self) -> None:
        """Kaiming convs (MMDetection's default), then the ``Pretrained`` checkpoint if any."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                nn.init.zeros_(m.bias)
        for cfg in pretrained_cfgs(self.init_cfg):
            load_pretrained_init(self, cfg['checkpoint'], prefix=cfg.get('prefix'),
                                 name=f'SSDVGG-{self.depth}', adapt=add_ssd_fc_convs)
        self._is_init = True

    def forward(self, x: Tensor) -> Union[Tensor, Tuple[Tensor, ...]]:
        outs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.out_feature_indices:
                outs.append(x)
        return outs[0] if len(outs) == 1 else tuple(outs)
