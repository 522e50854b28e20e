"""Darknet-53, YOLOv3's backbone (MMDetection 3.x keys and arguments).

Keys: ``conv1`` (3x3, 32 channels), then ``conv_res_block{1..5}``, each a strided 3x3
``conv`` followed by ``res{i}`` blocks (``conv1`` 1x1 to half the channels, ``conv2``
3x3 back, plus the input); every conv is a ``ConvModule`` (conv, BN, LeakyReLU(0.1)).
``out_indices`` count ``conv1`` as 0 and the res blocks as 1..5 (strides 1, 2 .. 32);
YOLOv3 takes 3, 4, 5 (256, 512, 1024 channels at strides 8, 16, 32).
"""
from typing import Dict, List, Optional, Sequence, Union

import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmft.registry import MODELS
from ..layers import ConvModule
from .utils import freeze_modules, init_convs_and_norms, load_pretrained_cfgs, norms_to_eval


class ResBlock(BaseModule):
    """1x1 conv to half the channels, 3x3 conv back, plus the input."""

    def __init__(self, in_channels: int, conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN', requires_grad=True),
                 act_cfg: Dict = dict(type='LeakyReLU', negative_slope=0.1)) -> None:
        super().__init__()
        if in_channels % 2:
            raise ValueError(f'Darknet ResBlock needs even in_channels, got {in_channels}')
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv1 = ConvModule(in_channels, in_channels // 2, 1, **cfg)
        self.conv2 = ConvModule(in_channels // 2, in_channels, 3, padding=1, **cfg)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.conv1(x))


@MODELS.register_module()
class Darknet(BaseModule):
    """Darknet backbone (see the module docstring).

    Args:
        depth: 53.
        out_indices: outputs to return (0..5).
        frozen_stages: ``conv1`` and the first ``frozen_stages - 1`` res blocks frozen
            (as MMDetection counts them; -1: none).
        conv_cfg, norm_cfg, act_cfg: layer configs.
        norm_eval: keep BatchNorm in eval mode while training.
        pretrained: deprecated, use ``init_cfg``.
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` loads after the default init.
    """

    arch_settings = {53: ((1, 2, 8, 8, 4),
                          ((32, 64), (64, 128), (128, 256), (256, 512), (512, 1024)))}

    def __init__(self,
                 depth: int = 53,
                 out_indices: Sequence[int] = (3, 4, 5),
                 frozen_stages: int = -1,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN', requires_grad=True),
                 act_cfg: Dict = dict(type='LeakyReLU', negative_slope=0.1),
                 norm_eval: bool = True,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None) -> None:
        if depth not in self.arch_settings:
            raise KeyError(f'Darknet depth must be one of {sorted(self.arch_settings)}, '
                           f'got {depth}')
        if init_cfg and pretrained:
            raise ValueError('Darknet: give init_cfg or pretrained, not both')
        if isinstance(pretrained, str):
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)
        self.depth = depth
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.layers, self.channels = self.arch_settings[depth]
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv1 = ConvModule(3, 32, 3, padding=1, **cfg)
        self.cr_blocks = ['conv1']
        for i, num_res in enumerate(self.layers):
            in_c, out_c = self.channels[i]
            self.add_module(f'conv_res_block{i + 1}',
                            self.make_conv_res_block(in_c, out_c, num_res, **cfg))
            self.cr_blocks.append(f'conv_res_block{i + 1}')

    @staticmethod
    def make_conv_res_block(in_channels: int, out_channels: int, res_repeat: int,
                            conv_cfg: Optional[Dict] = None,
                            norm_cfg: Dict = dict(type='BN', requires_grad=True),
                            act_cfg: Dict = dict(type='LeakyReLU', negative_slope=0.1)
                            ) -> nn.Sequential:
        """A strided 3x3 conv, then ``res_repeat`` residual blocks."""
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        block = nn.Sequential()
        block.add_module('conv', ConvModule(in_channels, out_channels, 3, stride=2, padding=1,
                                            **cfg))
        for idx in range(res_repeat):
            block.add_module(f'res{idx}', ResBlock(out_channels, **cfg))
        return block

    def init_weights(self) -> None:
        """Kaiming convs, unit norms (MMDetection's default), then the checkpoint."""
        init_convs_and_norms(self)
        load_pretrained_cfgs(self, self.init_cfg, f'Darknet-{self.depth}')
        self._is_init = True

    def forward(self, x: Tensor) -> tuple:
        outs = []
        for i, name in enumerate(self.cr_blocks):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        for i in range(max(self.frozen_stages, 0)):
            freeze_modules(getattr(self, self.cr_blocks[i]))

    def train(self, mode: bool = True) -> 'Darknet':
        """Switch mode, keeping frozen stages (and all BN with ``norm_eval``) in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            norms_to_eval(self)
        return self
