"""What every one-stage head shares: the loss / predict entry points and the
per-level decoding, score filtering and NMS of MMDetection 3.x's BaseDenseHead.

Conventions (subclasses rely on them):
- ``forward(feats)`` returns per-level lists: ``cls_scores[i]`` ``(B, A * C, H, W)``
  and ``bbox_preds[i]`` ``(B, A * E, H, W)`` (``E = bbox_coder.encode_size``),
  plus, for heads with a quality branch (FCOS, ATSS), ``score_factors[i]``
  ``(B, A, H, W)`` logits.
- After ``permute(1, 2, 0)`` a level's outputs line up with its priors from
  ``self.prior_generator.grid_priors`` (location-major, then prior, then class).
- Sigmoid heads (``use_sigmoid_cls``) have ``C = num_classes`` and no background;
  softmax heads ``C = num_classes + 1`` with background last.
- Predictions are ``InstanceData(bboxes (K, 4), scores (K,), labels (K,))`` per
  image, in ``img_shape`` pixels (``ori_shape`` with ``rescale``), sorted by score.
"""
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.structures import SampleList
from .dense_postprocess import bbox_post_process, filter_scores_and_topk
from .rpn_head import unpack_gt_instances


class BaseDenseHead(BaseModule):
    """Loss and predict entry points of a dense head (abstract).

    Subclasses implement ``forward``, ``loss_by_feat`` and set ``prior_generator``,
    ``bbox_coder``, ``cls_out_channels``, ``use_sigmoid_cls``, ``test_cfg``.
    """

    # ------------------------------------------------------------------ training
    def loss(self, x: Sequence[Tensor], batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Losses from the features and the samples' ``gt_instances``."""
        batch_gt_instances, batch_gt_instances_ignore, batch_img_metas = \
            unpack_gt_instances(batch_data_samples)
        outs = self(x)
        return self.loss_by_feat(*outs, batch_gt_instances, batch_img_metas,
                                 batch_gt_instances_ignore)

    def loss_by_feat(self, *args, **kwargs) -> Dict[str, Tensor]:
        raise NotImplementedError

    # ------------------------------------------------------------------ inference
    def predict(self, x: Sequence[Tensor], batch_data_samples: SampleList,
                rescale: bool = False) -> List[InstanceData]:
        """Detections per image (see the module docstring)."""
        batch_img_metas = [data_sample.metainfo for data_sample in batch_data_samples]
        outs = self(x)
        return self.predict_by_feat(*outs, batch_img_metas=batch_img_metas, rescale=rescale)

    def predict_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                        score_factors: Optional[List[Tensor]] = None,
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[Dict] = None, rescale: bool = False,
                        with_nms: bool = True) -> List[InstanceData]:
        """Decode the top-scoring priors of every level, then NMS per image."""
        if len(cls_scores) != len(bbox_preds):
            raise ValueError(f'{type(self).__name__}: {len(cls_scores)} score levels but '
                             f'{len(bbox_preds)} box levels')
        cfg = self.test_cfg if cfg is None else cfg
        if cfg is None:
            raise ValueError(f'{type(self).__name__}.predict needs test_cfg (nms_pre, score_thr, '
                             "nms=dict(type='nms', iou_threshold=...), max_per_img)")
        featmap_sizes = [tuple(score.shape[-2:]) for score in cls_scores]
        mlvl_priors = self.prior_generator.grid_priors(
            featmap_sizes, dtype=cls_scores[0].dtype, device=cls_scores[0].device)
        results = []
        for img_id, img_meta in enumerate(batch_img_metas):
            factors = None if score_factors is None else \
                [f[img_id].detach() for f in score_factors]
            results.append(self._predict_by_feat_single(
                [s[img_id].detach() for s in cls_scores],
                [p[img_id].detach() for p in bbox_preds],
                factors, mlvl_priors, img_meta, cfg, rescale, with_nms))
        return results

    def _predict_by_feat_single(self, cls_score_list: List[Tensor],
                                bbox_pred_list: List[Tensor],
                                score_factor_list: Optional[List[Tensor]],
                                mlvl_priors: List[Tensor], img_meta: dict, cfg: Dict,
                                rescale: bool = False, with_nms: bool = True) -> InstanceData:
        nms_pre = cfg.get('nms_pre', -1)
        score_thr = cfg.get('score_thr', 0)
        dim = self.bbox_coder.encode_size
        bbox_list, prior_list, score_list, label_list, factor_list = [], [], [], [], []
        for level, (cls_score, bbox_pred, priors) in enumerate(
                zip(cls_score_list, bbox_pred_list, mlvl_priors)):
            bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, dim)
            cls_score = cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels)
            scores = cls_score.sigmoid() if self.use_sigmoid_cls \
                else cls_score.softmax(-1)[:, :-1]
            scores, labels, keep = filter_scores_and_topk(scores, score_thr, nms_pre)
            bbox_list.append(bbox_pred[keep])
            prior_list.append(priors[keep])
            score_list.append(scores)
            label_list.append(labels)
            if score_factor_list is not None:
                factor = score_factor_list[level].permute(1, 2, 0).reshape(-1).sigmoid()
                factor_list.append(factor[keep])
        bboxes = self.bbox_coder.decode(torch.cat(prior_list), torch.cat(bbox_list),
                                        max_shape=img_meta['img_shape'][:2])
        results = InstanceData(bboxes=bboxes, scores=torch.cat(score_list),
                               labels=torch.cat(label_list))
        if score_factor_list is not None:
            results.score_factors = torch.cat(factor_list)
        return bbox_post_process(results, cfg, img_meta, rescale, type(self).__name__,
                                 with_nms)


def images_to_levels(target: List[Tensor], num_level_priors: List[int]) -> List[Tensor]:
    """Per image ``(N, ...)`` tensors -> per level ``(B, N_l, ...)`` tensors."""
    stacked = torch.stack(target, 0)
    return list(stacked.split(num_level_priors, dim=1))
