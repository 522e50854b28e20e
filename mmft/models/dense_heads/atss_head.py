"""ATSS head (MMDetection 3.x keys): RetinaHead-like towers (GN), one anchor per
location, a centerness branch and a learnable scale per level.

Keys: ``cls_convs.{i}.conv.weight`` + ``.gn.*``, ``reg_convs.{i}.*``, ``atss_cls
(A * C, F, k, k)``, ``atss_reg (A * 4, F, k, k)``, ``atss_centerness (A, F, k, k)``,
``scales.{l}.scale ()``. Boxes are regressed as decoded boxes (GIoU loss), the
centerness is the FCOS one of the anchor centre w.r.t. its gt, and test scores
are ``sigmoid(cls) * sigmoid(centerness)``.
"""
from typing import ClassVar, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.registry import MODELS
from ..layers import ConvModule, Scale
from .anchor_head import AnchorHead


@MODELS.register_module()
class ATSSHead(AnchorHead):
    """ATSS head (Zhang et al., 2020); assignment by ``ATSSAssigner``.

    Args:
        num_classes, in_channels: see :class:`AnchorHead`.
        pred_kernel_size: kernel of the three predictors.
        stacked_convs: convs per tower.
        conv_cfg, norm_cfg: tower ConvModules (GN(32) by default).
        reg_decoded_bbox: True (GIoU on decoded boxes).
        loss_centerness: MODELS config (sigmoid BCE).
        init_cfg: Normal(0.01), ``atss_cls`` bias at the focal-loss prior.
        **kwargs: :class:`AnchorHead` arguments.
    """

    cls_layer_name: ClassVar[str] = 'atss_cls'
    finetune_preset: ClassVar[str] = 'atss'

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 pred_kernel_size: int = 3,
                 stacked_convs: int = 4,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Optional[Dict] = dict(type='GN', num_groups=32, requires_grad=True),
                 reg_decoded_bbox: bool = True,
                 loss_centerness: Dict = dict(type='CrossEntropyLoss', use_sigmoid=True,
                                              loss_weight=1.0),
                 init_cfg: Optional[Dict] = dict(
                     type='Normal', layer='Conv2d', std=0.01,
                     override=dict(type='Normal', name='atss_cls', std=0.01, bias_prob=0.01)),
                 **kwargs) -> None:
        self.pred_kernel_size = pred_kernel_size
        self.stacked_convs = stacked_convs
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        super().__init__(num_classes, in_channels, reg_decoded_bbox=reg_decoded_bbox,
                         init_cfg=init_cfg, **kwargs)
        self.loss_centerness = MODELS.build(loss_centerness)

    def _init_layers(self) -> None:
        self.relu = nn.ReLU(inplace=True)
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        for i in range(self.stacked_convs):
            chn = self.in_channels if i == 0 else self.feat_channels
            for tower in (self.cls_convs, self.reg_convs):
                tower.append(ConvModule(chn, self.feat_channels, 3, stride=1, padding=1,
                                        conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg))
        pad = self.pred_kernel_size // 2
        self.atss_cls = nn.Conv2d(self.feat_channels, self.num_anchors * self.cls_out_channels,
                                  self.pred_kernel_size, padding=pad)
        self.atss_reg = nn.Conv2d(self.feat_channels, self.num_base_priors * 4,
                                  self.pred_kernel_size, padding=pad)
        self.atss_centerness = nn.Conv2d(self.feat_channels, self.num_base_priors,
                                         self.pred_kernel_size, padding=pad)
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.prior_generator.strides])

    def forward_single(self, x: Tensor, scale: Scale) -> Tuple[Tensor, Tensor, Tensor]:
        cls_feat = reg_feat = x
        for conv in self.cls_convs:
            cls_feat = conv(cls_feat)
        for conv in self.reg_convs:
            reg_feat = conv(reg_feat)
        return (self.atss_cls(cls_feat), scale(self.atss_reg(reg_feat)).float(),
                self.atss_centerness(reg_feat))

    def forward(self, x: Sequence[Tensor]) -> Tuple[List[Tensor], ...]:
        """Per level ``cls_scores``, ``bbox_preds`` (deltas), ``centernesses`` (logits)."""
        if len(x) != self.prior_generator.num_levels:
            raise ValueError(f'ATSSHead got {len(x)} feature levels but its anchor generator '
                             f'has {self.prior_generator.num_levels} strides')
        outs = [self.forward_single(feat, scale) for feat, scale in zip(x, self.scales)]
        return tuple(list(level) for level in zip(*outs))

    def _assign(self, pred_instances: InstanceData, num_level_anchors: List[int],
                gt_instances: InstanceData, gt_instances_ignore: Optional[InstanceData]):
        return self.assigner.assign(pred_instances, num_level_anchors, gt_instances,
                                    gt_instances_ignore)

    @staticmethod
    def centerness_target(anchors: Tensor, gts: Tensor) -> Tensor:
        """FCOS centerness of each anchor centre inside its gt box."""
        ctr = (anchors[:, :2] + anchors[:, 2:]) / 2
        lr = torch.stack([ctr[:, 0] - gts[:, 0], gts[:, 2] - ctr[:, 0]], dim=1)
        tb = torch.stack([ctr[:, 1] - gts[:, 1], gts[:, 3] - ctr[:, 1]], dim=1)
        return torch.sqrt((lr.min(-1)[0] / lr.max(-1)[0]) * (tb.min(-1)[0] / tb.max(-1)[0]))

    def loss_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                     centernesses: List[Tensor], batch_gt_instances: List[InstanceData],
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[List] = None) -> Dict[str, Tensor]:
        """Focal loss averaged by positives; GIoU weighted by the centerness targets and
        averaged by their sum; centerness BCE averaged by positives."""
        featmap_sizes = [tuple(s.shape[-2:]) for s in cls_scores]
        anchors = torch.cat(self.prior_generator.grid_priors(
            featmap_sizes, dtype=cls_scores[0].dtype, device=cls_scores[0].device))
        labels, label_weights, bbox_targets, _, pos_mask, avg_factor = self.get_targets(
            anchors, featmap_sizes, batch_gt_instances, batch_img_metas,
            batch_gt_instances_ignore)
        num_imgs = len(batch_img_metas)
        cls_score = self._flatten(cls_scores, self.cls_out_channels)
        bbox_pred = self._flatten(bbox_preds, 4)
        centerness = self._flatten(centernesses, 1).reshape(-1)
        loss_cls = self.loss_cls(cls_score, labels, label_weights, avg_factor=avg_factor)
        pos_inds = torch.nonzero(pos_mask, as_tuple=False).view(-1)
        if pos_inds.numel() > 0:
            pos_anchors = anchors.repeat(num_imgs, 1)[pos_inds]
            pos_targets = bbox_targets[pos_inds]
            ctr_targets = self.centerness_target(pos_anchors, pos_targets)
            loss_bbox = self.loss_bbox(self.bbox_coder.decode(pos_anchors, bbox_pred[pos_inds]),
                                       pos_targets, weight=ctr_targets, avg_factor=1.0)
            loss_bbox = loss_bbox / ctr_targets.sum().detach().clamp(min=1).item()
            loss_centerness = self.loss_centerness(centerness[pos_inds], ctr_targets,
                                                   avg_factor=avg_factor)
        else:
            loss_bbox = bbox_pred.sum() * 0
            loss_centerness = centerness.sum() * 0
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox, loss_centerness=loss_centerness)
