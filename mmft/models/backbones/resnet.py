"""ResNet backbone with MMDetection 3.x's arguments and torchvision's parameter names.

State-dict keys (BN): ``conv1, bn1, layer{1..4}.{j}.conv{1,2[,3]}, .bn{1,2[,3]},
.downsample.{0,1}`` (no ``fc``): the same as MMDetection's ResNet and
torchvision's, so an ImageNet checkpoint of either loads key for key. With GN
the norms are named ``gn1``, ... as in MMDetection.

Output: a tuple of feature maps, one per ``out_indices`` entry, stage ``i``
having ``64 * 2**i * expansion`` channels and stride ``4 * 2**i`` (default
strides/dilations).

``dcn`` adds ``conv2.conv_offset.{weight,bias}`` to the chosen bottlenecks and
``plugins`` a ``context_block.*`` (or other plugin) module per bottleneck, as MMDetection;
an ImageNet file without them leaves them at their identity-like init.

``style='pytorch'`` puts the stride of a bottleneck on its 3x3 conv,
``'caffe'`` on its first 1x1 conv (MSRA/Detectron weights).
"""
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmft.checkpoint.pretrained import load_pretrained_init, pretrained_cfgs
from mmft.registry import MODELS
from ..layers import build_conv_layer, build_norm_layer, build_plugin_layer
from .utils import norms_to_eval


class BasicBlock(nn.Module):
    """Two 3x3 convs with identity shortcut (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: Optional[nn.Module] = None, style: str = 'pytorch',
                 with_cp: bool = False, conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN')) -> None:
        super().__init__()
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, planes, postfix=1)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, planes, postfix=2)
        self.conv1 = build_conv_layer(conv_cfg, inplanes, planes, 3, stride=stride,
                                      padding=dilation, dilation=dilation, bias=False)
        self.add_module(self.norm1_name, norm1)
        self.conv2 = build_conv_layer(conv_cfg, planes, planes, 3, padding=1, bias=False)
        self.add_module(self.norm2_name, norm2)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride
        self.dilation = dilation
        self.with_cp = with_cp

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def norm2(self) -> nn.Module:
        return getattr(self, self.norm2_name)

    def _inner_forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return out + identity

    def forward(self, x: Tensor) -> Tensor:
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(self._inner_forward, x, use_reentrant=False)
        else:
            out = self._inner_forward(x)
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 bottleneck (ResNet-50/101/152; ResNeXt with ``groups > 1``).

    ``groups``/``base_width``/``base_channels`` give the 3x3 conv's width as
    MMDetection's ResNeXt does (``floor(planes * base_width / base_channels) * groups``);
    ``dcn`` (e.g. ``dict(type='DCNv2', deform_groups=1, fallback_on_stride=False)``)
    makes the 3x3 conv deformable; ``plugins`` is a list of
    ``dict(cfg=dict(type='ContextBlock', ...), position='after_conv1'|'after_conv2'|'after_conv3')``.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: Optional[nn.Module] = None, style: str = 'pytorch',
                 with_cp: bool = False, conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN'), groups: int = 1, base_width: int = 4,
                 base_channels: int = 64, dcn: Optional[Dict] = None,
                 plugins: Optional[List[Dict]] = None) -> None:
        super().__init__()
        if style not in ('pytorch', 'caffe'):
            raise ValueError(f"ResNet style must be 'pytorch' or 'caffe', got {style!r}")
        # caffe (MSRA) weights were trained with the stride on the first 1x1 conv
        conv1_stride, conv2_stride = (1, stride) if style == 'pytorch' else (stride, 1)
        width = planes if groups == 1 else \
            math.floor(planes * (base_width / base_channels)) * groups
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, width, postfix=1)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, width, postfix=2)
        self.norm3_name, norm3 = build_norm_layer(norm_cfg, planes * self.expansion, postfix=3)
        self.conv1 = build_conv_layer(conv_cfg, inplanes, width, 1, stride=conv1_stride,
                                      bias=False)
        self.add_module(self.norm1_name, norm1)
        conv2_cfg = conv_cfg
        if dcn is not None:
            dcn = dict(dcn)
            # fallback_on_stride: keep a plain conv in the strided first block of a stage
            if not (dcn.pop('fallback_on_stride', False) and conv2_stride > 1):
                if conv_cfg is not None:
                    raise ValueError(f'ResNet dcn={dcn} needs conv_cfg=None, got {conv_cfg}')
                conv2_cfg = dcn
        self.conv2 = build_conv_layer(conv2_cfg, width, width, 3, stride=conv2_stride,
                                      padding=dilation, dilation=dilation, groups=groups,
                                      bias=False)
        self.add_module(self.norm2_name, norm2)
        self.conv3 = build_conv_layer(conv_cfg, width, planes * self.expansion, 1, bias=False)
        self.add_module(self.norm3_name, norm3)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride
        self.dilation = dilation
        self.style = style
        self.with_cp = with_cp
        self.plugin_names: Dict[str, List[str]] = {}
        for position, channels in (('after_conv1', width), ('after_conv2', width),
                                   ('after_conv3', planes * self.expansion)):
            cfgs = [p['cfg'] for p in plugins or [] if p['position'] == position]
            self.plugin_names[position] = self._make_plugins(channels, cfgs)

    def _make_plugins(self, in_channels: int, cfgs: List[Dict]) -> List[str]:
        names = []
        for cfg in cfgs:
            cfg = dict(cfg)
            name, layer = build_plugin_layer(cfg, in_channels=in_channels,
                                             postfix=cfg.pop('postfix', ''))
            if hasattr(self, name):
                raise ValueError(f'ResNet plugins: two plugins named {name!r} in one block; '
                                 "give them different 'postfix' values")
            self.add_module(name, layer)
            names.append(name)
        return names

    def _plugins(self, x: Tensor, position: str) -> Tensor:
        for name in self.plugin_names[position]:
            x = getattr(self, name)(x)
        return x

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def norm2(self) -> nn.Module:
        return getattr(self, self.norm2_name)

    @property
    def norm3(self) -> nn.Module:
        return getattr(self, self.norm3_name)

    def _inner_forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self._plugins(self.relu(self.norm1(self.conv1(x))), 'after_conv1')
        out = self._plugins(self.relu(self.norm2(self.conv2(out))), 'after_conv2')
        out = self._plugins(self.norm3(self.conv3(out)), 'after_conv3')
        return out + identity

    def forward(self, x: Tensor) -> Tensor:
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(self._inner_forward, x, use_reentrant=False)
        else:
            out = self._inner_forward(x)
        return self.relu(out)


@MODELS.register_module()
class ResNet(BaseModule):
    """ResNet backbone (MMDetection 3.x arguments).

    Args:
        depth: 18, 34, 50, 101 or 152.
        in_channels: input image channels.
        stem_channels: stem output channels (default ``base_channels``).
        base_channels: channels of the first stage's blocks.
        num_stages: 1..4 residual stages.
        strides, dilations: per stage.
        out_indices: stages whose output is returned (0-based).
        style: ``'pytorch'`` or ``'caffe'``.
        deep_stem, avg_down: not supported (raise).
        dcn: deformable 3x3 convs in the bottlenecks of the stages ``stage_with_dcn``
            marks: ``dict(type='DCN'|'DCNv2', deform_groups=1, fallback_on_stride=False)``
            (adds ``conv2.conv_offset.*``; see mmft/models/layers/deform_conv.py).
        stage_with_dcn: one bool per stage.
        plugins: ``[dict(cfg=dict(type='ContextBlock', ratio=1. / 16), stages=(False, True,
            True, True), position='after_conv3')]``: modules inserted in the bottlenecks,
            named ``context_block`` (+ ``postfix``) as in MMDetection.
        frozen_stages: -1 trains everything; k >= 0 freezes the stem and
            stages 1..k (no gradient, BN statistics fixed).
        norm_cfg: norm of every layer, ``requires_grad`` honoured.
        norm_eval: keep every BN in eval mode during training.
        with_cp: gradient checkpointing in the blocks.
        zero_init_residual: start each block's last norm at zero.
        pretrained: deprecated, same as ``init_cfg=dict(type='Pretrained', checkpoint=...)``.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH[, prefix=...])``
            loads the backbone of a local checkpoint: mmft / MMDetection,
            torchvision, Detectron2 ``.pkl`` or Caffe ``.caffemodel`` (see
            :meth:`load_pretrained`); otherwise Kaiming/constant init.
    """

    arch_settings = {
        18: (BasicBlock, (2, 2, 2, 2)),
        34: (BasicBlock, (3, 4, 6, 3)),
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3)),
    }

    def __init__(self,
                 depth: int,
                 in_channels: int = 3,
                 stem_channels: Optional[int] = None,
                 base_channels: int = 64,
                 num_stages: int = 4,
                 strides: Sequence[int] = (1, 2, 2, 2),
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
        if depth not in self.arch_settings:
            raise KeyError(f'ResNet depth {depth!r} is invalid; use one of '
                           f'{sorted(self.arch_settings)}')
        if not 1 <= num_stages <= 4:
            raise ValueError(f'ResNet num_stages must be in 1..4, got {num_stages}')
        if len(strides) != num_stages or len(dilations) != num_stages:
            raise ValueError(f'ResNet strides {tuple(strides)} and dilations {tuple(dilations)} '
                             f'need one entry per stage (num_stages={num_stages})')
        if not out_indices or max(out_indices) >= num_stages:
            raise ValueError(f'ResNet out_indices {tuple(out_indices)} must be non-empty '
                             f'and < num_stages={num_stages}')
        if style not in ('pytorch', 'caffe'):
            raise ValueError(f"ResNet style must be 'pytorch' or 'caffe', got {style!r}")
        if deep_stem or avg_down:
            raise NotImplementedError('ResNet deep_stem=True / avg_down=True (ResNetV1d) is not '
                                      'supported by mmft yet; use the default stem')
        if (dcn is not None or plugins) and self.arch_settings[depth][0] is not Bottleneck:
            raise NotImplementedError(f'ResNet-{depth} (BasicBlock) takes no dcn / plugins '
                                      '(as in MMDetection); use depth >= 50')
        if dcn is not None and len(stage_with_dcn) != num_stages:
            raise ValueError(f'ResNet stage_with_dcn {tuple(stage_with_dcn)} needs one entry '
                             f'per stage (num_stages={num_stages})')
        for plugin in plugins or []:
            if plugin.get('position') not in ('after_conv1', 'after_conv2', 'after_conv3'):
                raise ValueError(f"ResNet plugin {plugin}: position must be 'after_conv1', "
                                 "'after_conv2' or 'after_conv3'")
            if plugin.get('stages') is not None and len(plugin['stages']) != num_stages:
                raise ValueError(f"ResNet plugin {plugin}: 'stages' needs one entry per stage "
                                 f'(num_stages={num_stages})')
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError('ResNet: set either init_cfg or the deprecated pretrained, '
                                 'not both')
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg)

        self.depth = depth
        self.zero_init_residual = zero_init_residual
        self.stem_channels = stem_channels or base_channels
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
        self.plugins = plugins
        self.block, stage_blocks = self.arch_settings[depth]
        self.stage_blocks = stage_blocks[:num_stages]

        self.conv1 = build_conv_layer(conv_cfg, in_channels, self.stem_channels, 7, stride=2,
                                      padding=3, bias=False)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, self.stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        self.inplanes = self.stem_channels
        self.res_layers = []
        for i, num_blocks in enumerate(self.stage_blocks):
            planes = base_channels * 2**i
            res_layer = self._make_res_layer(planes, num_blocks, self.strides[i],
                                             self.dilations[i], **self._stage_extras(i))
            self.inplanes = planes * self.block.expansion
            layer_name = f'layer{i + 1}'
            self.add_module(layer_name, res_layer)
            self.res_layers.append(layer_name)
        self.feat_dim = self.block.expansion * base_channels * 2**(len(self.stage_blocks) - 1)
        self._freeze_stages()

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def model_name(self) -> str:
        """How messages call this backbone (``'ResNet-50'``)."""
        return f'ResNet-{self.depth}'

    def _stage_extras(self, stage: int) -> Dict[str, Any]:
        """Block arguments beyond ResNet's own for ``stage``: its dcn and plugins."""
        extras: Dict[str, Any] = {}
        if self.dcn is not None and self.stage_with_dcn[stage]:
            extras['dcn'] = self.dcn
        plugins = [{k: v for k, v in p.items() if k != 'stages'} for p in self.plugins or []
                   if p.get('stages') is None or p['stages'][stage]]
        if plugins:
            extras['plugins'] = plugins
        return extras

    def _make_res_layer(self, planes: int, num_blocks: int, stride: int,
                        dilation: int, **extras: Any) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * self.block.expansion:
            downsample = nn.Sequential(
                build_conv_layer(self.conv_cfg, self.inplanes, planes * self.block.expansion, 1,
                                 stride=stride, bias=False),
                build_norm_layer(self.norm_cfg, planes * self.block.expansion)[1])
        common = dict(style=self.style, with_cp=self.with_cp, conv_cfg=self.conv_cfg,
                      norm_cfg=self.norm_cfg, dilation=dilation, **extras)
        layers = [self.block(self.inplanes, planes, stride=stride, downsample=downsample,
                             **common)]
        inplanes = planes * self.block.expansion
        for _ in range(1, num_blocks):
            layers.append(self.block(inplanes, planes, stride=1, **common))
        return nn.Sequential(*layers)

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            for module in (self.conv1, self.norm1):
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False
        for i in range(1, self.frozen_stages + 1):
            layer = getattr(self, f'layer{i}')
            layer.eval()
            for param in layer.parameters():
                param.requires_grad = False

    def init_weights(self) -> None:
        """Kaiming/constant init, then the ``Pretrained`` checkpoint if configured.

        The pretrained load is done here rather than by MMEngine's
        ``PretrainedInit`` so that it reads safely, converts foreign formats and
        reports missing / unexpected keys.
        """
        pretrained = pretrained_cfgs(self.init_cfg)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, (_BatchNorm, nn.GroupNorm)) and m.weight is not None:
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        for m in self.modules():
            # the Kaiming loop above also hit the offset convs: zero them (as mmcv), so a
            # deformable conv starts sampling the regular grid
            if hasattr(m, 'conv_offset'):
                nn.init.constant_(m.conv_offset.weight, 0)
                nn.init.constant_(m.conv_offset.bias, 0)
            if isinstance(m, Bottleneck):
                for name in sum(m.plugin_names.values(), []):
                    plugin = getattr(m, name)
                    if hasattr(plugin, 'init_weights'):
                        plugin.init_weights()
        if self.zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.constant_(m.norm3.weight, 0)
                elif isinstance(m, BasicBlock):
                    nn.init.constant_(m.norm2.weight, 0)
        for cfg in pretrained:
            self.load_pretrained(cfg['checkpoint'], prefix=cfg.get('prefix', None))
        self._is_init = True

    def _added_to_classifier(self, key: str) -> bool:
        """Keys of layers an ImageNet ResNet lacks: DCN offset convs and block plugins,
        which keep their (identity-like) init when the file has none, as in MMDetection."""
        if '.conv_offset.' in key:
            return True
        plugin_names = {n for m in self.modules() if isinstance(m, Bottleneck)
                        for names in m.plugin_names.values() for n in names}
        parts = key.split('.')
        return len(parts) > 3 and parts[2] in plugin_names

    def load_pretrained(self, checkpoint: str, prefix: Optional[str] = None) -> None:
        """Load this ResNet's weights from ``checkpoint`` exactly
        (:func:`mmft.checkpoint.pretrained.load_pretrained_init`), and warn when the file
        says it was trained with the other ``style``."""
        name = self.model_name
        loaded = load_pretrained_init(self, checkpoint, prefix=prefix, name=name,
                                      keep_init=self._added_to_classifier)
        trained_style = loaded.meta.get('style')
        if self.block is Bottleneck and trained_style not in (None, self.style):
            # same shapes either way, so nothing else would notice the stride on the wrong conv
            MMLogger.get_current_instance().warning(
                f'{name} init_cfg {checkpoint}: these weights were trained with '
                f"style={trained_style!r}, this ResNet has style={self.style!r}; set "
                f"backbone.style={trained_style!r} and the input conventions in "
                'docs/model_zoo.md')

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x = self.maxpool(self.relu(self.norm1(self.conv1(x))))
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'ResNet':
        """Switch mode, keeping frozen stages (and all BN with ``norm_eval``) in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            norms_to_eval(self)
        return self
