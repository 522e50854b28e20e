"""YOLOX's decoupled head (MMDetection 3.x ``YOLOXHead`` arguments and keys).

Keys, per level ``n`` (strides 8/16/32, one point prior per location):
``multi_level_cls_convs.{n}.{i}`` and ``multi_level_reg_convs.{n}.{i}`` (``stacked_convs``
3x3 ConvModules each), ``multi_level_conv_cls.{n} (C, F, 1, 1)``,
``multi_level_conv_reg.{n} (4, F, 1, 1)``, ``multi_level_conv_obj.{n} (1, F, 1, 1)``
(the objectness conv reads the regression tower). Nothing is shared across levels.

Outputs per level: ``cls_score (B, C, H, W)`` logits (sigmoid, no background),
``bbox_pred (B, 4, H, W)`` ``(dx, dy, log w, log h)`` in strides, ``objectness
(B, 1, H, W)`` logits. Priors are the cells' top-left corners ``p`` (``MlvlPointGenerator``
with offset 0) and a box decodes as centre ``p + d * stride``, size ``exp(log wh) * stride``.
A detection's score is ``sigmoid(cls) * sigmoid(obj)``.

Training: ``SimOTAAssigner`` picks positives from the cell centres, the decoded boxes and
``sqrt(sigmoid(cls) * sigmoid(obj))``; the class target of a positive is its one-hot label
times its IoU, the objectness target is 1 on positives and 0 elsewhere; the box loss is
an IoU loss on the decoded boxes and, once ``use_l1`` is set (``YOLOXModeSwitchHook``), an
L1 loss on the raw outputs. Every loss is summed and divided by the number of positives
(averaged over processes).
"""
import math
from typing import ClassVar, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.registry import MODELS, TASK_UTILS
from mmft.structures.class_rows import ClassRows, declare
from ..layers import ConvModule
from ..layers.csp_layer import DepthwiseSeparableConvModule
from ..task_modules.point_generator import MlvlPointGenerator
from .base_dense_head import BaseDenseHead
from .dense_postprocess import bbox_post_process
from .rtmdet_head import _bias_prior, _reduce_mean

_PRIOR_PROB = 0.01


@MODELS.register_module()
class YOLOXHead(BaseDenseHead):
    """YOLOX head (see the module docstring).

    Args:
        num_classes: foreground classes.
        in_channels: channels of every input level.
        feat_channels: tower channels.
        stacked_convs: convs per tower.
        strides: of the input levels.
        use_depthwise: depthwise-separable tower convs.
        dcn_on_last_conv: the last tower conv is a modulated deformable conv (DCNv2).
        conv_bias: tower conv bias (``'auto'``: only without a norm).
        conv_cfg, norm_cfg, act_cfg: tower configs.
        loss_cls, loss_bbox, loss_obj, loss_l1: MODELS loss configs (sigmoid
            ``CrossEntropyLoss``, ``IoULoss(mode='square')``, ``L1Loss``, all summed).
        train_cfg: ``assigner`` (``SimOTAAssigner``).
        test_cfg: ``score_thr``, ``nms`` (and optionally ``max_per_img``, default 100).
        init_cfg: MMDetection's Kaiming-uniform convs; class and objectness biases then
            start at the focal-loss prior (``init_weights``).
    """

    finetune_preset: ClassVar[str] = 'yolox'

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 feat_channels: int = 256,
                 stacked_convs: int = 2,
                 strides: Sequence[int] = (8, 16, 32),
                 use_depthwise: bool = False,
                 dcn_on_last_conv: bool = False,
                 conv_bias: Union[bool, str] = 'auto',
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN', momentum=0.03, eps=0.001),
                 act_cfg: Dict = dict(type='Swish'),
                 loss_cls: Dict = dict(type='CrossEntropyLoss', use_sigmoid=True,
                                       reduction='sum', loss_weight=1.0),
                 loss_bbox: Dict = dict(type='IoULoss', mode='square', eps=1e-16,
                                        reduction='sum', loss_weight=5.0),
                 loss_obj: Dict = dict(type='CrossEntropyLoss', use_sigmoid=True,
                                       reduction='sum', loss_weight=1.0),
                 loss_l1: Dict = dict(type='L1Loss', reduction='sum', loss_weight=1.0),
                 train_cfg: Optional[Dict] = None,
                 test_cfg: Optional[Dict] = None,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = dict(
                     type='Kaiming', layer='Conv2d', a=math.sqrt(5), distribution='uniform',
                     mode='fan_in', nonlinearity='leaky_relu')) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'YOLOXHead num_classes must be a positive int, got {num_classes!r}')
        if conv_bias != 'auto' and not isinstance(conv_bias, bool):
            raise ValueError(f"YOLOXHead conv_bias must be 'auto' or a bool, got {conv_bias!r}")
        for name, cfg in (('loss_cls', loss_cls), ('loss_obj', loss_obj)):
            if cfg.get('type') == 'CrossEntropyLoss' and not cfg.get('use_sigmoid', False):
                raise ValueError(f'YOLOXHead {name} must be a sigmoid loss: set '
                                 'use_sigmoid=True in its CrossEntropyLoss config')
        self.num_classes = num_classes
        self.cls_out_channels = num_classes
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.stacked_convs = stacked_convs
        self.strides = tuple(strides)
        self.use_depthwise = use_depthwise
        self.dcn_on_last_conv = dcn_on_last_conv
        self.conv_bias = conv_bias
        self.use_sigmoid_cls = True
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_obj = MODELS.build(loss_obj)
        # switched on for the last epochs by YOLOXModeSwitchHook
        self.use_l1 = False
        self.loss_l1 = MODELS.build(loss_l1)
        self.prior_generator = MlvlPointGenerator(self.strides, offset=0)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        if train_cfg:
            if 'assigner' not in train_cfg:
                raise KeyError("YOLOXHead train_cfg needs an 'assigner', e.g. "
                               "dict(type='SimOTAAssigner', center_radius=2.5)")
            self.assigner = TASK_UTILS.build(train_cfg['assigner'])
        self._init_layers()

    def _init_layers(self) -> None:
        self.multi_level_cls_convs = nn.ModuleList()
        self.multi_level_reg_convs = nn.ModuleList()
        self.multi_level_conv_cls = nn.ModuleList()
        self.multi_level_conv_reg = nn.ModuleList()
        self.multi_level_conv_obj = nn.ModuleList()
        for _ in self.strides:
            self.multi_level_cls_convs.append(self._build_stacked_convs())
            self.multi_level_reg_convs.append(self._build_stacked_convs())
            self.multi_level_conv_cls.append(nn.Conv2d(self.feat_channels,
                                                       self.cls_out_channels, 1))
            self.multi_level_conv_reg.append(nn.Conv2d(self.feat_channels, 4, 1))
            self.multi_level_conv_obj.append(nn.Conv2d(self.feat_channels, 1, 1))

    def _build_stacked_convs(self) -> nn.Sequential:
        convs = []
        for i in range(self.stacked_convs):
            chn = self.in_channels if i == 0 else self.feat_channels
            last_dcn = self.dcn_on_last_conv and i == self.stacked_convs - 1
            conv_cfg = dict(type='DCNv2') if last_dcn else self.conv_cfg
            cfg = dict(conv_cfg=conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
            if self.use_depthwise:
                # mmft's depthwise pair has no bias switch: with a norm, 'auto' means none
                convs.append(DepthwiseSeparableConvModule(chn, self.feat_channels, 3, stride=1,
                                                          padding=1, **cfg))
            else:
                convs.append(ConvModule(chn, self.feat_channels, 3, stride=1, padding=1,
                                        bias=self.conv_bias, **cfg))
        return nn.Sequential(*convs)

    def init_weights(self) -> None:
        """``init_cfg`` (Kaiming-uniform convs, zero biases), then class and objectness
        biases at the focal-loss prior, so rows of classes new to a checkpoint start there."""
        super().init_weights()
        for conv_cls, conv_obj in zip(self.multi_level_conv_cls, self.multi_level_conv_obj):
            nn.init.constant_(conv_cls.bias, _bias_prior(_PRIOR_PROB))
            nn.init.constant_(conv_obj.bias, _bias_prior(_PRIOR_PROB))

    def class_rows(self) -> Dict[str, ClassRows]:
        """``multi_level_conv_cls.{n}`` of every level: one row per class (sigmoid, no
        background); objectness is class-free."""
        rows = {}
        for n in range(len(self.strides)):
            rows.update(declare(f'multi_level_conv_cls.{n}', ClassRows(self.num_classes)))
        return rows

    # ------------------------------------------------------------------ forward
    def forward(self, feats: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """Per level ``cls_scores``, ``bbox_preds``, ``objectnesses`` (module docstring)."""
        if len(feats) != len(self.strides):
            raise ValueError(f'YOLOXHead got {len(feats)} feature levels but has strides '
                             f'{self.strides} (neck outputs and strides must agree)')
        cls_scores, bbox_preds, objectnesses = [], [], []
        for n, x in enumerate(feats):
            cls_feat = self.multi_level_cls_convs[n](x)
            reg_feat = self.multi_level_reg_convs[n](x)
            cls_scores.append(self.multi_level_conv_cls[n](cls_feat))
            bbox_preds.append(self.multi_level_conv_reg[n](reg_feat))
            objectnesses.append(self.multi_level_conv_obj[n](reg_feat))
        return cls_scores, bbox_preds, objectnesses

    def _flatten(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                 objectnesses: List[Tensor]) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(B, N, C)`` class logits, ``(B, N, 4)`` raw box outputs, ``(B, N)`` objectness
        logits and the ``(N, 4)`` priors ``(x, y, stride_w, stride_h)`` of all levels."""
        num_imgs = cls_scores[0].size(0)
        featmap_sizes = [tuple(s.shape[-2:]) for s in cls_scores]
        priors = torch.cat(self.prior_generator.grid_priors(
            featmap_sizes, dtype=cls_scores[0].dtype, device=cls_scores[0].device,
            with_stride=True))

        def flat(maps: List[Tensor], channels: int) -> Tensor:
            return torch.cat([m.permute(0, 2, 3, 1).reshape(num_imgs, -1, channels)
                              for m in maps], dim=1)

        return (flat(cls_scores, self.cls_out_channels), flat(bbox_preds, 4),
                flat(objectnesses, 1).squeeze(-1), priors)

    @staticmethod
    def _bbox_decode(priors: Tensor, bbox_preds: Tensor) -> Tensor:
        """``(..., N, 4)`` ``(x1, y1, x2, y2)`` boxes from raw outputs and priors."""
        xys = bbox_preds[..., :2] * priors[:, 2:] + priors[:, :2]
        whs = bbox_preds[..., 2:].exp() * priors[:, 2:]
        return torch.cat([xys - whs / 2, xys + whs / 2], dim=-1)

    # ------------------------------------------------------------------ inference
    def predict_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                        objectnesses: List[Tensor], batch_img_metas: List[dict],
                        cfg: Optional[Dict] = None, rescale: bool = False,
                        with_nms: bool = True) -> List[InstanceData]:
        """Per image, every location whose best class score times objectness reaches
        ``score_thr`` (one box, its best class), then per-class NMS."""
        if not len(cls_scores) == len(bbox_preds) == len(objectnesses):
            raise ValueError(f'YOLOXHead: {len(cls_scores)} score, {len(bbox_preds)} box and '
                             f'{len(objectnesses)} objectness levels must be equal')
        cfg = self.test_cfg if cfg is None else cfg
        if cfg is None:
            raise ValueError("YOLOXHead.predict needs test_cfg (score_thr, "
                             "nms=dict(type='nms', iou_threshold=0.65))")
        flat_cls, flat_reg, flat_obj, priors = self._flatten(cls_scores, bbox_preds,
                                                             objectnesses)
        flat_cls, flat_obj = flat_cls.detach().sigmoid(), flat_obj.detach().sigmoid()
        flat_boxes = self._bbox_decode(priors, flat_reg.detach())
        results = []
        for img_id, img_meta in enumerate(batch_img_metas):
            max_scores, labels = flat_cls[img_id].max(dim=1)
            scores = max_scores * flat_obj[img_id]
            keep = scores >= cfg.get('score_thr', 0)
            order = scores[keep].argsort(descending=True)
            result = InstanceData(bboxes=flat_boxes[img_id][keep][order],
                                  scores=scores[keep][order], labels=labels[keep][order])
            results.append(bbox_post_process(result, cfg, img_meta, rescale, 'YOLOXHead',
                                             with_nms))
        return results

    # ------------------------------------------------------------------ loss
    def loss_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                     objectnesses: List[Tensor], batch_gt_instances: List[InstanceData],
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[List] = None) -> Dict[str, Tensor]:
        """``loss_cls``, ``loss_bbox``, ``loss_obj`` and, with ``use_l1``, ``loss_l1``."""
        if self.train_cfg is None or not hasattr(self, 'assigner'):
            raise ValueError("YOLOXHead.loss needs train_cfg=dict(assigner=dict("
                             "type='SimOTAAssigner', center_radius=2.5))")
        flat_cls, flat_reg, flat_obj, priors = self._flatten(cls_scores, bbox_preds,
                                                             objectnesses)
        flat_boxes = self._bbox_decode(priors, flat_reg)
        pos_masks, cls_targets, obj_targets, bbox_targets, l1_targets = [], [], [], [], []
        num_pos = 0
        for i, gt in enumerate(batch_gt_instances):
            targets = self._get_targets_single(priors, flat_cls[i].detach(),
                                               flat_boxes[i].detach(), flat_obj[i].detach(), gt)
            for out, t in zip((pos_masks, cls_targets, obj_targets, bbox_targets, l1_targets),
                              targets):
                out.append(t)
            num_pos += int(targets[0].sum())
        avg = max(_reduce_mean(flat_cls.new_tensor(float(num_pos))).item(), 1.0)
        pos_masks = torch.cat(pos_masks)
        loss_obj = self.loss_obj(flat_obj.reshape(-1, 1), torch.cat(obj_targets)) / avg
        if num_pos > 0:
            loss_cls = self.loss_cls(flat_cls.reshape(-1, self.num_classes)[pos_masks],
                                     torch.cat(cls_targets)) / avg
            loss_bbox = self.loss_bbox(flat_boxes.reshape(-1, 4)[pos_masks],
                                       torch.cat(bbox_targets)) / avg
        else:
            # zero, but connected to the outputs so every parameter gets a gradient
            loss_cls = flat_cls.sum() * 0
            loss_bbox = flat_boxes.sum() * 0
        losses = dict(loss_cls=loss_cls, loss_bbox=loss_bbox, loss_obj=loss_obj)
        if self.use_l1:
            losses['loss_l1'] = self.loss_l1(flat_reg.reshape(-1, 4)[pos_masks],
                                             torch.cat(l1_targets)) / avg \
                if num_pos > 0 else flat_reg.sum() * 0
        return losses

    @torch.no_grad()
    def _get_targets_single(self, priors: Tensor, cls_preds: Tensor, decoded: Tensor,
                            objectness: Tensor, gt_instances: InstanceData
                            ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(N,)`` positive mask, ``(P, C)`` class targets (one-hot times IoU), ``(N, 1)``
        objectness targets, ``(P, 4)`` gt boxes and ``(P, 4)`` L1 targets of the P
        positives."""
        num_priors = priors.size(0)
        pos_mask = torch.zeros(num_priors, dtype=torch.bool, device=priors.device)
        obj_target = cls_preds.new_zeros((num_priors, 1))
        if 'bboxes' not in gt_instances or len(gt_instances.bboxes) == 0:
            empty = cls_preds.new_zeros((0, 4))
            return (pos_mask, cls_preds.new_zeros((0, self.num_classes)), obj_target, empty,
                    empty)
        gt_bboxes = gt_instances.bboxes.to(decoded)
        gt = InstanceData(bboxes=gt_bboxes, labels=gt_instances.labels.to(priors.device))
        # the assigner sees the cell centres; decoding and L1 targets use the corners
        centres = torch.cat([priors[:, :2] + priors[:, 2:] * 0.5, priors[:, 2:]], dim=-1)
        scores = (cls_preds.sigmoid() * objectness[:, None].sigmoid()).sqrt()
        result = self.assigner.assign(InstanceData(bboxes=decoded, scores=scores,
                                                   priors=centres), gt)
        pos = (result.gt_inds > 0).nonzero().squeeze(1)
        assigned = result.gt_inds[pos] - 1
        pos_mask[pos] = True
        obj_target[pos] = 1
        cls_target = F.one_hot(gt.labels[assigned].long(), self.num_classes).to(cls_preds) \
            * result.max_overlaps[pos, None].to(cls_preds)
        bbox_target = gt_bboxes[assigned]
        l1_target = cls_preds.new_zeros((len(pos), 4))
        if self.use_l1:
            l1_target = self._get_l1_target(bbox_target, priors[pos])
        return pos_mask, cls_target, obj_target, bbox_target, l1_target

    @staticmethod
    def _get_l1_target(gt_bboxes: Tensor, priors: Tensor, eps: float = 1e-8) -> Tensor:
        """Raw outputs that decode exactly to ``gt_bboxes``: centre offset and log size,
        in strides."""
        centre = (gt_bboxes[:, :2] + gt_bboxes[:, 2:]) / 2
        size = gt_bboxes[:, 2:] - gt_bboxes[:, :2]
        return torch.cat([(centre - priors[:, :2]) / priors[:, 2:],
                          torch.log(size / priors[:, 2:] + eps)], dim=-1)
