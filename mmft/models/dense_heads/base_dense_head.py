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
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor
from torchvision.ops import batched_nms

from mmft.structures import SampleList, get_box_wh, scale_boxes
from .rpn_head import unpack_gt_instances


def nms_iou_threshold(nms_cfg: Dict, owner: str) -> float:
    """IoU threshold of ``dict(type='nms', iou_threshold=...)``, the NMS dense heads run."""
    if nms_cfg.get('type', 'nms') != 'nms' or 'iou_threshold' not in nms_cfg:
        raise ValueError(f"{owner} supports test_cfg.nms=dict(type='nms', iou_threshold=...) "
                         f'only, got {dict(nms_cfg)!r}')
    return float(nms_cfg['iou_threshold'])


def filter_scores_and_topk(scores: Tensor, score_thr: float, topk: int
                           ) -> Tuple[Tensor, Tensor, Tensor]:
    """Keep ``(prior, class)`` pairs scoring above ``score_thr``, then the ``topk`` best.

    Args:
        scores: ``(N, C)`` per-class scores of N priors.

    Returns:
        ``scores (K,)`` descending, ``labels (K,)``, ``prior indices (K,)``.
    """
    num_classes = scores.size(1)
    flat = scores.reshape(-1)
    idxs = torch.nonzero(flat > score_thr, as_tuple=True)[0]  # 1D: cheaper than (N, C) pairs
    kept = flat[idxs]
    if topk is not None and 0 < topk < kept.numel():
        # top-k of up to a few million (prior, class) scores, not a full sort
        kept, order = kept.topk(topk)
    else:
        kept, order = kept.sort(descending=True)
    idxs = idxs[order]
    return kept, idxs % num_classes, torch.div(idxs, num_classes, rounding_mode='floor')


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
        return self._bbox_post_process(results, cfg, rescale, with_nms, img_meta)

    def _bbox_post_process(self, results: InstanceData, cfg: Dict, rescale: bool = False,
                           with_nms: bool = True,
                           img_meta: Optional[dict] = None) -> InstanceData:
        """Rescale, apply score factors, drop small boxes, NMS, keep ``max_per_img``.

        The one place a dense head runs NMS.
        """
        if rescale:
            if img_meta is None or img_meta.get('scale_factor') is None:
                raise KeyError(f"{type(self).__name__}.predict(rescale=True) needs "
                               "'scale_factor' in each sample's metainfo")
            results.bboxes = scale_boxes(results.bboxes,
                                         [1 / s for s in img_meta['scale_factor']])
        if 'score_factors' in results:
            results.scores = results.scores * results.pop('score_factors')
        min_bbox_size = cfg.get('min_bbox_size', -1)
        if min_bbox_size >= 0:
            w, h = get_box_wh(results.bboxes)
            valid = (w > min_bbox_size) & (h > min_bbox_size)
            if not valid.all():
                results = results[valid]
        if with_nms and results.bboxes.numel() > 0:
            keep = batched_nms(results.bboxes, results.scores, results.labels,
                               nms_iou_threshold(cfg['nms'], type(self).__name__))
            results = results[keep[:cfg.get('max_per_img', 100)]]
        return results


def images_to_levels(target: List[Tensor], num_level_priors: List[int]) -> List[Tensor]:
    """Per image ``(N, ...)`` tensors -> per level ``(B, N_l, ...)`` tensors."""
    stacked = torch.stack(target, 0)
    return list(stacked.split(num_level_priors, dim=1))
