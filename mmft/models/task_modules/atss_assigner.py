"""Adaptive Training Sample Selection (Zhang et al., 2020), MMDetection 3.x's ATSSAssigner.

For each gt: on every level take the ``topk`` priors whose centres are closest
to the gt centre; their IoUs with the gt give a threshold ``mean + std``;
candidates at or above it whose centre lies inside the gt (by more than 0.01 px)
are positive. A prior positive for several gts goes to the one of highest IoU.
Every other prior is negative (0); priors overlapping an ignored box by IoF
> ``ignore_iof_thr`` are ignored (-1).
"""
from typing import List, Optional

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.registry import TASK_UTILS
from .assigners import AssignResult

_INF = 100000000


def bbox_center_distance(bboxes: Tensor, priors: Tensor) -> Tensor:
    """``(num_priors, num_gts)`` Euclidean distances between box centres."""
    bbox_ctr = (bboxes[:, :2] + bboxes[:, 2:4]) / 2
    prior_ctr = (priors[:, :2] + priors[:, 2:4]) / 2
    return (prior_ctr[:, None, :] - bbox_ctr[None, :, :]).pow(2).sum(-1).sqrt()


@TASK_UTILS.register_module()
class ATSSAssigner:
    """ATSS assignment (see the module docstring).

    Args:
        topk: candidates per level and gt.
        alpha: when set, the cost-based variant ``cls ** (1 - alpha) * iou ** alpha``
            on ``pred_instances.scores`` / ``.bboxes`` (as TOOD); None: IoU of priors.
        iou_calculator: TASK_UTILS config.
        ignore_iof_thr: IoF above which a prior is ignored (-1: never).
    """

    def __init__(self, topk: int, alpha: Optional[float] = None,
                 iou_calculator: dict = dict(type='BboxOverlaps2D'),
                 ignore_iof_thr: float = -1) -> None:
        if topk < 1:
            raise ValueError(f'ATSSAssigner topk must be >= 1, got {topk}')
        self.topk = topk
        self.alpha = alpha
        self.iou_calculator = TASK_UTILS.build(iou_calculator) \
            if isinstance(iou_calculator, dict) else iou_calculator
        self.ignore_iof_thr = ignore_iof_thr

    def assign(self, pred_instances: InstanceData, num_level_priors: List[int],
               gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None) -> AssignResult:
        """Assign ``pred_instances.priors`` (N, 4), ``num_level_priors`` per level."""
        gt_bboxes, gt_labels = gt_instances.bboxes, gt_instances.labels
        priors = pred_instances.priors[:, :4]
        num_gt, num_priors = gt_bboxes.size(0), priors.size(0)
        if sum(num_level_priors) != num_priors:
            raise ValueError(f'ATSSAssigner: num_level_priors {num_level_priors} sum to '
                             f'{sum(num_level_priors)}, but there are {num_priors} priors')
        if self.alpha is None:
            overlaps = self.iou_calculator(priors, gt_bboxes)
        else:
            if 'scores' not in pred_instances or 'bboxes' not in pred_instances:
                raise ValueError('ATSSAssigner with alpha needs pred_instances.scores and '
                                 '.bboxes; set alpha=None for the IoU of the priors')
            cls_cost = torch.sigmoid(pred_instances.scores[:, gt_labels])
            overlaps = cls_cost ** (1 - self.alpha) * \
                self.iou_calculator(pred_instances.bboxes, gt_bboxes) ** self.alpha

        assigned_gt_inds = overlaps.new_zeros((num_priors,), dtype=torch.long)
        if num_gt == 0 or num_priors == 0:
            return AssignResult(num_gt, assigned_gt_inds, overlaps.new_zeros((num_priors,)),
                                labels=overlaps.new_full((num_priors,), -1, dtype=torch.long))

        distances = bbox_center_distance(gt_bboxes, priors)
        if (self.ignore_iof_thr > 0 and gt_instances_ignore is not None
                and 'bboxes' in gt_instances_ignore and gt_instances_ignore.bboxes.numel() > 0):
            ignore = self.iou_calculator(priors, gt_instances_ignore.bboxes,
                                         mode='iof').max(dim=1)[0] > self.ignore_iof_thr
            distances[ignore, :] = _INF
            assigned_gt_inds[ignore] = -1

        candidates, start = [], 0
        for num in num_level_priors:
            if num > 0:
                k = min(self.topk, num)
                _, idx = distances[start:start + num].topk(k, dim=0, largest=False)
                candidates.append(idx + start)
            start += num
        candidate_idxs = torch.cat(candidates, dim=0)  # (K, num_gt)
        gt_range = torch.arange(num_gt, device=overlaps.device)
        candidate_overlaps = overlaps[candidate_idxs, gt_range]
        threshold = candidate_overlaps.mean(0) + candidate_overlaps.std(0)
        is_pos = candidate_overlaps >= threshold[None, :]

        centres = (priors[:, :2] + priors[:, 2:]) / 2
        cand_ctr = centres[candidate_idxs]  # (K, num_gt, 2)
        sides = torch.stack([cand_ctr[..., 0] - gt_bboxes[:, 0], cand_ctr[..., 1] - gt_bboxes[:, 1],
                             gt_bboxes[:, 2] - cand_ctr[..., 0], gt_bboxes[:, 3] - cand_ctr[..., 1]],
                            dim=1)
        is_pos &= sides.min(dim=1)[0] > 0.01

        # (num_priors, num_gt) IoU where the prior is a positive candidate of the gt
        masked = torch.full_like(overlaps, -_INF)
        pos_prior, pos_gt = candidate_idxs[is_pos], gt_range.expand_as(candidate_idxs)[is_pos]
        masked[pos_prior, pos_gt] = overlaps[pos_prior, pos_gt]
        max_overlaps, argmax = masked.max(dim=1)
        positive = max_overlaps != -_INF
        assigned_gt_inds[positive] = argmax[positive] + 1

        labels = assigned_gt_inds.new_full((num_priors,), -1)
        pos = assigned_gt_inds > 0
        labels[pos] = gt_labels[assigned_gt_inds[pos] - 1]
        return AssignResult(num_gt, assigned_gt_inds, max_overlaps, labels=labels)
