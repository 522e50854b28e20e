"""Test-time steps shared by dense heads (MMDetection 3.x ``BaseDenseHead`` semantics).

``filter_scores_and_topk`` keeps the (prior, class) pairs scoring above a threshold, then
the ``topk`` best of them; ``bbox_post_process`` rescales to the original image, drops
boxes not larger than ``min_bbox_size`` and runs per-class NMS (or Soft-NMS, through
:func:`mmft.models.layers.nms.batched_nms`), keeping ``max_per_img``. Every dense head's
test-time NMS runs here.
"""
from typing import Dict, Optional, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.structures import get_box_wh, scale_boxes
from ..layers.nms import batched_nms


def filter_scores_and_topk(scores: Tensor, score_thr: float,
                           topk: Optional[int]) -> Tuple[Tensor, Tensor, Tensor]:
    """Keep ``(prior, class)`` pairs scoring above ``score_thr``, then the ``topk`` best.

    Args:
        scores: ``(N, C)`` per-class scores of N priors.
        topk: how many to keep at most (all when None or ``<= 0``).

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


def bbox_post_process(results: InstanceData, cfg: Dict, img_meta: dict, rescale: bool,
                      owner: str, with_nms: bool = True) -> InstanceData:
    """Rescale, size filter and NMS of one image's ``bboxes``/``scores``/``labels``.

    ``results.score_factors`` (YOLOv3's objectness), when present, multiplies the scores.
    """
    if rescale:
        scale_factor = (img_meta or {}).get('scale_factor')
        if scale_factor is None:
            raise KeyError(f"{owner}.predict(rescale=True) needs 'scale_factor' in each "
                           "sample's metainfo")
        results.bboxes = scale_boxes(results.bboxes, [1 / s for s in scale_factor])
    if 'score_factors' in results:
        results.scores = results.scores * results.pop('score_factors')
    min_bbox_size = cfg.get('min_bbox_size', -1)
    if min_bbox_size >= 0 and len(results) > 0:
        w, h = get_box_wh(results.bboxes)
        keep = (w > min_bbox_size) & (h > min_bbox_size)
        if not keep.all():
            results = results[keep]
    if with_nms and len(results) > 0:
        # per-class NMS or Soft-NMS (which decays the scores it keeps)
        dets, keep = batched_nms(results.bboxes, results.scores, results.labels, cfg['nms'])
        results = results[keep]
        results.scores = dets[:, -1]
        results = results[:cfg.get('max_per_img', 100)]
    return results


def empty_results(device: torch.device) -> InstanceData:
    """No detections: ``bboxes (0, 4)``, ``scores (0,)``, ``labels (0,)``."""
    return InstanceData(bboxes=torch.zeros((0, 4), device=device),
                        scores=torch.zeros((0,), device=device),
                        labels=torch.zeros((0,), dtype=torch.long, device=device))
