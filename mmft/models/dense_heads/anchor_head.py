"""Anchor-based dense head: the base of RetinaNet, ATSS (and SSD, YOLO-style heads).

MMDetection 3.x arguments, outputs and keys. The base head itself is one 1x1
``conv_cls`` ``(A * C)`` and one 1x1 ``conv_reg`` ``(A * 4)`` on each level;
subclasses override ``_init_layers`` / ``forward_single`` and name their
classifier in ``cls_layer_name`` (``'retina_cls'``, ``'atss_cls'``), which
``class_rows`` declares.

Shapes (A anchors per location, C = ``cls_out_channels``, see base_dense_head):
- ``forward``: per level ``cls_scores[i] (B, A * C, H, W)``, ``bbox_preds[i] (B, A * 4, H, W)``.
- Targets (``get_targets``), concatenated over levels and images, anchors in
  ``grid_priors`` order: ``labels (N,)`` with ``num_classes`` = background,
  ``label_weights (N,)``, ``bbox_targets (N, 4)`` (deltas, or gt boxes with
  ``reg_decoded_bbox``), ``bbox_weights (N, 4)``; ``avg_factor`` is the sum of
  the samplers' factors (the number of positives with PseudoSampler).

API for subclasses (stable): ``forward_single(x) -> (cls_score, bbox_pred)``,
``get_anchors``, ``get_targets``, ``_get_targets_single``, ``loss_by_feat``,
``predict_by_feat`` (from BaseDenseHead), ``class_rows``, ``cls_layer_name``.
"""
from typing import ClassVar, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.registry import MODELS, TASK_UTILS
from mmft.structures.class_rows import ClassRows, declare
from ..task_modules import anchor_inside_flags
from .base_dense_head import BaseDenseHead
from .rpn_head import _pad_shape, _valid_ignore

#: focal-loss prior of sigmoid classifiers: P(object) = 0.01 at initialisation
PRIOR_PROB = 0.01


def bias_init_with_prob(prior_prob: float) -> float:
    """The bias whose sigmoid is ``prior_prob``: ``-log((1 - p) / p)``."""
    return float(-torch.log(torch.tensor((1 - prior_prob) / prior_prob)))


@MODELS.register_module()
class AnchorHead(BaseDenseHead):
    """Anchor-based head with a 1x1 classifier and regressor per level.

    Args:
        num_classes: foreground classes (no background).
        in_channels: channels of every input level.
        feat_channels: channels of the hidden convs (subclasses).
        anchor_generator: TASK_UTILS config (``AnchorGenerator``).
        bbox_coder: TASK_UTILS config (``DeltaXYWHBBoxCoder``).
        reg_decoded_bbox: regress decoded boxes (IoU-type box losses).
        loss_cls, loss_bbox: MODELS configs; ``loss_cls.use_sigmoid`` decides
            whether the classifier has a background channel.
        train_cfg: ``assigner``, ``sampler`` (PseudoSampler when absent),
            ``allowed_border``, ``pos_weight``.
        test_cfg: ``nms_pre``, ``score_thr``, ``nms``, ``max_per_img``, ``min_bbox_size``.
        init_cfg: default ``Normal(std=0.01)`` for every Conv2d.
    """

    #: the classifier conv whose rows belong to classes (``class_rows``)
    cls_layer_name: ClassVar[str] = 'conv_cls'

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 feat_channels: int = 256,
                 anchor_generator: Dict = dict(type='AnchorGenerator', scales=[8, 16, 32],
                                               ratios=[0.5, 1.0, 2.0],
                                               strides=[4, 8, 16, 32, 64]),
                 bbox_coder: Dict = dict(type='DeltaXYWHBBoxCoder', clip_border=True,
                                         target_means=(.0, .0, .0, .0),
                                         target_stds=(1.0, 1.0, 1.0, 1.0)),
                 reg_decoded_bbox: bool = False,
                 loss_cls: Dict = dict(type='CrossEntropyLoss', use_sigmoid=True,
                                       loss_weight=1.0),
                 loss_bbox: Dict = dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0),
                 train_cfg: Optional[Dict] = None,
                 test_cfg: Optional[Dict] = None,
                 init_cfg: Optional[Dict] = dict(type='Normal', layer='Conv2d', std=0.01)
                 ) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'{type(self).__name__} num_classes must be a positive int, got '
                             f"{num_classes!r} (use num_classes='auto' only with a dataset)")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.feat_channels = feat_channels
        self.use_sigmoid_cls = loss_cls.get('use_sigmoid', False)
        self.cls_out_channels = num_classes if self.use_sigmoid_cls else num_classes + 1
        self.reg_decoded_bbox = reg_decoded_bbox

        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        if train_cfg:
            self.assigner = TASK_UTILS.build(train_cfg['assigner'])
            sampler = train_cfg.get('sampler', None) or dict(type='PseudoSampler')
            self.sampler = TASK_UTILS.build(sampler, default_args=dict(context=self))
        self.prior_generator = TASK_UTILS.build(anchor_generator)
        self.num_base_priors = self.prior_generator.num_base_priors[0]
        self._init_layers()

    @property
    def num_anchors(self) -> int:
        return self.num_base_priors

    @property
    def anchor_generator(self):
        return self.prior_generator

    def _init_layers(self) -> None:
        self.conv_cls = nn.Conv2d(self.in_channels,
                                  self.num_base_priors * self.cls_out_channels, 1)
        self.conv_reg = nn.Conv2d(self.in_channels,
                                  self.num_base_priors * self.bbox_coder.encode_size, 1)

    def class_rows(self) -> Dict[str, ClassRows]:
        """The classifier's rows: per anchor a block of classes (background last if softmax)."""
        rows = ClassRows(self.num_classes, groups=self.num_base_priors,
                         background=None if self.use_sigmoid_cls else 'last',
                         activation='sigmoid' if self.use_sigmoid_cls else 'softmax')
        return declare(self.cls_layer_name, rows)

    # ------------------------------------------------------------------ forward
    def forward_single(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        return self.conv_cls(x), self.conv_reg(x)

    def forward(self, x: Sequence[Tensor]) -> Tuple[List[Tensor], ...]:
        """Per-level outputs (see the module docstring)."""
        if len(x) != self.prior_generator.num_levels:
            raise ValueError(f'{type(self).__name__} got {len(x)} feature levels but its '
                             f'anchor generator has {self.prior_generator.num_levels} strides '
                             '(neck num_outs and anchor_generator.strides must agree)')
        outs = [self.forward_single(feat) for feat in x]
        return tuple(list(level) for level in zip(*outs))

    # ------------------------------------------------------------------ targets
    def get_anchors(self, featmap_sizes: List[Tuple[int, int]], batch_img_metas: List[dict],
                    device='cpu') -> Tuple[List[List[Tensor]], List[List[Tensor]]]:
        """Per image, per level: anchors and valid flags (False in the batch padding)."""
        multi_level_anchors = self.prior_generator.grid_priors(featmap_sizes, device=device)
        anchor_list = [multi_level_anchors for _ in batch_img_metas]
        valid_flag_list = [self.prior_generator.valid_flags(featmap_sizes, _pad_shape(meta),
                                                            device)
                           for meta in batch_img_metas]
        return anchor_list, valid_flag_list

    def _assign(self, pred_instances: InstanceData, num_level_anchors: List[int],
                gt_instances: InstanceData, gt_instances_ignore: Optional[InstanceData]):
        """The assigner's call; ATSS-type assigners also need anchors per level."""
        return self.assigner.assign(pred_instances, gt_instances, gt_instances_ignore)

    def _get_targets_single(self, flat_anchors: Tensor, valid_flags: Tensor,
                            num_level_anchors: List[int], gt_instances: InstanceData,
                            img_meta: dict, gt_instances_ignore: Optional[InstanceData]
                            ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, float]:
        """Targets of one image over all its anchors.

        Returns:
            ``labels, label_weights, bbox_targets, bbox_weights, pos_mask, avg_factor``
            (anchors outside the image / unsampled get zero weights).
        """
        allowed_border = (self.train_cfg or {}).get('allowed_border', -1)
        inside = anchor_inside_flags(flat_anchors, valid_flags, img_meta['img_shape'][:2],
                                     allowed_border)
        if not inside.any():
            raise ValueError(f'{type(self).__name__}: no anchor lies inside the image '
                             f'{img_meta["img_shape"]} with allowed_border={allowed_border}; '
                             'use allowed_border=-1 or smaller anchors')
        anchors = flat_anchors[inside]
        level_ids = torch.repeat_interleave(
            torch.arange(len(num_level_anchors), device=inside.device),
            torch.as_tensor(num_level_anchors, device=inside.device))
        num_level_inside = torch.bincount(level_ids[inside],
                                          minlength=len(num_level_anchors)).tolist()
        pred_instances = InstanceData(priors=anchors)
        assign_result = self._assign(pred_instances, num_level_inside, gt_instances,
                                     gt_instances_ignore)
        sampling = self.sampler.sample(assign_result, pred_instances, gt_instances)

        num_all = flat_anchors.size(0)
        labels = flat_anchors.new_full((num_all,), self.num_classes, dtype=torch.long)
        label_weights = flat_anchors.new_zeros(num_all)
        bbox_targets = flat_anchors.new_zeros((num_all, 4))
        bbox_weights = flat_anchors.new_zeros((num_all, 4))
        pos_mask = torch.zeros(num_all, dtype=torch.bool, device=flat_anchors.device)
        inside_idx = torch.nonzero(inside, as_tuple=False).view(-1)
        pos_inds = inside_idx[sampling.pos_inds]
        neg_inds = inside_idx[sampling.neg_inds]
        if pos_inds.numel() > 0:
            if self.reg_decoded_bbox:
                pos_targets = sampling.pos_gt_bboxes
            else:
                pos_targets = self.bbox_coder.encode(sampling.pos_priors, sampling.pos_gt_bboxes)
            bbox_targets[pos_inds] = pos_targets.to(bbox_targets.dtype)
            bbox_weights[pos_inds] = 1.0
            labels[pos_inds] = sampling.pos_gt_labels
            pos_mask[pos_inds] = True
            pos_weight = (self.train_cfg or {}).get('pos_weight', -1)
            label_weights[pos_inds] = 1.0 if pos_weight <= 0 else pos_weight
        if neg_inds.numel() > 0:
            label_weights[neg_inds] = 1.0
        return labels, label_weights, bbox_targets, bbox_weights, pos_mask, sampling.avg_factor

    def get_targets(self, anchors: Tensor, featmap_sizes: List[Tuple[int, int]],
                    batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                    batch_gt_instances_ignore: Optional[List] = None
                    ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, float]:
        """Targets of all images, concatenated image after image (see module docstring).

        Args:
            anchors: ``(N, 4)`` all levels' anchors of one image (shared by the batch).
        """
        if not hasattr(self, 'assigner'):
            raise RuntimeError(f'{type(self).__name__}.loss needs train_cfg (assigner, '
                               'sampler); build the detector with train_cfg set')
        num_imgs = len(batch_img_metas)
        if batch_gt_instances_ignore is None:
            batch_gt_instances_ignore = [None] * num_imgs
        num_level_anchors = [h * w * a for (h, w), a in
                             zip(featmap_sizes, self.prior_generator.num_base_priors)]
        targets = []
        for img_id in range(num_imgs):
            valid = torch.cat(self.prior_generator.valid_flags(
                featmap_sizes, _pad_shape(batch_img_metas[img_id]), anchors.device))
            gt = batch_gt_instances[img_id]
            gt = InstanceData(bboxes=gt.bboxes.to(anchors), labels=gt.labels.to(anchors.device))
            targets.append(self._get_targets_single(
                anchors, valid, num_level_anchors, gt, batch_img_metas[img_id],
                _valid_ignore(batch_gt_instances_ignore[img_id])))
        *tensors, avg_factors = zip(*targets)
        return (*[torch.cat(t) for t in tensors], float(sum(avg_factors)))

    # ------------------------------------------------------------------ loss
    def _flatten(self, outs: List[Tensor], channels: int) -> Tensor:
        """Per-level ``(B, A * channels, H, W)`` -> ``(B * sum(H W A), channels)``,
        image-major, in ``grid_priors`` order within each image."""
        num_imgs = outs[0].size(0)
        return torch.cat([o.permute(0, 2, 3, 1).reshape(num_imgs, -1, channels) for o in outs],
                         dim=1).reshape(-1, channels)

    def loss_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                     batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[List] = None) -> Dict[str, Tensor]:
        """``{'loss_cls', 'loss_bbox'}`` over all levels and images."""
        featmap_sizes = [tuple(score.shape[-2:]) for score in cls_scores]
        anchors = torch.cat(self.prior_generator.grid_priors(
            featmap_sizes, dtype=cls_scores[0].dtype, device=cls_scores[0].device))
        labels, label_weights, bbox_targets, bbox_weights, _, avg_factor = self.get_targets(
            anchors, featmap_sizes, batch_gt_instances, batch_img_metas,
            batch_gt_instances_ignore)
        cls_score = self._flatten(cls_scores, self.cls_out_channels)
        bbox_pred = self._flatten(bbox_preds, self.bbox_coder.encode_size)
        loss_cls = self.loss_cls(cls_score, labels, label_weights, avg_factor=avg_factor)
        if self.reg_decoded_bbox:
            bbox_pred = self.bbox_coder.decode(anchors.repeat(len(batch_img_metas), 1), bbox_pred)
        loss_bbox = self.loss_bbox(bbox_pred, bbox_targets, bbox_weights, avg_factor=avg_factor)
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox)
