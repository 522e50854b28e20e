"""Box heads of two-stage detectors: RoI features -> class scores and box deltas.

Conventions (MMDetection 3.x; checkpoints and mmft/finetune rely on them):
- ``fc_cls`` is ``Linear(in, num_classes + 1)``; the LAST column is background,
  and label ``num_classes`` means background in targets.
- ``fc_reg`` is ``Linear(in, 4 * num_classes)``, class ``c``'s deltas in columns
  ``4c .. 4c + 3`` (``Linear(in, 4)`` with ``reg_class_agnostic``). Deltas are
  encoded by ``bbox_coder`` relative to the RoI.
- ``Shared2FCBBoxHead``'s hidden layers are ``shared_fcs.{0,1}``: flattened
  ``(in_channels * roi_feat_size**2) -> fc_out_channels -> fc_out_channels``.
- Predictions are ``InstanceData(bboxes (K, 4), scores (K,), labels (K,))``
  after per-class NMS, sorted by score, in ``img_shape`` pixels (``ori_shape``
  with ``rescale``).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor
from torch.nn.modules.utils import _pair

from mmft.registry import MODELS, TASK_UTILS
from mmft.structures import clip_boxes
from mmft.structures.class_rows import ClassRows, declare
from ..layers import ConvModule
from ..layers.nms import batched_nms
from ..task_modules import SamplingResult


def multiclass_nms(multi_bboxes: Tensor, multi_scores: Tensor, score_thr: float,
                   nms_cfg: Dict, max_num: int = -1) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-class NMS (MMDetection's ``multiclass_nms``).

    Args:
        multi_bboxes: ``(N, 4 * C)`` class-specific or ``(N, 4)`` shared boxes.
        multi_scores: ``(N, C + 1)`` probabilities, background last (dropped).
        score_thr: keep (box, class) pairs scoring above this.
        nms_cfg: ``dict(type='nms', iou_threshold=...)`` or ``dict(type='soft_nms', ...)``
            (:mod:`mmft.models.layers.nms`).
        max_num: keep at most this many (all when <= 0).

    Returns:
        ``bboxes (K, 4)``, ``scores (K,)`` (Soft-NMS: decayed), ``labels (K,)``, sorted by
        score.
    """
    num_boxes, num_classes = multi_scores.size(0), multi_scores.size(1) - 1
    if multi_bboxes.size(1) > 4:
        bboxes = multi_bboxes.view(num_boxes, -1, 4)
    else:
        bboxes = multi_bboxes[:, None].expand(num_boxes, num_classes, 4)
    scores = multi_scores[:, :-1]
    labels = torch.arange(num_classes, device=scores.device).expand_as(scores)
    valid = scores > score_thr
    bboxes, scores, labels = bboxes[valid], scores[valid], labels[valid]
    dets, keep = batched_nms(bboxes, scores, labels, nms_cfg)
    if max_num > 0:
        dets, keep = dets[:max_num], keep[:max_num]
    return dets[:, :4], dets[:, 4], labels[keep]


def accuracy(pred: Tensor, target: Tensor) -> Tensor:
    """Top-1 accuracy in percent (0 for no rows)."""
    if pred.size(0) == 0:
        return pred.new_zeros(())
    return (pred.argmax(dim=1) == target).float().mean() * 100


def empty_detections(device: Union[str, torch.device]) -> InstanceData:
    """No detections: ``bboxes (0, 4)``, ``scores (0,)``, ``labels (0,)``."""
    return InstanceData(bboxes=torch.zeros((0, 4), device=device),
                        scores=torch.zeros((0,), device=device),
                        labels=torch.zeros((0,), dtype=torch.long, device=device))


@MODELS.register_module()
class BBoxHead(BaseModule):
    """Two linear predictors on (optionally average-pooled) flattened RoI features.

    Args:
        with_avg_pool: average-pool the RoI features first.
        with_cls, with_reg: build ``fc_cls`` / ``fc_reg``.
        roi_feat_size: RoI feature side (or ``(h, w)``).
        in_channels: RoI feature channels.
        num_classes: foreground classes (background not counted).
        bbox_coder: TASK_UTILS config of the delta coder.
        reg_class_agnostic: one box per RoI instead of one per class.
        reg_decoded_bbox: regress decoded boxes (for IoU-type losses).
        reg_predictor_cfg, cls_predictor_cfg: ``dict(type='Linear')``.
        loss_cls, loss_bbox: MODELS configs.
    """

    def __init__(self,
                 with_avg_pool: bool = False,
                 with_cls: bool = True,
                 with_reg: bool = True,
                 roi_feat_size: Union[int, Tuple[int, int]] = 7,
                 in_channels: int = 256,
                 num_classes: int = 80,
                 bbox_coder: Dict = dict(type='DeltaXYWHBBoxCoder', clip_border=True,
                                         target_means=[0., 0., 0., 0.],
                                         target_stds=[0.1, 0.1, 0.2, 0.2]),
                 predict_box_type: str = 'hbox',
                 reg_class_agnostic: bool = False,
                 reg_decoded_bbox: bool = False,
                 reg_predictor_cfg: Dict = dict(type='Linear'),
                 cls_predictor_cfg: Dict = dict(type='Linear'),
                 loss_cls: Dict = dict(type='CrossEntropyLoss', use_sigmoid=False,
                                       loss_weight=1.0),
                 loss_bbox: Dict = dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0),
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None) -> None:
        super().__init__(init_cfg)
        if not (with_cls or with_reg):
            raise ValueError(f'{type(self).__name__} needs with_cls or with_reg')
        for name, cfg in (('reg_predictor_cfg', reg_predictor_cfg),
                          ('cls_predictor_cfg', cls_predictor_cfg)):
            if cfg.get('type', 'Linear') != 'Linear':
                raise ValueError(f"{type(self).__name__} {name} must be dict(type='Linear'), "
                                 f'got {dict(cfg)!r}')
        if predict_box_type != 'hbox':
            raise ValueError(f"{type(self).__name__} predicts horizontal boxes only; "
                             f"predict_box_type must be 'hbox', got {predict_box_type!r}")
        self.with_avg_pool = with_avg_pool
        self.with_cls = with_cls
        self.with_reg = with_reg
        self.roi_feat_size = _pair(roi_feat_size)
        self.roi_feat_area = self.roi_feat_size[0] * self.roi_feat_size[1]
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.predict_box_type = predict_box_type
        self.reg_class_agnostic = reg_class_agnostic
        self.reg_decoded_bbox = reg_decoded_bbox
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)

        in_features = in_channels
        if with_avg_pool:
            self.avg_pool = nn.AvgPool2d(self.roi_feat_size)
        else:
            in_features *= self.roi_feat_area
        self._init_predictors(in_features, in_features)
        if init_cfg is None:
            self.init_cfg = []
            if with_cls:
                self.init_cfg.append(dict(type='Normal', std=0.01, override=dict(name='fc_cls')))
            if with_reg:
                self.init_cfg.append(dict(type='Normal', std=0.001,
                                          override=dict(name='fc_reg')))

    def _init_predictors(self, cls_in: int, reg_in: int) -> None:
        if self.with_cls:
            self.fc_cls = nn.Linear(cls_in, self.num_classes + 1)
        if self.with_reg:
            box_dim = self.bbox_coder.encode_size
            self.fc_reg = nn.Linear(reg_in, box_dim if self.reg_class_agnostic
                                    else box_dim * self.num_classes)

    def class_rows(self) -> Dict[str, ClassRows]:
        """``fc_cls``: classes then background (softmax); ``fc_reg``: 4 rows a class."""
        rows: Dict[str, ClassRows] = {}
        if self.with_cls:
            rows.update(declare('fc_cls', ClassRows(self.num_classes, background='last',
                                                    activation='softmax')))
        if self.with_reg and not self.reg_class_agnostic:
            rows.update(declare('fc_reg', ClassRows(self.num_classes,
                                                    per_class=self.bbox_coder.encode_size)))
        return rows

    def forward(self, x: Tensor) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """RoI features ``(K, C, h, w)`` -> scores ``(K, num_classes + 1)``, deltas ``(K, 4n)``."""
        if self.with_avg_pool:
            x = self.avg_pool(x)
        x = x.flatten(1)
        return (self.fc_cls(x) if self.with_cls else None,
                self.fc_reg(x) if self.with_reg else None)

    # ------------------------------------------------------------------ training
    def _get_targets_single(self, sampling: SamplingResult, cfg: Dict) -> Tuple[Tensor, ...]:
        pos_priors, neg_priors = sampling.pos_priors, sampling.neg_priors
        num_pos, num_neg = pos_priors.size(0), neg_priors.size(0)
        num = num_pos + num_neg
        labels = pos_priors.new_full((num,), self.num_classes, dtype=torch.long)
        label_weights = pos_priors.new_zeros(num)
        box_dim = self.bbox_coder.encode_size
        bbox_targets = pos_priors.new_zeros(num, box_dim)
        bbox_weights = pos_priors.new_zeros(num, box_dim)
        if num_pos > 0:  # sampled priors are ordered positives first
            labels[:num_pos] = sampling.pos_gt_labels
            pos_weight = cfg.get('pos_weight', -1) if cfg is not None else -1
            label_weights[:num_pos] = 1.0 if pos_weight <= 0 else pos_weight
            bbox_targets[:num_pos] = sampling.pos_gt_bboxes if self.reg_decoded_bbox else \
                self.bbox_coder.encode(pos_priors, sampling.pos_gt_bboxes)
            bbox_weights[:num_pos] = 1
        if num_neg > 0:
            label_weights[num_pos:] = 1.0
        return labels, label_weights, bbox_targets, bbox_weights

    def get_targets(self, sampling_results: List[SamplingResult], rcnn_train_cfg: Dict,
                    concat: bool = True) -> Tuple[Union[Tensor, List[Tensor]], ...]:
        """Labels, label weights, box targets and box weights of the sampled RoIs.

        Returns per image lists, or tensors over the batch with ``concat``:
        ``(R,)``, ``(R,)``, ``(R, 4)``, ``(R, 4)``; background label ``num_classes``.
        """
        targets = [self._get_targets_single(res, rcnn_train_cfg) for res in sampling_results]
        labels, label_weights, bbox_targets, bbox_weights = (list(t) for t in zip(*targets))
        if concat:
            return (torch.cat(labels), torch.cat(label_weights), torch.cat(bbox_targets),
                    torch.cat(bbox_weights))
        return labels, label_weights, bbox_targets, bbox_weights

    def loss_and_target(self, cls_score: Tensor, bbox_pred: Tensor, rois: Tensor,
                        sampling_results: List[SamplingResult], rcnn_train_cfg: Dict,
                        concat: bool = True, reduction_override: Optional[str] = None) -> dict:
        """``dict(loss_bbox={'loss_cls', 'acc', 'loss_bbox'}, bbox_targets=(...))``."""
        targets = self.get_targets(sampling_results, rcnn_train_cfg, concat=concat)
        losses = self.loss(cls_score, bbox_pred, rois, *targets,
                           reduction_override=reduction_override)
        return dict(loss_bbox=losses, bbox_targets=targets)

    def loss(self, cls_score: Optional[Tensor], bbox_pred: Optional[Tensor], rois: Tensor,
             labels: Tensor, label_weights: Tensor, bbox_targets: Tensor, bbox_weights: Tensor,
             reduction_override: Optional[str] = None) -> Dict[str, Tensor]:
        """Classification over all sampled RoIs, regression over the positives.

        As MMDetection, the box loss is averaged over all sampled RoIs, not the
        positives. Without positives (or RoIs) the losses are zeros that keep
        the graph.
        """
        losses = dict()
        if cls_score is not None:
            avg_factor = max(float((label_weights > 0).sum()), 1.)
            if cls_score.numel() > 0:
                losses['loss_cls'] = self.loss_cls(cls_score, labels, label_weights,
                                                   avg_factor=avg_factor,
                                                   reduction_override=reduction_override)
            else:
                losses['loss_cls'] = cls_score.sum() * 0
            losses['acc'] = accuracy(cls_score.detach(), labels)
        if bbox_pred is not None:
            pos = (labels >= 0) & (labels < self.num_classes)
            if pos.any():
                if self.reg_decoded_bbox:
                    bbox_pred = self.bbox_coder.decode(rois[:, 1:], bbox_pred)
                box_dim = bbox_targets.size(-1)
                if self.reg_class_agnostic:
                    pos_pred = bbox_pred.view(bbox_pred.size(0), box_dim)[pos]
                else:
                    pos_pred = bbox_pred.view(bbox_pred.size(0), -1, box_dim)[pos, labels[pos]]
                losses['loss_bbox'] = self.loss_bbox(pos_pred, bbox_targets[pos],
                                                     bbox_weights[pos],
                                                     avg_factor=bbox_targets.size(0),
                                                     reduction_override=reduction_override)
            else:
                losses['loss_bbox'] = bbox_pred.sum() * 0
        return losses

    # ------------------------------------------------------------------ inference
    def predict_by_feat(self, rois: Sequence[Tensor], cls_scores: Sequence[Tensor],
                        bbox_preds: Sequence[Optional[Tensor]], batch_img_metas: List[dict],
                        rcnn_test_cfg: Optional[Dict] = None,
                        rescale: bool = False) -> List[InstanceData]:
        """Per image: decode, clip to ``img_shape``, optionally rescale, per-class NMS.

        Args:
            rois, cls_scores, bbox_preds: per image ``(R_i, 5)``, ``(R_i, C + 1)``,
                ``(R_i, 4 * C)``.
            batch_img_metas: ``img_shape`` and, with ``rescale``, ``scale_factor``.
            rcnn_test_cfg: ``score_thr``, ``nms``, ``max_per_img``; None returns
                every RoI's decoded boxes ``(R_i, 4 * C)`` and scores ``(R_i, C + 1)``.
            rescale: return boxes in ``ori_shape`` pixels.
        """
        return [self._predict_by_feat_single(roi, score, pred, meta, rescale, rcnn_test_cfg)
                for roi, score, pred, meta in zip(rois, cls_scores, bbox_preds, batch_img_metas)]

    def _predict_by_feat_single(self, roi: Tensor, cls_score: Tensor,
                                bbox_pred: Optional[Tensor], img_meta: dict,
                                rescale: bool = False,
                                rcnn_test_cfg: Optional[Dict] = None) -> InstanceData:
        if roi.size(0) == 0 and rcnn_test_cfg is not None:
            return empty_detections(roi.device)
        scores = F.softmax(cls_score, dim=-1)
        img_shape = img_meta['img_shape'][:2]
        if bbox_pred is not None:
            bboxes = self.bbox_coder.decode(roi[:, 1:], bbox_pred, max_shape=img_shape)
        else:
            bboxes = clip_boxes(roi[:, 1:], img_shape)
        if rescale and bboxes.size(0) > 0:
            if img_meta.get('scale_factor') is None:
                raise KeyError(f"{type(self).__name__}.predict(rescale=True) needs "
                               "'scale_factor' in metainfo")
            scale = bboxes.new_tensor(img_meta['scale_factor']).repeat(2)
            bboxes = (bboxes.view(bboxes.size(0), -1, 4) / scale).view(bboxes.size(0), -1)
        if rcnn_test_cfg is None:
            return InstanceData(bboxes=bboxes, scores=scores)
        bboxes, scores, labels = multiclass_nms(bboxes, scores, rcnn_test_cfg['score_thr'],
                                                rcnn_test_cfg['nms'],
                                                rcnn_test_cfg['max_per_img'])
        return InstanceData(bboxes=bboxes, scores=scores, labels=labels)

    # ------------------------------------------------------------------ cascade refinement
    def regress_by_class(self, priors: Tensor, label: Tensor, bbox_pred: Tensor,
                         img_meta: dict) -> Tensor:
        """Boxes ``(N, 4)``: ``priors`` moved by their deltas, clipped to ``img_shape``.

        Class-specific heads use the deltas of ``label`` (``(N,)``); class-agnostic
        heads have one set of deltas per prior and ignore ``label``.
        """
        box_dim = self.bbox_coder.encode_size
        if not self.reg_class_agnostic:
            columns = label[:, None] * box_dim + torch.arange(box_dim, device=label.device)
            bbox_pred = bbox_pred.gather(1, columns)
        if bbox_pred.size(1) != box_dim:
            raise ValueError(f'{type(self).__name__}.regress_by_class got deltas of width '
                             f'{bbox_pred.size(1)}, expected {box_dim} per prior')
        max_shape = img_meta.get('img_shape')
        return self.bbox_coder.decode(priors, bbox_pred,
                                      max_shape=max_shape[:2] if max_shape else None)

    def refine_bboxes(self, sampling_results: List[SamplingResult], bbox_results: dict,
                      batch_img_metas: List[dict]) -> Optional[List[InstanceData]]:
        """The next cascade stage's proposals: this stage's sampled RoIs, regressed.

        A positive RoI is regressed with its gt's label, a negative with the
        class it scores highest (the background column left out); RoIs that
        are gt boxes themselves (``pos_is_gt``) are dropped, since the next
        stage's sampler adds the gts again.

        Args:
            sampling_results: this stage's, per image.
            bbox_results: ``rois (R, 5)``, ``cls_score (R, C + 1)``, ``bbox_pred`` and
                ``bbox_targets`` (whose first entry holds the labels, ``(R,)``).
            batch_img_metas: ``img_shape`` per image.

        Returns:
            Per image ``InstanceData(bboxes=...)``, or None when there are no RoIs.
        """
        cls_scores = bbox_results['cls_score']
        if cls_scores.numel() == 0:
            return None
        labels = bbox_results['bbox_targets'][0]
        rois, bbox_preds = bbox_results['rois'], bbox_results['bbox_pred']
        labels = torch.where(labels == self.num_classes,
                             cls_scores[:, :self.num_classes].argmax(dim=1), labels)
        refined = []
        for img_id, (res, meta) in enumerate(zip(sampling_results, batch_img_metas)):
            inds = torch.nonzero(rois[:, 0] == img_id, as_tuple=False).squeeze(1)
            boxes = self.regress_by_class(rois[inds, 1:], labels[inds], bbox_preds[inds], meta)
            keep = torch.ones(len(inds), dtype=torch.bool, device=boxes.device)
            keep[:len(res.pos_is_gt)] = res.pos_is_gt == 0  # positives come first
            refined.append(InstanceData(bboxes=boxes[keep]))
        return refined


@MODELS.register_module()
class ConvFCBBoxHead(BBoxHead):
    """Shared convs/fcs, then separate cls and reg convs/fcs, then the predictors.

    Args:
        num_shared_convs, num_shared_fcs: layers of the shared trunk.
        num_cls_convs, num_cls_fcs, num_reg_convs, num_reg_fcs: per-branch layers.
        conv_out_channels: channels of every 3x3 conv (``ConvModule``).
        fc_out_channels: width of every fc (followed by ReLU).
        conv_cfg, norm_cfg: of the convs.
        **kwargs: :class:`BBoxHead` arguments.
    """

    def __init__(self,
                 num_shared_convs: int = 0,
                 num_shared_fcs: int = 0,
                 num_cls_convs: int = 0,
                 num_cls_fcs: int = 0,
                 num_reg_convs: int = 0,
                 num_reg_fcs: int = 0,
                 conv_out_channels: int = 256,
                 fc_out_channels: int = 1024,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Optional[Dict] = None,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None,
                 **kwargs) -> None:
        super().__init__(init_cfg=init_cfg, **kwargs)
        if num_shared_convs + num_shared_fcs + num_cls_convs + num_cls_fcs + \
                num_reg_convs + num_reg_fcs <= 0:
            raise ValueError(f'{type(self).__name__} needs at least one conv or fc; use '
                             'BBoxHead for bare predictors')
        if (num_cls_convs or num_reg_convs) and num_shared_fcs:
            raise ValueError(f'{type(self).__name__}: branch convs cannot follow shared fcs '
                             f'(num_shared_fcs={num_shared_fcs}, num_cls_convs={num_cls_convs}, '
                             f'num_reg_convs={num_reg_convs})')
        self.num_shared_convs, self.num_shared_fcs = num_shared_convs, num_shared_fcs
        self.num_cls_convs, self.num_cls_fcs = num_cls_convs, num_cls_fcs
        self.num_reg_convs, self.num_reg_fcs = num_reg_convs, num_reg_fcs
        self.conv_out_channels = conv_out_channels
        self.fc_out_channels = fc_out_channels
        self.conv_cfg, self.norm_cfg = conv_cfg, norm_cfg

        self.shared_convs, self.shared_fcs, last_dim = self._add_branch(
            num_shared_convs, num_shared_fcs, self.in_channels, is_shared=True)
        self.cls_convs, self.cls_fcs, cls_last_dim = self._add_branch(
            num_cls_convs, num_cls_fcs, last_dim)
        self.reg_convs, self.reg_fcs, reg_last_dim = self._add_branch(
            num_reg_convs, num_reg_fcs, last_dim)
        if num_shared_fcs == 0 and not self.with_avg_pool:
            # a branch without fcs ends in a flattened feature map
            cls_last_dim *= self.roi_feat_area if num_cls_fcs == 0 else 1
            reg_last_dim *= self.roi_feat_area if num_reg_fcs == 0 else 1
        self.relu = nn.ReLU(inplace=True)
        self._init_predictors(cls_last_dim, reg_last_dim)  # replaces BBoxHead's
        if init_cfg is None:
            self.init_cfg.append(dict(type='Xavier', distribution='uniform', override=[
                dict(name='shared_fcs'), dict(name='cls_fcs'), dict(name='reg_fcs')]))

    def _add_branch(self, num_convs: int, num_fcs: int, in_channels: int,
                    is_shared: bool = False) -> Tuple[nn.ModuleList, nn.ModuleList, int]:
        """Convs then fcs; returns them and the branch's output width."""
        convs, last_dim = nn.ModuleList(), in_channels
        for i in range(num_convs):
            convs.append(ConvModule(last_dim if i == 0 else self.conv_out_channels,
                                    self.conv_out_channels, 3, padding=1,
                                    conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg))
        if num_convs > 0:
            last_dim = self.conv_out_channels
        fcs = nn.ModuleList()
        if num_fcs > 0:
            if (is_shared or self.num_shared_fcs == 0) and not self.with_avg_pool:
                last_dim *= self.roi_feat_area  # the fc reads a flattened map
            for i in range(num_fcs):
                fcs.append(nn.Linear(last_dim if i == 0 else self.fc_out_channels,
                                     self.fc_out_channels))
            last_dim = self.fc_out_channels
        return convs, fcs, last_dim

    def _run_branch(self, x: Tensor, convs: Sequence[nn.Module],
                    fcs: Sequence[nn.Module]) -> Tensor:
        for conv in convs:
            x = conv(x)
        if x.dim() > 2:
            if self.with_avg_pool:
                x = self.avg_pool(x)
            x = x.flatten(1)
        for fc in fcs:
            x = self.relu(fc(x))
        return x

    def forward(self, x: Tensor) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """The same outputs as :meth:`BBoxHead.forward`, through the shared and branch layers."""
        for conv in self.shared_convs:
            x = conv(x)
        if self.num_shared_fcs > 0:
            x = self._run_branch(x, (), self.shared_fcs)
        cls_score = self.fc_cls(self._run_branch(x, self.cls_convs, self.cls_fcs)) \
            if self.with_cls else None
        bbox_pred = self.fc_reg(self._run_branch(x, self.reg_convs, self.reg_fcs)) \
            if self.with_reg else None
        return cls_score, bbox_pred


@MODELS.register_module()
class Shared2FCBBoxHead(ConvFCBBoxHead):
    """Faster R-CNN's box head: two shared fcs (``shared_fcs.0``, ``shared_fcs.1``)."""

    def __init__(self, fc_out_channels: int = 1024, **kwargs) -> None:
        super().__init__(num_shared_convs=0, num_shared_fcs=2, num_cls_convs=0, num_cls_fcs=0,
                         num_reg_convs=0, num_reg_fcs=0, fc_out_channels=fc_out_channels,
                         **kwargs)


@MODELS.register_module()
class Shared4Conv1FCBBoxHead(ConvFCBBoxHead):
    """Four shared 3x3 convs and one shared fc (MMDetection's GN recipes)."""

    def __init__(self, fc_out_channels: int = 1024, **kwargs) -> None:
        super().__init__(num_shared_convs=4, num_shared_fcs=1, num_cls_convs=0, num_cls_fcs=0,
                         num_reg_convs=0, num_reg_fcs=0, fc_out_channels=fc_out_channels,
                         **kwargs)
