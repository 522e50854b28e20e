"""RTMDet heads (MMDetection 3.x ``RTMDetHead`` / ``RTMDetSepBNHead`` arguments and keys).

``RTMDetSepBNHead`` keys, per level ``n`` (one point prior per location, strides 8/16/32):
``cls_convs.{n}.{i}.conv.weight`` + ``.bn.*`` and ``reg_convs.{n}.{i}.*`` (``stacked_convs``
3x3 ConvModules; with ``share_conv`` the convs are the same tensors on every level, the BNs
are per level, and the state_dict lists the shared conv under every level, as
MMDetection's does), ``rtm_cls.{n} (C, F, k, k)``, ``rtm_reg.{n} (4, F, k, k)``
(``k = pred_kernel_size``), and with ``with_objectness`` ``rtm_obj.{n} (1, F, k, k)``.
``RTMDetHead`` (not separated) has ``cls_convs.{i}``, ``reg_convs.{i}``, ``rtm_cls``,
``rtm_reg``[, ``rtm_obj``] and ``scales.{n}.scale``.

Outputs per level: ``cls_score (B, C, H, W)`` logits (sigmoid, no background),
``bbox_pred (B, 4, H, W)`` distances ``(left, top, right, bottom)`` in pixels
(the conv output, ``exp`` of it with ``exp_on_reg``, times the stride). Priors are
the cells' top-left corners (``MlvlPointGenerator(offset=0)``).

Training: ``DynamicSoftLabelAssigner`` picks positives from the decoded boxes and the
scores; the classification loss is QFL toward each positive's IoU, averaged over the
sum of those IoUs; the box loss is GIoU weighted by the same IoUs.
"""
from typing import ClassVar, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.structures import InstanceData
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmft.registry import MODELS, TASK_UTILS
from mmft.structures.class_rows import ClassRows, declare
from ..layers import ConvModule, Scale
from ..layers.csp_layer import DepthwiseSeparableConvModule
from .base_dense_head import BaseDenseHead

_PRIOR_PROB = 0.01


def _bias_prior(prob: float) -> float:
    """Logit of ``prob``: the focal-loss prior bias ``-log((1 - p) / p)``."""
    return float(-torch.log(torch.tensor((1 - prob) / prob)))


def distance2bbox(points: Tensor, distance: Tensor) -> Tensor:
    """``(..., N, 4)`` boxes from ``(N, >=2)`` points and ``(..., N, 4)`` distances."""
    x, y = points[..., 0], points[..., 1]
    return torch.stack([x - distance[..., 0], y - distance[..., 1],
                        x + distance[..., 2], y + distance[..., 3]], -1)


def sigmoid_geometric_mean(x: Tensor, y: Tensor) -> Tensor:
    """``sqrt(sigmoid(x) * sigmoid(y))``."""
    return (x.sigmoid() * y.sigmoid()).sqrt()


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Logit of ``x``, clamped away from 0 and 1."""
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


@MODELS.register_module()
class RTMDetHead(BaseDenseHead):
    """RTMDet head with one tower shared by every level (see the module docstring).

    Args:
        num_classes: foreground classes.
        in_channels: channels of every input level.
        with_objectness: an objectness branch multiplied (geometric mean) into the scores.
        act_cfg: activation of the tower convs.
        feat_channels: tower channels.
        stacked_convs: convs per tower.
        pred_kernel_size: kernel of the prediction convs.
        conv_cfg, norm_cfg: tower configs.
        anchor_generator: TASK_UTILS config (``MlvlPointGenerator``, offset 0).
        bbox_coder: TASK_UTILS config (``DistancePointBBoxCoder``).
        loss_cls: ``QualityFocalLoss`` config.
        loss_bbox: ``GIoULoss`` config.
        loss_centerness: accepted as ATSSHead's argument; RTMDet does not use it.
        reg_decoded_bbox: accepted (RTMDet always regresses decoded boxes).
        train_cfg: ``assigner`` (``DynamicSoftLabelAssigner``), ``allowed_border``
            (-1: priors are only limited by the batch padding), ``pos_weight``.
        test_cfg: ``nms_pre``, ``score_thr``, ``nms``, ``max_per_img``, ``min_bbox_size``.
        init_cfg: unused; the init is ``init_weights`` (Normal(0.01) convs, class bias
            at the focal-loss prior).
    """

    finetune_preset: ClassVar[str] = 'rtmdet'

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 with_objectness: bool = True,
                 act_cfg: Dict = dict(type='ReLU'),
                 feat_channels: int = 256,
                 stacked_convs: int = 4,
                 pred_kernel_size: int = 3,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Optional[Dict] = dict(type='GN', num_groups=32, requires_grad=True),
                 anchor_generator: Dict = dict(type='MlvlPointGenerator', offset=0,
                                               strides=[8, 16, 32]),
                 bbox_coder: Dict = dict(type='DistancePointBBoxCoder'),
                 loss_cls: Dict = dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0,
                                       loss_weight=1.0),
                 loss_bbox: Dict = dict(type='GIoULoss', loss_weight=2.0),
                 loss_centerness: Optional[Dict] = None,
                 reg_decoded_bbox: bool = True,
                 train_cfg: Optional[Dict] = None,
                 test_cfg: Optional[Dict] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'{type(self).__name__} num_classes must be a positive int, '
                             f'got {num_classes!r}')
        if not loss_cls.get('use_sigmoid', False):
            raise ValueError(f'{type(self).__name__} needs a sigmoid classification loss '
                             "(QualityFocalLoss with use_sigmoid=True)")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.with_objectness = with_objectness
        self.act_cfg = act_cfg
        self.feat_channels = feat_channels
        self.stacked_convs = stacked_convs
        self.pred_kernel_size = pred_kernel_size
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.use_sigmoid_cls = True
        self.cls_out_channels = num_classes
        self.prior_generator = TASK_UTILS.build(anchor_generator)
        self.num_base_priors = 1
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        if train_cfg:
            if 'assigner' not in train_cfg:
                raise KeyError(f"{type(self).__name__} train_cfg needs an 'assigner', e.g. "
                               "dict(type='DynamicSoftLabelAssigner', topk=13)")
            self.assigner = TASK_UTILS.build(train_cfg['assigner'])
        self._init_layers()

    @property
    def strides(self) -> List[int]:
        return [s[0] for s in self.prior_generator.strides]

    def _tower_conv(self, in_channels: int) -> nn.Module:
        return ConvModule(in_channels, self.feat_channels, 3, stride=1, padding=1,
                          conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)

    def _pred_conv(self, out_channels: int) -> nn.Conv2d:
        return nn.Conv2d(self.feat_channels, out_channels, self.pred_kernel_size,
                         padding=self.pred_kernel_size // 2)

    def _init_layers(self) -> None:
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        for i in range(self.stacked_convs):
            chn = self.in_channels if i == 0 else self.feat_channels
            self.cls_convs.append(self._tower_conv(chn))
            self.reg_convs.append(self._tower_conv(chn))
        self.rtm_cls = self._pred_conv(self.num_base_priors * self.cls_out_channels)
        self.rtm_reg = self._pred_conv(self.num_base_priors * 4)
        if self.with_objectness:
            self.rtm_obj = self._pred_conv(1)
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.strides])

    def _pred_layers(self, name: str) -> List[nn.Conv2d]:
        layer = getattr(self, name)
        return list(layer) if isinstance(layer, nn.ModuleList) else [layer]

    def init_weights(self) -> None:
        """Normal(0, 0.01) convs with zero bias, unit norms; class (and objectness) biases at
        the focal-loss prior, so rows of classes new to a checkpoint start there."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (_BatchNorm, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        names = ['rtm_cls'] + (['rtm_obj'] if self.with_objectness else [])
        for name in names:
            for conv in self._pred_layers(name):
                nn.init.constant_(conv.bias, _bias_prior(_PRIOR_PROB))
        self._is_init = True

    def class_rows(self) -> Dict[str, ClassRows]:
        """``rtm_cls``: one row per class (sigmoid, no background)."""
        return declare('rtm_cls', ClassRows(self.num_classes))

    # ------------------------------------------------------------------ forward
    def _check_levels(self, feats: Sequence[Tensor]) -> None:
        if len(feats) != len(self.strides):
            raise ValueError(f'{type(self).__name__} got {len(feats)} feature levels but has '
                             f'{len(self.strides)} strides (neck outputs and '
                             'anchor_generator.strides must agree)')

    def _predict_level(self, cls_feat: Tensor, reg_feat: Tensor, rtm_cls: nn.Module,
                       rtm_reg: nn.Module, rtm_obj: Optional[nn.Module], stride: int,
                       scale: Optional[Scale], exp_on_reg: bool) -> Tuple[Tensor, Tensor]:
        cls_score = rtm_cls(cls_feat)
        if rtm_obj is not None:
            cls_score = inverse_sigmoid(sigmoid_geometric_mean(cls_score, rtm_obj(reg_feat)))
        reg = rtm_reg(reg_feat)
        if exp_on_reg:
            reg = reg.exp()
        if scale is not None:
            reg = scale(reg)
        return cls_score, reg.float() * stride

    def forward(self, feats: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Per level ``cls_scores`` and ``bbox_preds`` (module docstring)."""
        self._check_levels(feats)
        cls_scores, bbox_preds = [], []
        for x, scale, stride in zip(feats, self.scales, self.strides):
            cls_feat = reg_feat = x
            for layer in self.cls_convs:
                cls_feat = layer(cls_feat)
            for layer in self.reg_convs:
                reg_feat = layer(reg_feat)
            cls, reg = self._predict_level(cls_feat, reg_feat, self.rtm_cls, self.rtm_reg,
                                           self.rtm_obj if self.with_objectness else None,
                                           stride, scale, exp_on_reg=True)
            cls_scores.append(cls)
            bbox_preds.append(reg)
        return cls_scores, bbox_preds

    # ------------------------------------------------------------------ loss
    def loss_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                     batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[List] = None
                     ) -> Dict[str, List[Tensor]]:
        """``{'loss_cls': [per level], 'loss_bbox': [per level]}`` (module docstring)."""
        return self._cls_bbox_losses(cls_scores, bbox_preds, batch_gt_instances,
                                     batch_img_metas)[0]

    def _cls_bbox_losses(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                         batch_gt_instances: List[InstanceData], batch_img_metas: List[dict]
                         ) -> Tuple[Dict[str, List[Tensor]], List[Tuple[Tensor, Tensor]], Tensor]:
        """The losses, each image's positives ``(prior indices, gt indices)`` and the flat
        ``(N, 4)`` priors ``(x, y, stride_w, stride_h)`` (heads that add a branch on the
        positives, such as RTMDet-Ins's masks, reuse the assignment)."""
        if self.train_cfg is None:
            raise ValueError(f'{type(self).__name__}.loss needs train_cfg with an assigner')
        num_imgs = len(batch_img_metas)
        featmap_sizes = [tuple(s.shape[-2:]) for s in cls_scores]
        device = cls_scores[0].device
        priors = self.prior_generator.grid_priors(featmap_sizes, dtype=bbox_preds[0].dtype,
                                                  device=device, with_stride=True)
        num_level = [p.size(0) for p in priors]
        flat_priors = torch.cat(priors)
        flat_cls = torch.cat([s.permute(0, 2, 3, 1).reshape(num_imgs, -1, self.cls_out_channels)
                              for s in cls_scores], 1)
        flat_boxes = torch.cat([distance2bbox(p, b.permute(0, 2, 3, 1).reshape(num_imgs, -1, 4))
                                for p, b in zip(priors, bbox_preds)], 1)
        labels, label_weights, bbox_targets, metrics, positives = [], [], [], [], []
        for i in range(num_imgs):
            targets = self._get_targets_single(flat_cls[i].detach(), flat_boxes[i].detach(),
                                               flat_priors, featmap_sizes, batch_gt_instances[i],
                                               batch_img_metas[i])
            for out, t in zip((labels, label_weights, bbox_targets, metrics), targets[:4]):
                out.append(t)
            positives.append(targets[4])
        labels = torch.stack(labels).split(num_level, 1)
        label_weights = torch.stack(label_weights).split(num_level, 1)
        bbox_targets = torch.stack(bbox_targets).split(num_level, 1)
        metrics = torch.stack(metrics).split(num_level, 1)
        flat_boxes = flat_boxes.split(num_level, 1)
        losses_cls, losses_bbox, cls_avg, bbox_avg = [], [], [], []
        for lvl in range(len(num_level)):
            cls = cls_scores[lvl].permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels)
            box = flat_boxes[lvl].reshape(-1, 4)
            lab = labels[lvl].reshape(-1)
            met = metrics[lvl].reshape(-1)
            losses_cls.append(self.loss_cls(cls, (lab, met), label_weights[lvl].reshape(-1),
                                            avg_factor=1.0))
            pos = ((lab >= 0) & (lab < self.num_classes)).nonzero().squeeze(1)
            if len(pos) > 0:
                weight = met[pos]
                losses_bbox.append(self.loss_bbox(box[pos], bbox_targets[lvl].reshape(-1, 4)[pos],
                                                  weight=weight, avg_factor=1.0))
                bbox_avg.append(weight.sum())
            else:
                losses_bbox.append(box.sum() * 0)
            cls_avg.append(met.sum())
        cls_avg_factor = _reduce_mean(sum(cls_avg)).clamp_(min=1).item()
        bbox_avg_factor = _reduce_mean(sum(bbox_avg) if bbox_avg else
                                       cls_scores[0].new_tensor(0.)).clamp_(min=1).item()
        losses = dict(loss_cls=[l / cls_avg_factor for l in losses_cls],
                      loss_bbox=[l / bbox_avg_factor for l in losses_bbox])
        return losses, positives, flat_priors

    def _get_targets_single(self, cls_scores: Tensor, decoded: Tensor, priors: Tensor,
                            featmap_sizes: List[Tuple[int, int]], gt_instances: InstanceData,
                            img_meta: dict) -> Tuple[Tensor, Tensor, Tensor, Tensor,
                                                     Tuple[Tensor, Tensor]]:
        """``labels (N,)`` (``num_classes`` = background), ``label_weights (N,)``,
        ``bbox_targets (N, 4)``, ``assign_metrics (N,)`` (positives' IoU, else 0) and the
        positives ``(prior indices (P,), assigned gt indices (P,))``."""
        num = priors.size(0)
        pad_shape = img_meta.get('pad_shape', img_meta.get('batch_input_shape',
                                                           img_meta['img_shape']))
        valid = torch.cat(self.prior_generator.valid_flags(featmap_sizes, pad_shape,
                                                           priors.device))
        labels = priors.new_full((num,), self.num_classes, dtype=torch.long)
        label_weights = priors.new_zeros((num,))
        bbox_targets = priors.new_zeros((num, 4))
        metrics = priors.new_zeros((num,))
        no_pos = (priors.new_zeros((0,), dtype=torch.long),) * 2
        if not valid.any():
            return labels, label_weights, bbox_targets, metrics, no_pos
        gt = InstanceData(bboxes=gt_instances.bboxes.to(priors),
                          labels=gt_instances.labels.to(priors.device))
        if 'masks' in gt_instances:
            gt.masks = gt_instances.masks
        pred = InstanceData(scores=cls_scores[valid], bboxes=decoded[valid], priors=priors[valid])
        result = self.assigner.assign(pred, gt)
        idx = valid.nonzero().squeeze(1)
        pos = (result.gt_inds > 0).nonzero().squeeze(1)
        neg = (result.gt_inds == 0).nonzero().squeeze(1)
        pos_weight = self.train_cfg.get('pos_weight', -1)
        if len(pos) > 0:
            assigned = result.gt_inds[pos] - 1
            bbox_targets[idx[pos]] = gt.bboxes[assigned]
            labels[idx[pos]] = gt.labels[assigned].long()
            label_weights[idx[pos]] = 1.0 if pos_weight <= 0 else float(pos_weight)
            metrics[idx[pos]] = result.max_overlaps[pos].to(metrics)
        label_weights[idx[neg]] = 1.0
        if len(pos) == 0:
            return labels, label_weights, bbox_targets, metrics, no_pos
        return labels, label_weights, bbox_targets, metrics, (idx[pos], assigned)


def _reduce_mean(tensor: Tensor) -> Tensor:
    """Mean over the distributed processes (the tensor itself without a process group)."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return tensor
    tensor = tensor.clone()
    dist.all_reduce(tensor.div_(dist.get_world_size()), op=dist.ReduceOp.SUM)
    return tensor


@MODELS.register_module()
class RTMDetSepBNHead(RTMDetHead):
    """RTMDet head with per-level BNs and, with ``share_conv``, convs shared across levels.

    Args:
        num_classes, in_channels: as :class:`RTMDetHead`.
        share_conv: the tower convs are the same modules on every level.
        use_depthwise: depthwise-separable tower convs.
        norm_cfg, act_cfg: of the tower (BN(0.03, 1e-3), SiLU by default).
        pred_kernel_size: kernel of the prediction convs (1).
        exp_on_reg: ``exp`` on the regression output (RTMDet-m/l/x: True).
        **kwargs: the other :class:`RTMDetHead` arguments.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 share_conv: bool = True,
                 use_depthwise: bool = False,
                 norm_cfg: Dict = dict(type='BN', momentum=0.03, eps=0.001),
                 act_cfg: Dict = dict(type='SiLU'),
                 pred_kernel_size: int = 1,
                 exp_on_reg: bool = False,
                 **kwargs) -> None:
        self.share_conv = share_conv
        self.exp_on_reg = exp_on_reg
        self.use_depthwise = use_depthwise
        super().__init__(num_classes, in_channels, norm_cfg=norm_cfg, act_cfg=act_cfg,
                         pred_kernel_size=pred_kernel_size, **kwargs)

    def _init_layers(self) -> None:
        conv = DepthwiseSeparableConvModule if self.use_depthwise else ConvModule
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        self.rtm_cls = nn.ModuleList()
        self.rtm_reg = nn.ModuleList()
        if self.with_objectness:
            self.rtm_obj = nn.ModuleList()
        for _ in self.strides:
            cls_convs, reg_convs = nn.ModuleList(), nn.ModuleList()
            for i in range(self.stacked_convs):
                chn = self.in_channels if i == 0 else self.feat_channels
                for tower in (cls_convs, reg_convs):
                    tower.append(conv(chn, self.feat_channels, 3, stride=1, padding=1,
                                      conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                                      act_cfg=self.act_cfg))
            self.cls_convs.append(cls_convs)
            self.reg_convs.append(reg_convs)
            self.rtm_cls.append(self._pred_conv(self.num_base_priors * self.cls_out_channels))
            self.rtm_reg.append(self._pred_conv(self.num_base_priors * 4))
            if self.with_objectness:
                self.rtm_obj.append(self._pred_conv(1))
        if self.share_conv:
            # one conv per tower depth for all levels; the norms stay per level
            for n in range(1, len(self.strides)):
                for i in range(self.stacked_convs):
                    self.cls_convs[n][i].conv = self.cls_convs[0][i].conv
                    self.reg_convs[n][i].conv = self.reg_convs[0][i].conv

    def class_rows(self) -> Dict[str, ClassRows]:
        """``rtm_cls.{n}`` of every level: one row per class (sigmoid, no background)."""
        rows = {}
        for n in range(len(self.strides)):
            rows.update(declare(f'rtm_cls.{n}', ClassRows(self.num_classes)))
        return rows

    def forward(self, feats: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Per level ``cls_scores`` and ``bbox_preds`` (module docstring)."""
        self._check_levels(feats)
        cls_scores, bbox_preds = [], []
        for idx, (x, stride) in enumerate(zip(feats, self.strides)):
            cls_feat = reg_feat = x
            for layer in self.cls_convs[idx]:
                cls_feat = layer(cls_feat)
            for layer in self.reg_convs[idx]:
                reg_feat = layer(reg_feat)
            cls, reg = self._predict_level(cls_feat, reg_feat, self.rtm_cls[idx],
                                           self.rtm_reg[idx],
                                           self.rtm_obj[idx] if self.with_objectness else None,
                                           stride, None, self.exp_on_reg)
            cls_scores.append(cls)
            bbox_preds.append(reg)
        return cls_scores, bbox_preds
