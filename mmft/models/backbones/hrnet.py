"""HRNet backbone with MMDetection 3.x's ``HRNet`` arguments and keys.

Layout: a stem of two 3x3 stride-2 convs (``conv1, bn1, conv2, bn2``: 64 channels,
stride 4), ``layer1`` (stage 1: one branch of ResNet blocks), then for stages 2-4 a
``transition{k}`` (new lower-resolution branches from the last one, or channel
adapters) and ``stage{k+1}``: ``num_modules`` HRModules, each running its branches
(``branches.{b}.{i}``: ResNet blocks) then exchanging them through ``fuse_layers.{i}.{j}``
(``j > i``: 1x1 conv + BN, nearest upsampling by ``2**(j-i)``; ``j < i``: ``i-j`` strided
3x3 convs). Outputs: one map per stage-4 branch, channels ``num_channels`` (x expansion),
strides 4, 8, 16, 32. Inputs should be multiples of 32 (the detector pads them), as
the fusion upsamples by exact powers of two.
"""
from typing import Dict, List, Optional, Sequence, Union

import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmft.checkpoint.pretrained import load_pretrained_init, pretrained_cfgs
from mmft.registry import MODELS
from ..layers import build_conv_layer, build_norm_layer
from .resnet import BasicBlock, Bottleneck
from .utils import init_convs_and_norms, norms_to_eval

BLOCKS = {'BASIC': BasicBlock, 'BOTTLENECK': Bottleneck}


def _conv_bn(conv_cfg, norm_cfg, cin: int, cout: int, kernel: int, stride: int = 1,
             relu: bool = False, upsample: int = 1) -> nn.Sequential:
    layers = [build_conv_layer(conv_cfg, cin, cout, kernel, stride=stride,
                               padding=kernel // 2, bias=False),
              build_norm_layer(norm_cfg, cout)[1]]
    if relu:
        layers.append(nn.ReLU(inplace=False))
    if upsample > 1:
        layers.append(nn.Upsample(scale_factor=upsample, mode='nearest'))
    return nn.Sequential(*layers)


def _res_layer(block: type, inplanes: int, planes: int, num_blocks: int, conv_cfg, norm_cfg,
               with_cp: bool) -> nn.Sequential:
    downsample = None
    if inplanes != planes * block.expansion:
        downsample = _conv_bn(conv_cfg, norm_cfg, inplanes, planes * block.expansion, 1)
    common = dict(with_cp=with_cp, conv_cfg=conv_cfg, norm_cfg=norm_cfg)
    layers = [block(inplanes, planes, downsample=downsample, **common)]
    layers += [block(planes * block.expansion, planes, **common) for _ in range(1, num_blocks)]
    return nn.Sequential(*layers)


class HRModule(nn.Module):
    """Parallel branches of blocks, then every output branch sums all inputs (resized)."""

    def __init__(self, num_branches: int, block: type, num_blocks: Sequence[int],
                 in_channels: List[int], num_channels: Sequence[int],
                 multiscale_output: bool = True, with_cp: bool = False,
                 conv_cfg: Optional[Dict] = None, norm_cfg: Dict = dict(type='BN')) -> None:
        super().__init__()
        for name, value in (('num_blocks', num_blocks), ('num_channels', num_channels),
                            ('in_channels', in_channels)):
            if len(value) != num_branches:
                raise ValueError(f'HRModule: num_branches={num_branches} but {name} has '
                                 f'{len(value)} entries ({tuple(value)})')
        self.num_branches = num_branches
        self.branches = nn.ModuleList([
            _res_layer(block, in_channels[b], num_channels[b], num_blocks[b], conv_cfg,
                       norm_cfg, with_cp) for b in range(num_branches)])
        channels = [c * block.expansion for c in num_channels]
        self.out_channels = channels
        self.fuse_layers = None
        if num_branches > 1:
            self.fuse_layers = nn.ModuleList()
            for i in range(num_branches if multiscale_output else 1):
                row = nn.ModuleList()
                for j in range(num_branches):
                    if j > i:
                        row.append(_conv_bn(conv_cfg, norm_cfg, channels[j], channels[i], 1,
                                            upsample=2**(j - i)))
                    elif j == i:
                        row.append(None)
                    else:  # i - j stride-2 convs; only the last changes the channels
                        steps = [_conv_bn(conv_cfg, norm_cfg, channels[j], channels[j], 3, 2,
                                          relu=True) for _ in range(i - j - 1)]
                        steps.append(_conv_bn(conv_cfg, norm_cfg, channels[j], channels[i], 3,
                                              2))
                        row.append(nn.Sequential(*steps))
                self.fuse_layers.append(row)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: List[Tensor]) -> List[Tensor]:
        x = [branch(t) for branch, t in zip(self.branches, x)]
        if self.fuse_layers is None:
            return x
        outs = []
        for i, row in enumerate(self.fuse_layers):
            y = x[i]
            for j, layer in enumerate(row):
                if j != i:
                    y = y + layer(x[j])
            outs.append(self.relu(y))
        return outs


@MODELS.register_module()
class HRNet(BaseModule):
    """HRNet (Wang et al. 2019) as in MMDetection; ``extra`` holds ``stage1..stage4``, each
    ``dict(num_modules, num_branches, block='BASIC'|'BOTTLENECK', num_blocks, num_channels)``.

    Args:
        extra: the four stage configs (HRNetV2p-W18: stage1 1 module, 1 branch of 4
            BOTTLENECK blocks of 64; stages 2-4 BASIC with channels (18, 36[, 72[, 144]])).
        norm_eval: keep every BN in eval mode during training.
        frozen_stages: mmft addition (MMDetection's HRNet has none): -1 trains all;
            ``k >= 0`` freezes the stem and stages 1..k (with the transitions into them).
        zero_init_residual: start each block's last norm at zero (default off, as MMDetection).
        multiscale_output: False returns only the highest-resolution map.
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` loads exactly.
    """

    def __init__(self,
                 extra: Dict,
                 in_channels: int = 3,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN'),
                 norm_eval: bool = True,
                 with_cp: bool = False,
                 zero_init_residual: bool = False,
                 multiscale_output: bool = True,
                 frozen_stages: int = -1,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None) -> None:
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError('HRNet: set either init_cfg or the deprecated pretrained')
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg)
        for k in range(1, 5):
            cfg = extra.get(f'stage{k}')
            if cfg is None:
                raise KeyError(f'HRNet extra needs stage1..stage4; stage{k} is missing')
            if cfg['block'] not in BLOCKS:
                raise KeyError(f"HRNet extra.stage{k}.block {cfg['block']!r}: use 'BASIC' or "
                               "'BOTTLENECK'")
            if len(cfg['num_blocks']) != cfg['num_branches'] or \
                    len(cfg['num_channels']) != cfg['num_branches']:
                raise ValueError(f'HRNet extra.stage{k}: num_blocks and num_channels need '
                                 f"num_branches={cfg['num_branches']} entries")
        self.extra = extra
        self.norm_eval = norm_eval
        self.zero_init_residual = zero_init_residual
        self.frozen_stages = frozen_stages
        self.conv1 = build_conv_layer(conv_cfg, in_channels, 64, 3, stride=2, padding=1,
                                      bias=False)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, 64, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.conv2 = build_conv_layer(conv_cfg, 64, 64, 3, stride=2, padding=1, bias=False)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, 64, postfix=2)
        self.add_module(self.norm2_name, norm2)
        self.relu = nn.ReLU(inplace=True)

        s1 = extra['stage1']
        block = BLOCKS[s1['block']]
        self.layer1 = _res_layer(block, 64, s1['num_channels'][0], s1['num_blocks'][0],
                                 conv_cfg, norm_cfg, with_cp)
        channels = [s1['num_channels'][0] * block.expansion]
        for k in (2, 3, 4):
            cfg = extra[f'stage{k}']
            block = BLOCKS[cfg['block']]
            wanted = [c * block.expansion for c in cfg['num_channels']]
            self.add_module(f'transition{k - 1}',
                            self._transition(channels, wanted, conv_cfg, norm_cfg))
            modules = []
            for m in range(cfg['num_modules']):
                module = HRModule(cfg['num_branches'], block, cfg['num_blocks'], list(wanted),
                                  cfg['num_channels'],
                                  multiscale_output or k < 4 or m < cfg['num_modules'] - 1,
                                  with_cp, conv_cfg, norm_cfg)
                modules.append(module)
                wanted = module.out_channels
            self.add_module(f'stage{k}', nn.Sequential(*modules))
            channels = wanted
        self.out_channels = channels
        self._freeze_stages()

    @staticmethod
    def _transition(pre: List[int], cur: List[int], conv_cfg, norm_cfg) -> nn.ModuleList:
        layers = nn.ModuleList()
        for i, c in enumerate(cur):
            if i < len(pre):
                layers.append(None if c == pre[i] else nn.Sequential(
                    *_conv_bn(conv_cfg, norm_cfg, pre[i], c, 3), nn.ReLU(inplace=True)))
            else:  # a new branch: stride-2 convs from the lowest-resolution one
                steps = []
                for j in range(i + 1 - len(pre)):
                    out = c if j == i - len(pre) else pre[-1]
                    steps.append(nn.Sequential(*_conv_bn(conv_cfg, norm_cfg, pre[-1], out, 3, 2),
                                               nn.ReLU(inplace=True)))
                layers.append(nn.Sequential(*steps))
        return layers

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def norm2(self) -> nn.Module:
        return getattr(self, self.norm2_name)

    def _freeze_stages(self) -> None:
        frozen: List[nn.Module] = []
        if self.frozen_stages >= 0:
            frozen += [self.conv1, self.norm1, self.conv2, self.norm2]
        if self.frozen_stages >= 1:
            frozen.append(self.layer1)
        for k in range(2, min(self.frozen_stages, 4) + 1):
            frozen += [getattr(self, f'transition{k - 1}'), getattr(self, f'stage{k}')]
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def init_weights(self) -> None:
        """Kaiming convs and unit norms (MMDetection's init), then the pretrained file."""
        init_convs_and_norms(self)
        if self.zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.norm3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.norm2.weight)
        for cfg in pretrained_cfgs(self.init_cfg):
            load_pretrained_init(self, cfg['checkpoint'], prefix=cfg.get('prefix'),
                                 name='HRNet')
        self._is_init = True

    def forward(self, x: Tensor) -> List[Tensor]:
        x = self.relu(self.norm1(self.conv1(x)))
        x = self.layer1(self.relu(self.norm2(self.conv2(x))))
        feats = [x]
        for k in (2, 3, 4):
            transition = getattr(self, f'transition{k - 1}')
            inputs = []
            for i, layer in enumerate(transition):
                # new branches grow from the lowest-resolution map
                source = feats[i] if i < len(feats) else feats[-1]
                inputs.append(source if layer is None else layer(source))
            feats = getattr(self, f'stage{k}')(inputs)
        return feats

    def train(self, mode: bool = True) -> 'HRNet':
        """Switch mode, keeping frozen stages (and all BN with ``norm_eval``) in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            norms_to_eval(self)
        return self
