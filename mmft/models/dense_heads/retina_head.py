"""RetinaNet head (MMDetection 3.x keys): two towers of ``stacked_convs`` 3x3
ConvModules, then 3x3 predictors.

Keys: ``cls_convs.{i}.conv.*``, ``reg_convs.{i}.conv.*`` (``.gn.*`` with a GN
``norm_cfg``, and then no conv bias), ``retina_cls`` ``(A * C, F, 3, 3)`` and
``retina_reg`` ``(A * 4, F, 3, 3)``; C = num_classes (sigmoid, no background).
``retina_cls`` rows: anchor ``a``, class ``c`` at ``a * C + c``; its bias starts
at the focal-loss prior ``-log((1 - 0.01) / 0.01)``.
"""
from typing import ClassVar, Dict, Optional, Tuple

import torch.nn as nn
from torch import Tensor

from mmft.registry import MODELS
from ..layers import ConvModule
from .anchor_head import AnchorHead


@MODELS.register_module()
class RetinaHead(AnchorHead):
    """RetinaNet head (Lin et al., "Focal Loss for Dense Object Detection").

    Args:
        num_classes, in_channels: see :class:`AnchorHead`.
        stacked_convs: convs in each tower.
        conv_cfg, norm_cfg: of the tower ConvModules (``dict(type='GN', num_groups=32)``
            for torchvision's RetinaNet v2).
        anchor_generator: default 9 anchors (3 octave scales x 3 ratios) on P3-P7.
        init_cfg: Normal(0.01) convs, ``retina_cls`` bias at the focal-loss prior.
        **kwargs: :class:`AnchorHead` arguments.
    """

    cls_layer_name: ClassVar[str] = 'retina_cls'
    finetune_preset: ClassVar[str] = 'retinanet'

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 stacked_convs: int = 4,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Optional[Dict] = None,
                 anchor_generator: Dict = dict(type='AnchorGenerator', octave_base_scale=4,
                                               scales_per_octave=3, ratios=[0.5, 1.0, 2.0],
                                               strides=[8, 16, 32, 64, 128]),
                 init_cfg: Optional[Dict] = dict(
                     type='Normal', layer='Conv2d', std=0.01,
                     override=dict(type='Normal', name='retina_cls', std=0.01, bias_prob=0.01)),
                 **kwargs) -> None:
        if stacked_convs < 0:
            raise ValueError(f'RetinaHead stacked_convs must be >= 0, got {stacked_convs}')
        self.stacked_convs = stacked_convs
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        super().__init__(num_classes, in_channels, anchor_generator=anchor_generator,
                         init_cfg=init_cfg, **kwargs)

    def _init_layers(self) -> None:
        self.relu = nn.ReLU(inplace=True)
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        in_channels = self.in_channels
        for _ in range(self.stacked_convs):
            for tower in (self.cls_convs, self.reg_convs):
                tower.append(ConvModule(in_channels, self.feat_channels, 3, stride=1, padding=1,
                                        conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg))
            in_channels = self.feat_channels
        self.retina_cls = nn.Conv2d(in_channels, self.num_base_priors * self.cls_out_channels,
                                    3, padding=1)
        self.retina_reg = nn.Conv2d(in_channels,
                                    self.num_base_priors * self.bbox_coder.encode_size,
                                    3, padding=1)

    def forward_single(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        cls_feat = reg_feat = x
        for conv in self.cls_convs:
            cls_feat = conv(cls_feat)
        for conv in self.reg_convs:
            reg_feat = conv(reg_feat)
        return self.retina_cls(cls_feat), self.retina_reg(reg_feat)
