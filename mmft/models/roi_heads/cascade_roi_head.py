"""The RoI head of Cascade (Mask) R-CNN: stages of box heads, each refining the last one's boxes.

Flow (MMDetection 3.x semantics, Cai & Vasconcelos 2018):
- ``loss``: stage ``t`` assigns and samples its proposals with its own
  ``train_cfg[t]`` (IoU thresholds 0.5 / 0.6 / 0.7 in the shipped configs),
  computes its box (and mask) losses, each multiplied by
  ``stage_loss_weights[t]`` and logged as ``s{t}.loss_cls`` etc. (``s{t}.acc``
  unweighted), then regresses its sampled RoIs (gt boxes among them dropped,
  gradients stopped) into stage ``t + 1``'s proposals.
- ``predict``: every stage runs on the previous stage's regressed boxes; the
  class logits of all stages are averaged, the boxes are the last stage's
  deltas applied to its input, then per-class NMS. With masks, every stage's
  mask head runs on the final detections and their sigmoid probabilities are
  averaged.

Keys (as MMDetection checkpoints): ``bbox_head.{t}.*`` and, for Cascade Mask
R-CNN, ``mask_head.{t}.*`` for every stage ``t``; the RoI extractors hold no
tensors. Each stage's ``fc_cls`` is class-dependent; ``fc_reg`` is class-
agnostic (4 rows) in the shipped configs; every ``mask_head.{t}.conv_logits``
is class-dependent. The heads declare their own rows (``class_rows()``).
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import ModuleList
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.registry import MODELS, TASK_UTILS
from mmft.structures import OptSampleList, SampleList, bbox2roi
from ..dense_heads import unpack_gt_instances
from ..task_modules import SamplingResult
from .base_roi_head import BaseRoIHead, sample_proposals
from .bbox_heads import empty_detections

ConfigOrList = Optional[Union[Dict, List[Dict]]]


def _per_stage(cfg: ConfigOrList, num_stages: int, name: str) -> List[Dict]:
    """One config per stage: a list as it is, a single dict repeated."""
    if isinstance(cfg, (list, tuple)):
        if len(cfg) != num_stages:
            raise ValueError(f'CascadeRoIHead {name} has {len(cfg)} entries for num_stages='
                             f'{num_stages}; give one per stage or a single dict for all')
        return list(cfg)
    return [copy.deepcopy(cfg) for _ in range(num_stages)]


@MODELS.register_module()
class CascadeRoIHead(BaseRoIHead):
    """Stages of RoI box heads (and mask heads), each trained at a higher IoU.

    Args:
        num_stages: number of stages.
        stage_loss_weights: loss multiplier of each stage.
        bbox_roi_extractor, bbox_head: MODELS config of each stage, or one for all.
        mask_roi_extractor, mask_head: likewise for the mask branch; without a
            ``mask_roi_extractor`` the mask heads read the box extractors.
        shared_head: not supported (C4 detectors).
        train_cfg: a list, per stage: ``assigner``, ``sampler``, ``pos_weight``,
            ``mask_size``.
        test_cfg: ``score_thr``, ``nms``, ``max_per_img``, ``mask_thr_binary``.
    """

    def __init__(self,
                 num_stages: int,
                 stage_loss_weights: Sequence[float],
                 bbox_roi_extractor: ConfigOrList = None,
                 bbox_head: ConfigOrList = None,
                 mask_roi_extractor: ConfigOrList = None,
                 mask_head: ConfigOrList = None,
                 shared_head: Optional[Dict] = None,
                 train_cfg: Optional[List[Dict]] = None,
                 test_cfg: Optional[Dict] = None,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None) -> None:
        super().__init__(init_cfg)
        if shared_head is not None:
            raise NotImplementedError('CascadeRoIHead shared_head (C4 detectors) is not '
                                      'supported; use an FPN config')
        if bbox_roi_extractor is None or bbox_head is None:
            raise ValueError('CascadeRoIHead needs bbox_roi_extractor and bbox_head')
        if len(stage_loss_weights) != num_stages:
            raise ValueError(f'CascadeRoIHead stage_loss_weights {list(stage_loss_weights)} '
                             f'has {len(stage_loss_weights)} entries for num_stages='
                             f'{num_stages}; give one weight per stage')
        self.num_stages = num_stages
        self.stage_loss_weights = list(stage_loss_weights)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

        self.bbox_roi_extractor = ModuleList(
            MODELS.build(c) for c in _per_stage(bbox_roi_extractor, num_stages,
                                                'bbox_roi_extractor'))
        self.bbox_head = ModuleList(
            MODELS.build(c) for c in _per_stage(bbox_head, num_stages, 'bbox_head'))
        if mask_head is not None:
            self.mask_head = ModuleList(
                MODELS.build(c) for c in _per_stage(mask_head, num_stages, 'mask_head'))
            self.share_roi_extractor = mask_roi_extractor is None
            self.mask_roi_extractor = self.bbox_roi_extractor if self.share_roi_extractor \
                else ModuleList(MODELS.build(c) for c in _per_stage(
                    mask_roi_extractor, num_stages, 'mask_roi_extractor'))

        self.bbox_assigner, self.bbox_sampler = [], []
        if train_cfg is not None:
            if isinstance(train_cfg, dict) or len(train_cfg) != num_stages:
                raise ValueError('CascadeRoIHead train_cfg (the detector\'s train_cfg.rcnn) '
                                 f'must be a list of {num_stages} stage configs (assigner, '
                                 f'sampler, ...), got {type(train_cfg).__name__}')
            for stage_cfg in train_cfg:
                self.bbox_assigner.append(TASK_UTILS.build(stage_cfg['assigner']))
                self.bbox_sampler.append(TASK_UTILS.build(stage_cfg['sampler'],
                                                          default_args=dict(context=self)))

    # ------------------------------------------------------------------ forward
    def _bbox_forward(self, stage: int, x: Sequence[Tensor], rois: Tensor) -> Dict[str, Tensor]:
        bbox_feats = self.bbox_roi_extractor[stage](x, rois)
        cls_score, bbox_pred = self.bbox_head[stage](bbox_feats)
        return dict(cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=bbox_feats)

    def _mask_forward(self, stage: int, x: Sequence[Tensor], rois: Tensor) -> Tensor:
        return self.mask_head[stage](self.mask_roi_extractor[stage](x, rois))

    def _refine_roi(self, x: Sequence[Tensor], rois: Tensor, batch_img_metas: List[dict],
                    num_per_img: Sequence[int]
                    ) -> Tuple[Tuple[Tensor, ...], List[Tensor], Tuple[Optional[Tensor], ...]]:
        """Run the stages at test time.

        Returns:
            Per image: the last stage's input RoIs ``(R_i, 5)``, the class logits
            averaged over stages ``(R_i, C + 1)`` and the last stage's deltas.
        """
        stage_scores = []
        for stage in range(self.num_stages):
            results = self._bbox_forward(stage, x, rois)
            rois = rois.split(num_per_img)
            cls_scores = results['cls_score'].split(num_per_img)
            stage_scores.append(cls_scores)
            bbox_preds = results['bbox_pred'].split(num_per_img) \
                if results['bbox_pred'] is not None else (None,) * len(num_per_img)
            if stage < self.num_stages - 1:
                head = self.bbox_head[stage]
                refined = []
                for img_rois, score, pred, meta in zip(rois, cls_scores, bbox_preds,
                                                       batch_img_metas):
                    if len(img_rois) == 0:
                        refined.append(img_rois)
                        continue
                    label = score[:, :head.num_classes].argmax(dim=1)
                    boxes = head.regress_by_class(img_rois[:, 1:], label, pred, meta)
                    refined.append(torch.cat([img_rois[:, :1], boxes], dim=1))
                rois = torch.cat(refined)
        cls_scores = [sum(scores[i] for scores in stage_scores) / len(stage_scores)
                      for i in range(len(batch_img_metas))]
        return rois, cls_scores, bbox_preds

    def forward(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: OptSampleList = None) -> Tuple:
        """Raw outputs (``'tensor'`` mode), per image: averaged class logits, last-stage
        deltas[, mask probabilities averaged over the stages' mask heads]."""
        proposals = [res.bboxes for res in rpn_results_list]
        num_per_img = [len(p) for p in proposals]
        batch_img_metas = [s.metainfo for s in batch_data_samples] if batch_data_samples \
            else [{} for _ in proposals]
        rois, cls_scores, bbox_preds = self._refine_roi(x, bbox2roi(proposals), batch_img_metas,
                                                        num_per_img)
        outs = (cls_scores, bbox_preds)
        if self.with_mask:
            rois = torch.cat(rois)
            probs = sum(self._mask_forward(stage, x, rois).sigmoid()
                        for stage in range(self.num_stages)) / self.num_stages
            outs += (probs.split(num_per_img),)
        return outs

    # ------------------------------------------------------------------ training
    def loss(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Every stage's weighted losses, ``s{stage}.{name}``; see module docstring."""
        self._check_loss_inputs(rpn_results_list, batch_data_samples, bool(self.bbox_assigner))
        batch_gt_instances, batch_gt_instances_ignore, batch_img_metas = unpack_gt_instances(
            batch_data_samples)
        losses: Dict[str, Tensor] = {}
        proposals = [res.bboxes for res in rpn_results_list]
        for stage in range(self.num_stages):
            weight = self.stage_loss_weights[stage]
            sampling_results = sample_proposals(proposals, batch_gt_instances,
                                                batch_gt_instances_ignore,
                                                self.bbox_assigner[stage],
                                                self.bbox_sampler[stage])
            bbox_results = self.bbox_loss(stage, x, sampling_results)
            stage_losses = dict(bbox_results['loss_bbox'])
            if self.with_mask:
                stage_losses.update(self.mask_loss(stage, x, sampling_results,
                                                   batch_gt_instances)['loss_mask'])
            for name, value in stage_losses.items():
                losses[f's{stage}.{name}'] = value * weight if 'loss' in name else value
            if stage < self.num_stages - 1:
                with torch.no_grad():
                    refined = self.bbox_head[stage].refine_bboxes(sampling_results,
                                                                  bbox_results, batch_img_metas)
                if refined is None:  # no RoI in the whole batch: nothing to refine
                    break
                proposals = [res.bboxes for res in refined]
        return losses

    def bbox_loss(self, stage: int, x: Sequence[Tensor],
                  sampling_results: List[SamplingResult]) -> dict:
        """Stage ``stage``'s box branch on its sampled RoIs: outputs, ``rois``,
        ``loss_bbox`` (a dict) and ``bbox_targets``."""
        rois = bbox2roi([res.priors for res in sampling_results])
        bbox_results = self._bbox_forward(stage, x, rois)
        targets = self.bbox_head[stage].loss_and_target(
            bbox_results['cls_score'], bbox_results['bbox_pred'], rois, sampling_results,
            self.train_cfg[stage])
        bbox_results.update(rois=rois, **targets)
        return bbox_results

    def mask_loss(self, stage: int, x: Sequence[Tensor], sampling_results: List[SamplingResult],
                  batch_gt_instances: List[InstanceData]) -> dict:
        """Stage ``stage``'s mask branch on its positives; ``loss_mask`` (a dict)."""
        pos_rois = bbox2roi([res.pos_priors for res in sampling_results])
        mask_preds = self._mask_forward(stage, x, pos_rois)
        return self.mask_head[stage].loss_and_target(mask_preds, sampling_results,
                                                     batch_gt_instances, self.train_cfg[stage])

    # ------------------------------------------------------------------ inference
    def predict_bbox(self, x: Sequence[Tensor], batch_img_metas: List[dict],
                     rpn_results_list: List[InstanceData], rcnn_test_cfg: Optional[Dict],
                     rescale: bool = False) -> List[InstanceData]:
        """All stages on the proposals, scores averaged, then per-class NMS per image."""
        proposals = [res.bboxes for res in rpn_results_list]
        rois = bbox2roi(proposals)
        if rois.size(0) == 0:
            return [empty_detections(rois.device) for _ in batch_img_metas]
        rois, cls_scores, bbox_preds = self._refine_roi(x, rois, batch_img_metas,
                                                        [len(p) for p in proposals])
        return self.bbox_head[-1].predict_by_feat(rois, cls_scores, bbox_preds, batch_img_metas,
                                                  rcnn_test_cfg=rcnn_test_cfg, rescale=rescale)

    def predict_mask(self, x: Sequence[Tensor], batch_img_metas: List[dict],
                     results_list: List[InstanceData],
                     rescale: bool = False) -> List[InstanceData]:
        """Masks of the detections: every stage's mask head, probabilities averaged."""
        if 'mask_thr_binary' not in self.test_cfg:
            raise KeyError('CascadeRoIHead with a mask_head needs test_cfg.mask_thr_binary, '
                           'e.g. 0.5')
        mask_rois = bbox2roi([res.bboxes for res in results_list])
        probs = sum(self._mask_forward(stage, x, mask_rois).sigmoid()
                    for stage in range(self.num_stages)) / self.num_stages
        probs = probs.split([len(res) for res in results_list])
        return self.mask_head[-1].predict_by_feat(probs, results_list, batch_img_metas,
                                                  self.test_cfg, rescale=rescale,
                                                  activate_map=True)
