"""The RoI head of Faster / Mask R-CNN: a box branch and an optional mask branch.

Flow (MMDetection 3.x semantics):
- ``loss``: each image's proposals (``InstanceData.bboxes``) are assigned to its
  gt boxes (crowd / ignored boxes in ``ignored_instances`` passed to the
  assigner) and sampled (gts themselves added as proposals by the default
  sampler); the box branch runs on all sampled RoIs, the mask branch on the
  positives only. Images without gt contribute negatives only.
- ``predict``: the box branch turns proposals into detections; with a mask
  branch, masks are predicted for the detections and boxes and masks are
  rescaled together to ``ori_shape`` when ``rescale``.

Losses: ``loss_cls``, ``acc`` (logged, not optimised), ``loss_bbox`` and
``loss_mask``.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.registry import MODELS, TASK_UTILS
from mmft.structures import OptSampleList, SampleList, bbox2roi
from ..dense_heads import unpack_gt_instances
from ..task_modules import SamplingResult
from .base_roi_head import BaseRoIHead, sample_proposals


@MODELS.register_module()
class StandardRoIHead(BaseRoIHead):
    """One box head and an optional mask head on RoI-pooled FPN features.

    Args:
        bbox_roi_extractor, bbox_head: MODELS configs of the box branch.
        mask_roi_extractor, mask_head: of the mask branch; without a
            ``mask_roi_extractor`` the mask head reads the box RoI features.
        shared_head: not supported (C4 detectors).
        train_cfg: ``assigner``, ``sampler``, ``pos_weight``, ``mask_size``.
        test_cfg: ``score_thr``, ``nms``, ``max_per_img``, ``mask_thr_binary``.
    """

    def __init__(self,
                 bbox_roi_extractor: Optional[Dict] = None,
                 bbox_head: Optional[Dict] = None,
                 mask_roi_extractor: Optional[Dict] = None,
                 mask_head: Optional[Dict] = None,
                 shared_head: Optional[Dict] = None,
                 train_cfg: Optional[Dict] = None,
                 test_cfg: Optional[Dict] = None,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None) -> None:
        super().__init__(init_cfg)
        if shared_head is not None:
            raise NotImplementedError('StandardRoIHead shared_head (C4 detectors) is not '
                                      'supported by mmft; use an FPN config')
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        if bbox_head is not None:
            if bbox_roi_extractor is None:
                raise ValueError('StandardRoIHead bbox_head needs a bbox_roi_extractor')
            self.bbox_roi_extractor = MODELS.build(bbox_roi_extractor)
            self.bbox_head = MODELS.build(bbox_head)
        if mask_head is not None:
            self.share_roi_extractor = mask_roi_extractor is None
            if self.share_roi_extractor and bbox_head is None:
                raise ValueError('StandardRoIHead mask_head needs a mask_roi_extractor '
                                 '(or a box branch whose extractor it shares)')
            self.mask_roi_extractor = self.bbox_roi_extractor if self.share_roi_extractor \
                else MODELS.build(mask_roi_extractor)
            self.mask_head = MODELS.build(mask_head)
        self.bbox_assigner = self.bbox_sampler = None
        if train_cfg:
            self.bbox_assigner = TASK_UTILS.build(train_cfg['assigner'])
            self.bbox_sampler = TASK_UTILS.build(train_cfg['sampler'],
                                                 default_args=dict(context=self))

    # ------------------------------------------------------------------ forward
    def _bbox_forward(self, x: Sequence[Tensor], rois: Tensor) -> Dict[str, Tensor]:
        bbox_feats = self.bbox_roi_extractor(x, rois)
        cls_score, bbox_pred = self.bbox_head(bbox_feats)
        return dict(cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=bbox_feats)

    def _mask_forward(self, x: Sequence[Tensor], rois: Optional[Tensor] = None,
                      pos_inds: Optional[Tensor] = None,
                      bbox_feats: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Mask logits of ``rois``, or of the ``pos_inds`` rows of shared ``bbox_feats``."""
        if rois is not None:
            mask_feats = self.mask_roi_extractor(x, rois)
        else:
            mask_feats = bbox_feats[pos_inds]
        return dict(mask_pred=self.mask_head(mask_feats), mask_feats=mask_feats)

    def forward(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: OptSampleList = None) -> Tuple[Tensor, ...]:
        """Raw outputs (``'tensor'`` mode): ``cls_score, bbox_pred[, mask_pred]``.

        As MMDetection, masks are computed for the first 100 RoIs only.
        """
        rois = bbox2roi([res.bboxes for res in rpn_results_list])
        outs = ()
        if self.with_bbox:
            bbox_results = self._bbox_forward(x, rois)
            outs += (bbox_results['cls_score'], bbox_results['bbox_pred'])
        if self.with_mask:
            outs += (self._mask_forward(x, rois[:100])['mask_pred'],)
        return outs

    # ------------------------------------------------------------------ training
    def loss(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Box (and mask) losses of the sampled proposals; see module docstring."""
        self._check_loss_inputs(rpn_results_list, batch_data_samples,
                                self.bbox_assigner is not None)
        batch_gt_instances, batch_gt_instances_ignore, _ = unpack_gt_instances(
            batch_data_samples)
        sampling_results = sample_proposals(
            [res.bboxes for res in rpn_results_list], batch_gt_instances,
            batch_gt_instances_ignore, self.bbox_assigner, self.bbox_sampler)

        losses = dict()
        bbox_feats = None
        if self.with_bbox:
            bbox_results = self.bbox_loss(x, sampling_results)
            losses.update(bbox_results['loss_bbox'])
            bbox_feats = bbox_results['bbox_feats']
        if self.with_mask:
            mask_results = self.mask_loss(x, sampling_results, bbox_feats, batch_gt_instances)
            losses.update(mask_results['loss_mask'])
        return losses

    def bbox_loss(self, x: Sequence[Tensor], sampling_results: List[SamplingResult]) -> dict:
        """Box branch on all sampled RoIs; adds ``loss_bbox`` (a dict of losses)."""
        rois = bbox2roi([res.priors for res in sampling_results])
        bbox_results = self._bbox_forward(x, rois)
        targets = self.bbox_head.loss_and_target(
            bbox_results['cls_score'], bbox_results['bbox_pred'], rois, sampling_results,
            self.train_cfg)
        bbox_results.update(loss_bbox=targets['loss_bbox'])
        return bbox_results

    def mask_loss(self, x: Sequence[Tensor], sampling_results: List[SamplingResult],
                  bbox_feats: Optional[Tensor], batch_gt_instances: List[InstanceData]) -> dict:
        """Mask branch on the positives; adds ``loss_mask`` (a dict of losses)."""
        if not self.share_roi_extractor:
            mask_results = self._mask_forward(
                x, bbox2roi([res.pos_priors for res in sampling_results]))
        else:
            # sampled RoIs are positives first in each image
            pos_inds = torch.cat([
                torch.arange(len(res.priors), device=bbox_feats.device) < len(res.pos_priors)
                for res in sampling_results])
            mask_results = self._mask_forward(x, pos_inds=pos_inds, bbox_feats=bbox_feats)
        targets = self.mask_head.loss_and_target(mask_results['mask_pred'], sampling_results,
                                                 batch_gt_instances, self.train_cfg)
        mask_results.update(loss_mask=targets['loss_mask'])
        return mask_results

    # ------------------------------------------------------------------ inference
    def predict_bbox(self, x: Sequence[Tensor], batch_img_metas: List[dict],
                     rpn_results_list: List[InstanceData], rcnn_test_cfg: Optional[Dict],
                     rescale: bool = False) -> List[InstanceData]:
        """Box branch on the proposals, then per-class NMS per image."""
        proposals = [res.bboxes for res in rpn_results_list]
        rois = bbox2roi(proposals)
        bbox_results = self._bbox_forward(x, rois)
        num_per_img = [len(p) for p in proposals]
        bbox_preds = bbox_results['bbox_pred']
        bbox_preds = bbox_preds.split(num_per_img) if bbox_preds is not None \
            else (None,) * len(proposals)
        return self.bbox_head.predict_by_feat(
            rois.split(num_per_img), bbox_results['cls_score'].split(num_per_img), bbox_preds,
            batch_img_metas, rcnn_test_cfg=rcnn_test_cfg, rescale=rescale)

    def predict_mask(self, x: Sequence[Tensor], batch_img_metas: List[dict],
                     results_list: List[InstanceData],
                     rescale: bool = False) -> List[InstanceData]:
        """Masks of the detections (boxes in ``img_shape`` pixels), pasted into the image."""
        if 'mask_thr_binary' not in self.test_cfg:
            raise KeyError('StandardRoIHead with a mask_head needs test_cfg.mask_thr_binary, '
                           'e.g. 0.5')
        mask_rois = bbox2roi([res.bboxes for res in results_list])
        mask_preds = self._mask_forward(x, mask_rois)['mask_pred']
        mask_preds = mask_preds.split([len(res) for res in results_list])
        return self.mask_head.predict_by_feat(mask_preds, results_list, batch_img_metas,
                                              self.test_cfg, rescale=rescale)
