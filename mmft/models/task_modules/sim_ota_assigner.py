"""YOLOX's SimOTA assignment (MMDetection 3.x ``SimOTAAssigner``).

Priors are ``(cx, cy, stride_w, stride_h)`` rows (YOLOX passes the cell centres);
``pred_instances.scores`` are probabilities ``(N, C)`` (YOLOX: ``sqrt(sigmoid(cls) *
sigmoid(obj))``), ``.bboxes`` decoded boxes ``(N, 4)``.

Candidates are the priors whose point lies strictly inside some gt box or inside some
gt's centre square (``center_radius`` strides around the gt centre). For each
(candidate, gt) pair::

    cost = cls_weight * sum_c BCE(score_c, onehot(gt)_c)
         + iou_weight * -log(IoU + 1e-7)
         + 1e5 * (prior not both inside the gt box and inside its centre square)

and each gt takes its ``k = max(int(sum of its candidate_topk best IoUs), 1)`` cheapest
candidates (a prior taken by several gts keeps the cheapest). ``max_overlaps`` holds a
positive's IoU with its gt (YOLOX's class target) and ``-1e5`` elsewhere; every
non-positive is negative (``gt_inds`` 0).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.registry import TASK_UTILS
from .assigners import AssignResult
from .dynamic_soft_label_assigner import (dynamic_k_matching, matched_result,
                                          strided_prior_inputs)

INF = 100000.0
EPS = 1.0e-7


@TASK_UTILS.register_module()
class SimOTAAssigner:
    """SimOTA assignment (see the module docstring).

    Args:
        center_radius: half side of each gt's centre square, in strides.
        candidate_topk: IoUs summed for each gt's dynamic k.
        iou_weight: weight of the IoU cost.
        cls_weight: weight of the classification cost.
        iou_calculator: TASK_UTILS config.
    """

    def __init__(self, center_radius: float = 2.5, candidate_topk: int = 10,
                 iou_weight: float = 3.0, cls_weight: float = 1.0,
                 iou_calculator: dict = dict(type='BboxOverlaps2D')) -> None:
        if center_radius <= 0 or candidate_topk < 1:
            raise ValueError(f'SimOTAAssigner needs center_radius > 0 and candidate_topk >= 1, '
                             f'got {center_radius} and {candidate_topk}')
        self.center_radius = center_radius
        self.candidate_topk = candidate_topk
        self.iou_weight = iou_weight
        self.cls_weight = cls_weight
        self.iou_calculator = TASK_UTILS.build(iou_calculator)

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None, **kwargs) -> AssignResult:
        """Assign every prior of ``pred_instances`` (``priors``, ``bboxes``, ``scores``)."""
        gt_bboxes, gt_labels = gt_instances.bboxes, gt_instances.labels
        decoded, scores, priors = strided_prior_inputs(pred_instances, type(self).__name__)
        num_gt, num_bboxes = gt_bboxes.size(0), decoded.size(0)
        if num_gt == 0 or num_bboxes == 0:
            return matched_result(num_gt, decoded)
        valid, in_box_and_center = self.get_in_gt_and_in_center_info(priors, gt_bboxes)
        num_valid = int(valid.sum())
        if num_valid == 0:
            return matched_result(num_gt, decoded)
        ious = self.iou_calculator(decoded[valid], gt_bboxes)
        iou_cost = -torch.log(ious + EPS)
        onehot = F.one_hot(gt_labels.long(), scores.size(-1)).float()[None].expand(
            num_valid, num_gt, -1)
        pair_scores = scores[valid][:, None].expand(-1, num_gt, -1).float()
        # BCE of probabilities in fp32 (under autocast it would be refused or lossy)
        with torch.autocast(device_type=decoded.device.type, enabled=False):
            cls_cost = F.binary_cross_entropy(pair_scores, onehot, reduction='none').sum(-1)
        cost = (cls_cost * self.cls_weight + iou_cost * self.iou_weight
                + (~in_box_and_center) * INF)
        matched = dynamic_k_matching(cost, ious, num_gt, self.candidate_topk)
        return matched_result(num_gt, decoded, valid, matched, gt_labels, -INF)

    def get_in_gt_and_in_center_info(self, priors: Tensor,
                                     gt_bboxes: Tensor) -> Tuple[Tensor, Tensor]:
        """``(N,)`` candidates (inside any gt box or centre square) and, for them,
        ``(num_candidates, num_gt)`` inside both that gt's box and its centre square."""
        xy = priors[:, None, :2]
        in_box = torch.cat([xy - gt_bboxes[None, :, :2], gt_bboxes[None, :, 2:4] - xy],
                           dim=-1).min(dim=-1).values > 0
        centers = (gt_bboxes[:, :2] + gt_bboxes[:, 2:4]) / 2.0
        radius = self.center_radius * priors[:, None, 2:4]
        in_center = (xy - centers[None]).abs().sub(radius).max(dim=-1).values < 0
        valid = in_box.any(dim=1) | in_center.any(dim=1)
        return valid, (in_box & in_center)[valid]
