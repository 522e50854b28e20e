"""FCOS head (MMDetection 3.x arguments and keys): one point per location.

Keys: ``cls_convs.{i}.conv.weight`` + ``cls_convs.{i}.gn.{weight,bias}`` (GN by
default, so no conv bias), ``reg_convs.{i}.*``, ``conv_cls (C, F, 3, 3)``,
``conv_reg (4, F, 3, 3)``, ``conv_centerness (1, F, 3, 3)``, ``scales.{l}.scale ()``.
``conv_cls`` rows are the classes (sigmoid, no background); its bias starts at
the focal-loss prior.

Outputs per level: ``cls_score (B, C, H, W)``, ``bbox_pred (B, 4, H, W)`` distances
``(left, top, right, bottom)`` from the point (``exp`` of the scaled conv, or with
``norm_on_bbox`` its ReLU in units of the level's stride, in pixels at test
time), ``centerness (B, 1, H, W)`` logits (from the regression tower with
``centerness_on_reg``). Test scores are ``sigmoid(cls) * sigmoid(centerness)``.

Targets: a point is positive for the smallest gt that contains it (its centre
region of ``center_sample_radius * stride`` with ``center_sampling``) and whose
largest side distance lies in the level's ``regress_ranges``.
"""
from typing import ClassVar, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.registry import MODELS, TASK_UTILS
from mmft.structures.class_rows import ClassRows, declare
from ..layers import ConvModule, Scale
from .base_dense_head import BaseDenseHead

INF = 1e8


@MODELS.register_module()
class FCOSHead(BaseDenseHead):
    """Anchor-free FCOS head (Tian et al., 2019).

    Args:
        num_classes: foreground classes.
        in_channels: channels of every input level.
        feat_channels: tower channels.
        stacked_convs: convs per tower.
        strides: per level.
        regress_ranges: per level ``(min, max)`` of a positive's largest distance.
        center_sampling: positives only near the gt centre.
        center_sample_radius: that radius, in strides.
        norm_on_bbox: ReLU distances in stride units (else ``exp``).
        centerness_on_reg: centerness from the regression tower.
        dcn_on_last_conv: not supported (mmft has no deformable conv).
        conv_bias: tower conv bias (``'auto'``: only without norm).
        loss_cls, loss_bbox, loss_centerness: MODELS configs.
        bbox_coder: TASK_UTILS config (``DistancePointBBoxCoder``).
        conv_cfg, norm_cfg: of the tower ConvModules (GN(32) by default).
        train_cfg, test_cfg: test_cfg as AnchorHead's (``nms_pre``, ``score_thr``, ...).
        init_cfg: Normal(0.01) convs, ``conv_cls`` bias at the focal-loss prior.
        prior_offset: point position in its cell, in strides (mmft only: 0.5 as
            MMDetection; 0 for torchvision's FCOS weights, whose points are the cells'
            corners).
    """

    finetune_preset: ClassVar[str] = 'fcos'

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 feat_channels: int = 256,
                 stacked_convs: int = 4,
                 strides: Sequence[int] = (4, 8, 16, 32, 64),
                 regress_ranges: Sequence[Tuple[float, float]] = ((-1, 64), (64, 128),
                                                                  (128, 256), (256, 512),
                                                                  (512, INF)),
                 center_sampling: bool = False,
                 center_sample_radius: float = 1.5,
                 norm_on_bbox: bool = False,
                 centerness_on_reg: bool = False,
                 dcn_on_last_conv: bool = False,
                 conv_bias: Union[bool, str] = 'auto',
                 loss_cls: Dict = dict(type='FocalLoss', use_sigmoid=True, gamma=2.0,
                                       alpha=0.25, loss_weight=1.0),
                 loss_bbox: Dict = dict(type='IoULoss', loss_weight=1.0),
                 loss_centerness: Dict = dict(type='CrossEntropyLoss', use_sigmoid=True,
                                              loss_weight=1.0),
                 bbox_coder: Dict = dict(type='DistancePointBBoxCoder'),
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Optional[Dict] = dict(type='GN', num_groups=32, requires_grad=True),
                 cls_predictor_cfg: Optional[Dict] = None,
                 train_cfg: Optional[Dict] = None,
                 test_cfg: Optional[Dict] = None,
                 init_cfg: Optional[Dict] = dict(
                     type='Normal', layer='Conv2d', std=0.01,
                     override=dict(type='Normal', name='conv_cls', std=0.01, bias_prob=0.01)),
                 prior_offset: float = 0.5) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'FCOSHead num_classes must be a positive int, got {num_classes!r}')
        if dcn_on_last_conv:
            raise ValueError('FCOSHead dcn_on_last_conv=True needs deformable convs, which mmft '
                             'does not have; set dcn_on_last_conv=False')
        if cls_predictor_cfg is not None:
            raise ValueError('FCOSHead cls_predictor_cfg (NormedConv2d) is not supported; '
                             'leave it None')
        if len(regress_ranges) != len(strides):
            raise ValueError(f'FCOSHead: {len(regress_ranges)} regress_ranges for '
                             f'{len(strides)} strides; give one (min, max) per level')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.stacked_convs = stacked_convs
        self.strides = list(strides)
        self.regress_ranges = regress_ranges
        self.center_sampling = center_sampling
        self.center_sample_radius = center_sample_radius
        self.norm_on_bbox = norm_on_bbox
        self.centerness_on_reg = centerness_on_reg
        self.conv_bias = conv_bias
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.use_sigmoid_cls = loss_cls.get('use_sigmoid', False)
        if not self.use_sigmoid_cls:
            raise ValueError('FCOSHead needs a sigmoid classification loss (FocalLoss)')
        self.cls_out_channels = num_classes
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_centerness = MODELS.build(loss_centerness)
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.prior_generator = TASK_UTILS.build(dict(type='MlvlPointGenerator', strides=strides,
                                                     offset=prior_offset))
        self.num_base_priors = 1
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self._init_layers()

    def _init_layers(self) -> None:
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        for i in range(self.stacked_convs):
            chn = self.in_channels if i == 0 else self.feat_channels
            for tower in (self.cls_convs, self.reg_convs):
                tower.append(ConvModule(chn, self.feat_channels, 3, stride=1, padding=1,
                                        conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                                        bias=self.conv_bias))
        self.conv_cls = nn.Conv2d(self.feat_channels, self.cls_out_channels, 3, padding=1)
        self.conv_reg = nn.Conv2d(self.feat_channels, 4, 3, padding=1)
        self.conv_centerness = nn.Conv2d(self.feat_channels, 1, 3, padding=1)
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.strides])

    def class_rows(self) -> Dict[str, ClassRows]:
        """``conv_cls``: one row per class (sigmoid, no background)."""
        return declare('conv_cls', ClassRows(self.num_classes))

    # ------------------------------------------------------------------ forward
    def forward_single(self, x: Tensor, scale: Scale, stride: int
                       ) -> Tuple[Tensor, Tensor, Tensor]:
        cls_feat = reg_feat = x
        for conv in self.cls_convs:
            cls_feat = conv(cls_feat)
        for conv in self.reg_convs:
            reg_feat = conv(reg_feat)
        cls_score = self.conv_cls(cls_feat)
        centerness = self.conv_centerness(reg_feat if self.centerness_on_reg else cls_feat)
        bbox_pred = scale(self.conv_reg(reg_feat)).float()
        if self.norm_on_bbox:
            bbox_pred = bbox_pred.clamp(min=0)
            if not self.training:
                bbox_pred = bbox_pred * stride
        else:
            bbox_pred = bbox_pred.exp()
        return cls_score, bbox_pred, centerness

    def forward(self, x: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """Per level ``cls_scores``, ``bbox_preds``, ``centernesses`` (module docstring)."""
        if len(x) != len(self.strides):
            raise ValueError(f'FCOSHead got {len(x)} feature levels but has {len(self.strides)} '
                             'strides (neck num_outs and head strides must agree)')
        outs = [self.forward_single(feat, scale, stride)
                for feat, scale, stride in zip(x, self.scales, self.strides)]
        return tuple(list(level) for level in zip(*outs))

    # ------------------------------------------------------------------ targets
    def get_targets(self, points: List[Tensor], batch_gt_instances: List[InstanceData]
                    ) -> Tuple[Tensor, Tensor]:
        """Labels ``(B * N,)`` and distance targets ``(B * N, 4)`` (in strides with
        ``norm_on_bbox``), image after image, levels in order within each image."""
        num_points = [p.size(0) for p in points]
        ranges = torch.cat([p.new_tensor(r)[None].expand(n, 2)
                            for p, r, n in zip(points, self.regress_ranges, num_points)])
        strides = torch.cat([p.new_full((n,), float(s))
                             for p, s, n in zip(points, self.strides, num_points)])
        all_points = torch.cat(points)
        labels, targets = [], []
        for gt in batch_gt_instances:
            lab, tgt = self._get_targets_single(gt, all_points, ranges, strides)
            if self.norm_on_bbox:
                tgt = tgt / strides[:, None]
            labels.append(lab)
            targets.append(tgt)
        return torch.cat(labels), torch.cat(targets)

    def _get_targets_single(self, gt_instances: InstanceData, points: Tensor,
                            regress_ranges: Tensor, strides: Tensor) -> Tuple[Tensor, Tensor]:
        num_points, num_gts = points.size(0), len(gt_instances)
        gt_bboxes = gt_instances.bboxes.to(points)
        gt_labels = gt_instances.labels.to(points.device)
        if num_gts == 0:
            return gt_labels.new_full((num_points,), self.num_classes), \
                gt_bboxes.new_zeros((num_points, 4))
        areas = ((gt_bboxes[:, 2] - gt_bboxes[:, 0]) *
                 (gt_bboxes[:, 3] - gt_bboxes[:, 1]))[None].repeat(num_points, 1)
        boxes = gt_bboxes[None].expand(num_points, num_gts, 4)
        xs = points[:, 0, None].expand(num_points, num_gts)
        ys = points[:, 1, None].expand(num_points, num_gts)
        bbox_targets = torch.stack((xs - boxes[..., 0], ys - boxes[..., 1],
                                    boxes[..., 2] - xs, boxes[..., 3] - ys), -1)
        if self.center_sampling:
            radius = (strides * self.center_sample_radius)[:, None]
            cx = (boxes[..., 0] + boxes[..., 2]) / 2
            cy = (boxes[..., 1] + boxes[..., 3]) / 2
            # the centre region, cut to the box
            x1 = torch.max(cx - radius, boxes[..., 0])
            y1 = torch.max(cy - radius, boxes[..., 1])
            x2 = torch.min(cx + radius, boxes[..., 2])
            y2 = torch.min(cy + radius, boxes[..., 3])
            inside = torch.stack((xs - x1, ys - y1, x2 - xs, y2 - ys), -1).min(-1)[0] > 0
        else:
            inside = bbox_targets.min(-1)[0] > 0
        max_dist = bbox_targets.max(-1)[0]
        in_range = (max_dist >= regress_ranges[:, None, 0]) & \
            (max_dist <= regress_ranges[:, None, 1])
        areas[~inside] = INF
        areas[~in_range] = INF
        min_area, min_area_inds = areas.min(dim=1)
        labels = gt_labels[min_area_inds]
        labels[min_area == INF] = self.num_classes
        return labels, bbox_targets[torch.arange(num_points, device=points.device),
                                    min_area_inds]

    @staticmethod
    def centerness_target(pos_bbox_targets: Tensor) -> Tensor:
        """``sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))`` per positive."""
        if len(pos_bbox_targets) == 0:
            return pos_bbox_targets[:, 0]
        lr = pos_bbox_targets[:, [0, 2]]
        tb = pos_bbox_targets[:, [1, 3]]
        return torch.sqrt((lr.min(-1)[0] / lr.max(-1)[0]) * (tb.min(-1)[0] / tb.max(-1)[0]))

    # ------------------------------------------------------------------ loss
    def loss_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                     centernesses: List[Tensor], batch_gt_instances: List[InstanceData],
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[List] = None) -> Dict[str, Tensor]:
        """``{'loss_cls', 'loss_bbox', 'loss_centerness'}``: focal loss over all points
        averaged by the positives, IoU loss weighted by the centerness targets,
        centerness BCE on positives."""
        featmap_sizes = [tuple(s.shape[-2:]) for s in cls_scores]
        points = self.prior_generator.grid_priors(featmap_sizes, dtype=bbox_preds[0].dtype,
                                                  device=bbox_preds[0].device)
        labels, bbox_targets = self.get_targets(points, batch_gt_instances)
        num_imgs = cls_scores[0].size(0)

        def flat(outs, channels):
            return torch.cat([o.permute(0, 2, 3, 1).reshape(num_imgs, -1, channels)
                              for o in outs], 1).reshape(-1, channels)

        flat_cls = flat(cls_scores, self.cls_out_channels)
        flat_bbox = flat(bbox_preds, 4)
        flat_ctr = flat(centernesses, 1).reshape(-1)
        flat_points = torch.cat(points).repeat(num_imgs, 1)

        pos_inds = ((labels >= 0) & (labels < self.num_classes)).nonzero().reshape(-1)
        num_pos = max(float(len(pos_inds)), 1.0)
        loss_cls = self.loss_cls(flat_cls, labels, avg_factor=num_pos)
        pos_bbox_preds = flat_bbox[pos_inds]
        pos_centerness = flat_ctr[pos_inds]
        pos_bbox_targets = bbox_targets[pos_inds]
        pos_ctr_targets = self.centerness_target(pos_bbox_targets)
        ctr_denorm = max(float(pos_ctr_targets.sum().detach()), 1e-6)
        if len(pos_inds) > 0:
            pos_points = flat_points[pos_inds]
            loss_bbox = self.loss_bbox(self.bbox_coder.decode(pos_points, pos_bbox_preds),
                                       self.bbox_coder.decode(pos_points, pos_bbox_targets),
                                       weight=pos_ctr_targets, avg_factor=ctr_denorm)
            loss_centerness = self.loss_centerness(pos_centerness, pos_ctr_targets,
                                                   avg_factor=num_pos)
        else:
            loss_bbox = pos_bbox_preds.sum()
            loss_centerness = pos_centerness.sum()
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox, loss_centerness=loss_centerness)
