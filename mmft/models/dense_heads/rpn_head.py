"""Region Proposal Network head (MMDetection 3.x API, arguments and keys).

Keys: ``rpn_conv.{weight,bias}`` (``rpn_conv.{i}.conv.*`` when num_convs > 1),
``rpn_cls`` with ``A * C`` outputs and ``rpn_reg`` with ``A * 4``, where A is
the number of anchors per location and C is 1 with a sigmoid loss (2 with
softmax, background last).

Per level the head outputs ``(B, A * C, H, W)`` scores and ``(B, A * 4, H, W)``
deltas; after ``permute(0, 2, 3, 1)`` they line up with
``AnchorGenerator.grid_priors`` (location-major, then anchor).

Proposals (``predict``) are ``InstanceData(bboxes (K, 4), scores (K,),
labels (K,) zeros)`` in ``img_shape`` pixels (``ori_shape`` when rescale),
sorted by score, ``K <= max_per_img``.
"""
import copy
from typing import ClassVar, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.registry import MODELS, TASK_UTILS
from mmft.structures import SampleList, get_box_wh
from ..layers import ConvModule
from ..layers.nms import batched_nms
from ..task_modules import anchor_inside_flags


def _cfg_get(cfg, key: str, default=None):
    return cfg.get(key, default) if cfg is not None else default


def unpack_gt_instances(batch_data_samples: SampleList) -> Tuple[list, list, list]:
    """Split samples into ``(gt_instances list, ignored_instances-or-None list, metainfo list)``."""
    batch_gt_instances, batch_gt_instances_ignore, batch_img_metas = [], [], []
    for data_sample in batch_data_samples:
        batch_img_metas.append(data_sample.metainfo)
        batch_gt_instances.append(data_sample.get('gt_instances', InstanceData()))
        batch_gt_instances_ignore.append(data_sample.get('ignored_instances', None))
    return batch_gt_instances, batch_gt_instances_ignore, batch_img_metas


@MODELS.register_module()
class RPNHead(BaseModule):
    """RPN head: a shared 3x3 conv, then objectness and box-delta 1x1 convs.

    Args:
        in_channels: channels of each input level.
        num_classes: 1 (objectness).
        feat_channels: channels of the shared conv.
        num_convs: shared convs (``ConvModule`` s when > 1).
        anchor_generator, bbox_coder: TASK_UTILS configs.
        reg_decoded_bbox: regress decoded boxes (for IoU-type losses).
        loss_cls, loss_bbox: MODELS configs.
        train_cfg: ``assigner``, ``sampler`` (optional; PseudoSampler without),
            ``allowed_border``, ``pos_weight``, ``debug``.
        test_cfg: ``nms_pre``, ``max_per_img``, ``nms=dict(type='nms',
            iou_threshold=...)``, ``min_bbox_size``.

    Objectness is class-agnostic: ``num_classes`` never follows the dataset
    (``num_classes_from_dataset``) and no tensor has class rows.
    """

    #: read by ``num_classes='auto'`` / the head-vs-dataset check: RPN's 1 is not a class count
    num_classes_from_dataset: ClassVar[bool] = False

    def __init__(self,
                 in_channels: int,
                 num_classes: int = 1,
                 feat_channels: int = 256,
                 num_convs: int = 1,
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
                 init_cfg: Optional[Dict] = dict(type='Normal', layer='Conv2d', std=0.01)) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_classes != 1:
            raise ValueError(f'RPNHead num_classes must be 1 (objectness), got {num_classes}')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.feat_channels = feat_channels
        self.num_convs = num_convs
        self.use_sigmoid_cls = loss_cls.get('use_sigmoid', False)
        self.cls_out_channels = num_classes if self.use_sigmoid_cls else num_classes + 1
        self.reg_decoded_bbox = reg_decoded_bbox

        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.prior_generator = TASK_UTILS.build(anchor_generator)
        self.num_base_priors = self.prior_generator.num_base_priors[0]
        if len(set(self.prior_generator.num_base_priors)) != 1:
            raise ValueError('RPNHead shares its convs over levels, so every level needs the same '
                             f'number of anchors; got {self.prior_generator.num_base_priors}')

        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        if train_cfg:
            self.assigner = TASK_UTILS.build(train_cfg['assigner'])
            if train_cfg.get('sampler', None) is not None:
                self.sampler = TASK_UTILS.build(train_cfg['sampler'],
                                                default_args=dict(context=self))
            else:
                self.sampler = TASK_UTILS.build(dict(type='PseudoSampler'))
        self._init_layers()

    @property
    def anchor_generator(self):
        return self.prior_generator

    def _init_layers(self) -> None:
        if self.num_convs > 1:
            self.rpn_conv = nn.Sequential(*[
                ConvModule(self.in_channels if i == 0 else self.feat_channels,
                           self.feat_channels, 3, padding=1, inplace=False)
                for i in range(self.num_convs)])
        else:
            self.rpn_conv = nn.Conv2d(self.in_channels, self.feat_channels, 3, padding=1)
        self.rpn_cls = nn.Conv2d(self.feat_channels,
                                 self.num_base_priors * self.cls_out_channels, 1)
        self.rpn_reg = nn.Conv2d(self.feat_channels,
                                 self.num_base_priors * self.bbox_coder.encode_size, 1)

    # ------------------------------------------------------------------ forward
    def forward_single(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        x = F.relu(self.rpn_conv(x))
        return self.rpn_cls(x), self.rpn_reg(x)

    def forward(self, x: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Per level ``(B, A * C, H, W)`` scores and ``(B, A * 4, H, W)`` deltas."""
        if len(x) != self.prior_generator.num_levels:
            raise ValueError(f'RPNHead got {len(x)} feature levels but its anchor generator has '
                             f'{self.prior_generator.num_levels} strides')
        outs = [self.forward_single(feat) for feat in x]
        return [o[0] for o in outs], [o[1] for o in outs]

    # ------------------------------------------------------------------ training
    def loss(self, x: Sequence[Tensor], batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """``{'loss_rpn_cls': scalar, 'loss_rpn_bbox': scalar}`` (summed over levels)."""
        batch_gt_instances, batch_gt_instances_ignore, batch_img_metas = \
            unpack_gt_instances(batch_data_samples)
        outs = self(x)
        return self.loss_by_feat(*outs, batch_gt_instances, batch_img_metas,
                                 batch_gt_instances_ignore)

    def loss_and_predict(self, x: Sequence[Tensor], batch_data_samples: SampleList,
                         proposal_cfg: Optional[Dict] = None
                         ) -> Tuple[Dict[str, Tensor], List[InstanceData]]:
        """Losses plus proposals (from detached outputs) for the RoI head."""
        batch_gt_instances, batch_gt_instances_ignore, batch_img_metas = \
            unpack_gt_instances(batch_data_samples)
        cls_scores, bbox_preds = self(x)
        losses = self.loss_by_feat(cls_scores, bbox_preds, batch_gt_instances, batch_img_metas,
                                   batch_gt_instances_ignore)
        predictions = self.predict_by_feat(cls_scores, bbox_preds,
                                           batch_img_metas=batch_img_metas, cfg=proposal_cfg)
        return losses, predictions

    def get_anchors(self, featmap_sizes: List[Tuple[int, int]], batch_img_metas: List[dict],
                    device='cpu') -> Tuple[List[List[Tensor]], List[List[Tensor]]]:
        """Per image, per level: anchors and valid flags (False in the batch padding)."""
        multi_level_anchors = self.prior_generator.grid_priors(featmap_sizes, device=device)
        anchor_list = [multi_level_anchors for _ in batch_img_metas]
        valid_flag_list = [
            self.prior_generator.valid_flags(featmap_sizes, _pad_shape(meta), device)
            for meta in batch_img_metas]
        return anchor_list, valid_flag_list

    def _get_targets_single(self, flat_anchors: Tensor, valid_flags: Tensor,
                            gt_instances: InstanceData, img_meta: dict,
                            gt_instances_ignore: Optional[InstanceData]) -> Tuple[Tensor, ...]:
        """Targets of one image over all anchors: labels, label weights, box targets,
        box weights (zero weight for anchors outside / unsampled) and avg_factor."""
        allowed_border = _cfg_get(self.train_cfg, 'allowed_border', -1)
        inside = anchor_inside_flags(flat_anchors, valid_flags, img_meta['img_shape'][:2],
                                     allowed_border)
        if not inside.any():
            raise ValueError(f'RPNHead: no anchor lies inside the image {img_meta["img_shape"]} '
                             f'with allowed_border={allowed_border}; use allowed_border=-1 or '
                             'smaller anchors')
        anchors = flat_anchors[inside]
        pred_instances = InstanceData(priors=anchors)
        assign_result = self.assigner.assign(pred_instances, gt_instances, gt_instances_ignore)
        sampling = self.sampler.sample(assign_result, pred_instances, gt_instances)

        num_all = flat_anchors.size(0)
        labels = flat_anchors.new_full((num_all,), self.num_classes, dtype=torch.long)
        label_weights = flat_anchors.new_zeros(num_all)
        bbox_targets = flat_anchors.new_zeros((num_all, 4))
        bbox_weights = flat_anchors.new_zeros((num_all, 4))
        # sampler indices count inside anchors only; map them back to all anchors
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
            pos_weight = _cfg_get(self.train_cfg, 'pos_weight', -1)
            label_weights[pos_inds] = 1.0 if pos_weight <= 0 else pos_weight
        if neg_inds.numel() > 0:
            label_weights[neg_inds] = 1.0
        return labels, label_weights, bbox_targets, bbox_weights, sampling.avg_factor

    def loss_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                     batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[List[Optional[InstanceData]]] = None
                     ) -> Dict[str, Tensor]:
        """Sampled objectness and box losses over all levels and images."""
        if not hasattr(self, 'assigner'):
            raise RuntimeError('RPNHead.loss needs train_cfg (assigner, sampler); build the head '
                               'with train_cfg set')
        num_imgs = len(batch_img_metas)
        if batch_gt_instances_ignore is None:
            batch_gt_instances_ignore = [None] * num_imgs
        featmap_sizes = [tuple(score.shape[-2:]) for score in cls_scores]
        device = cls_scores[0].device
        anchors = torch.cat(self.prior_generator.grid_priors(
            featmap_sizes, dtype=cls_scores[0].dtype, device=device))

        targets = []
        for img_id in range(num_imgs):
            valid = torch.cat(self.prior_generator.valid_flags(
                featmap_sizes, _pad_shape(batch_img_metas[img_id]), device))
            # the RPN is class-agnostic: every gt is "object" (label 0)
            gt = batch_gt_instances[img_id]
            gt_bboxes = gt.bboxes.to(anchors) if gt is not None and 'bboxes' in gt \
                else anchors.new_zeros((0, 4))
            gt_rpn = InstanceData(bboxes=gt_bboxes,
                                  labels=gt_bboxes.new_zeros(len(gt_bboxes), dtype=torch.long))
            targets.append(self._get_targets_single(
                anchors, valid, gt_rpn, batch_img_metas[img_id],
                _valid_ignore(batch_gt_instances_ignore[img_id])))
        labels, label_weights, bbox_targets, bbox_weights, avg_factors = zip(*targets)
        avg_factor = float(sum(avg_factors))

        cls_score = torch.cat([s.permute(0, 2, 3, 1).reshape(num_imgs, -1, self.cls_out_channels)
                               for s in cls_scores], dim=1).reshape(-1, self.cls_out_channels)
        bbox_pred = torch.cat([p.permute(0, 2, 3, 1).reshape(num_imgs, -1, 4)
                               for p in bbox_preds], dim=1).reshape(-1, 4)
        labels = torch.cat(labels)
        label_weights = torch.cat(label_weights)
        bbox_targets = torch.cat(bbox_targets)
        bbox_weights = torch.cat(bbox_weights)

        loss_cls = self.loss_cls(cls_score, labels, label_weights, avg_factor=avg_factor)
        if self.reg_decoded_bbox:
            bbox_pred = self.bbox_coder.decode(anchors.repeat(num_imgs, 1), bbox_pred)
        loss_bbox = self.loss_bbox(bbox_pred, bbox_targets, bbox_weights, avg_factor=avg_factor)
        return dict(loss_rpn_cls=loss_cls, loss_rpn_bbox=loss_bbox)

    # ------------------------------------------------------------------ inference
    def predict(self, x: Sequence[Tensor], batch_data_samples: SampleList,
                rescale: bool = False) -> List[InstanceData]:
        """Proposals per image (see module docstring)."""
        batch_img_metas = [data_sample.metainfo for data_sample in batch_data_samples]
        cls_scores, bbox_preds = self(x)
        return self.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=batch_img_metas,
                                    rescale=rescale)

    def predict_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                        score_factors: Optional[List[Tensor]] = None,
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[Dict] = None, rescale: bool = False,
                        with_nms: bool = True) -> List[InstanceData]:
        """Top-scoring decoded anchors per level, small boxes dropped, NMS, ``max_per_img``."""
        if not with_nms:
            raise ValueError('RPNHead proposals always use NMS; call with with_nms=True')
        cfg = self.test_cfg if cfg is None else cfg
        if cfg is None:
            raise ValueError('RPNHead.predict needs test_cfg (or proposal_cfg) with nms_pre, '
                             'max_per_img and nms=dict(type="nms", iou_threshold=...)')
        cfg = copy.deepcopy(cfg)
        featmap_sizes = [tuple(score.shape[-2:]) for score in cls_scores]
        mlvl_priors = self.prior_generator.grid_priors(
            featmap_sizes, dtype=cls_scores[0].dtype, device=cls_scores[0].device)
        results = []
        for img_id, img_meta in enumerate(batch_img_metas):
            results.append(self._predict_by_feat_single(
                [s[img_id].detach() for s in cls_scores],
                [p[img_id].detach() for p in bbox_preds],
                mlvl_priors, img_meta, cfg, rescale))
        return results

    def _predict_by_feat_single(self, cls_score_list: List[Tensor],
                                bbox_pred_list: List[Tensor], mlvl_priors: List[Tensor],
                                img_meta: dict, cfg, rescale: bool = False) -> InstanceData:
        nms_pre = _cfg_get(cfg, 'nms_pre', -1)
        mlvl_bbox_preds, mlvl_valid_priors, mlvl_scores, level_ids = [], [], [], []
        for level_idx, (cls_score, bbox_pred, priors) in enumerate(
                zip(cls_score_list, bbox_pred_list, mlvl_priors)):
            bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, 4)
            cls_score = cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels)
            if self.use_sigmoid_cls:
                scores = cls_score.sigmoid()[:, 0]
            else:
                # background is the last channel
                scores = cls_score.softmax(-1)[:, 0]
            if 0 < nms_pre < scores.shape[0]:
                scores, topk_inds = scores.topk(nms_pre)
                bbox_pred = bbox_pred[topk_inds]
                priors = priors[topk_inds]
            mlvl_bbox_preds.append(bbox_pred)
            mlvl_valid_priors.append(priors)
            mlvl_scores.append(scores)
            level_ids.append(scores.new_full((scores.size(0),), level_idx, dtype=torch.long))

        bbox_pred = torch.cat(mlvl_bbox_preds)
        priors = torch.cat(mlvl_valid_priors)
        bboxes = self.bbox_coder.decode(priors, bbox_pred, max_shape=img_meta['img_shape'][:2])
        scores = torch.cat(mlvl_scores)
        level_ids = torch.cat(level_ids)

        if rescale:
            scale_factor = img_meta.get('scale_factor', None)
            if scale_factor is None:
                raise KeyError("RPNHead.predict(rescale=True) needs 'scale_factor' in metainfo")
            bboxes = bboxes / bboxes.new_tensor(scale_factor).repeat(2)

        min_bbox_size = _cfg_get(cfg, 'min_bbox_size', -1)
        if min_bbox_size >= 0:
            w, h = get_box_wh(bboxes)
            keep = (w > min_bbox_size) & (h > min_bbox_size)
            if not keep.all():
                bboxes, scores, level_ids = bboxes[keep], scores[keep], level_ids[keep]

        results = InstanceData()
        if bboxes.numel() > 0:
            dets, _ = batched_nms(bboxes, scores, level_ids, cfg['nms'])
            dets = dets[:cfg['max_per_img']]
            results.bboxes = dets[:, :4]
            results.scores = dets[:, 4]
        else:
            results.bboxes = bboxes.new_zeros((0, 4))
            results.scores = scores.new_zeros((0,))
        results.labels = results.scores.new_zeros(len(results.scores), dtype=torch.long)
        return results


def _pad_shape(img_meta: dict) -> Tuple[int, int]:
    """The image's own padded ``(h, w)`` (anchors beyond it lie in batch padding)."""
    for key in ('pad_shape', 'batch_input_shape', 'img_shape'):
        if key in img_meta:
            return tuple(img_meta[key][:2])
    raise KeyError("RPNHead needs 'pad_shape' or 'img_shape' in each sample's metainfo; "
                   'run the samples through DetDataPreprocessor')


def _valid_ignore(ignored: Optional[InstanceData]) -> Optional[InstanceData]:
    if ignored is None or 'bboxes' not in ignored or len(ignored.bboxes) == 0:
        return None
    return ignored
