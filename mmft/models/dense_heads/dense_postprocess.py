"""Test-time steps shared by dense heads (MMDetection 3.x ``BaseDenseHead`` semantics).

``filter_scores_and_topk`` keeps the (prior, class) pairs scoring above a threshold, then
the ``topk`` best of them; ``bbox_post_process`` rescales to the original image, drops
boxes not larger than ``min_bbox_size`` and runs per-class NMS, keeping ``max_per_img``.
The NMS call is in one place (:func:`nms_by_class`).
"""
from typing import Dict, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor
from torchvision.ops import batched_nms

from mmft.structures import get_box_wh
from ..roi_heads.bbox_heads import nms_iou_threshold


def filter_scores_and_topk(scores: Tensor, score_thr: float,
                           topk: int) -> Tuple[Tensor, Tensor, Tensor]:
    """From ``(N, C)`` scores: ``(scores (K,), labels (K,), prior indices (K,))``, sorted by
    score, of the pairs above ``score_thr``, at most ``topk`` (all when ``topk <= 0``)."""
    valid = scores > score_thr
    kept = scores[valid]
    idxs = torch.nonzero(valid, as_tuple=False)
    if 0 < topk < kept.numel():
        kept, order = kept.topk(topk)  # sorted; cheaper than sorting every pair
    else:
        kept, order = kept.sort(descending=True)
    prior_idx, labels = idxs[order].unbind(dim=1)
    return kept, labels, prior_idx


def nms_by_class(bboxes: Tensor, scores: Tensor, labels: Tensor, nms_cfg: Dict,
                 owner: str) -> Tensor:
    """Indices kept by per-class NMS, by descending score."""
    return batched_nms(bboxes, scores, labels, nms_iou_threshold(nms_cfg, owner))


def bbox_post_process(results: InstanceData, cfg: Dict, img_meta: dict, rescale: bool,
                      owner: str, with_nms: bool = True) -> InstanceData:
    """Rescale, size filter and NMS of one image's ``bboxes``/``scores``/``labels``.

    ``results.score_factors`` (YOLOv3's objectness), when present, multiplies the scores.
    """
    if rescale:
        scale_factor = img_meta.get('scale_factor')
        if scale_factor is None:
            raise KeyError(f"{owner}.predict(rescale=True) needs 'scale_factor' in metainfo")
        results.bboxes = results.bboxes / results.bboxes.new_tensor(scale_factor).repeat(2)
    if 'score_factors' in results:
        results.scores = results.scores * results.pop('score_factors')
    min_bbox_size = cfg.get('min_bbox_size', -1)
    if min_bbox_size >= 0 and len(results) > 0:
        w, h = get_box_wh(results.bboxes)
        keep = (w > min_bbox_size) & (h > min_bbox_size)
        if not keep.all():
            results = results[keep]
    if with_nms and len(results) > 0:
        keep = nms_by_class(results.bboxes, results.scores, results.labels, cfg['nms'], owner)
        results = results[keep[:cfg.get('max_per_img', 100)]]
    return results


def empty_results(device: torch.device) -> InstanceData:
    """No detections: ``bboxes (0, 4)``, ``scores (0,)``, ``labels (0,)``."""
    return InstanceData(bboxes=torch.zeros((0, 4), device=device),
                        scores=torch.zeros((0,), device=device),
                        labels=torch.zeros((0,), dtype=torch.long, device=device))
