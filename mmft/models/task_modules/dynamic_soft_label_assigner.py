"""RTMDet's dynamic soft-label assignment (MMDetection 3.x ``DynamicSoftLabelAssigner``).

Candidates are the priors whose point lies strictly inside a gt box. For each
(candidate, gt) pair the cost is::

    cost = sum_c BCE(score_c, y_c) * |y_c - sigmoid(score_c)| ** 2     (y = onehot(gt) * IoU)
         + iou_weight * -log(IoU + 1e-7)
         + 10 ** (dist / stride - soft_center_radius)

with ``dist`` the distance from the prior to the gt centre (the mask's centre of mass
when ``gt_instances`` has ``masks``). Each gt takes its ``k`` cheapest candidates with
``k = max(int(sum of its topk IoUs), 1)`` (SimOTA's dynamic k); a prior taken by several
gts keeps the cheapest. ``max_overlaps`` holds the IoU of a positive with its gt
(the soft label), ``-1e8`` elsewhere; every non-positive is negative (0).

Priors are ``(x, y, stride_w, stride_h)`` rows (``MlvlPointGenerator(with_stride=True)``);
``pred_instances.scores`` are logits ``(N, C)``, ``.bboxes`` decoded boxes ``(N, 4)``.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.registry import TASK_UTILS
from .assigners import AssignResult

INF = 100000000
EPS = 1.0e-7


def center_of_mass(masks: Tensor, eps: float = 1e-7) -> Tensor:
    """``(N, 2)`` ``(x, y)`` centres of mass of ``(N, H, W)`` masks (pixel indices)."""
    _, h, w = masks.shape
    masks = masks.float()
    ys = torch.arange(h, device=masks.device, dtype=masks.dtype)[:, None]
    xs = torch.arange(w, device=masks.device, dtype=masks.dtype)
    total = masks.sum(dim=(1, 2)).clamp(min=eps)
    return torch.stack([(masks * xs).sum(dim=(1, 2)) / total,
                        (masks * ys).sum(dim=(1, 2)) / total], dim=1)


@TASK_UTILS.register_module()
class DynamicSoftLabelAssigner:
    """Dynamic soft-label assignment (see the module docstring).

    Args:
        soft_center_radius: radius (in strides) of the soft centre prior.
        topk: IoUs summed for each gt's dynamic k.
        iou_weight: weight of the IoU cost.
        iou_calculator: TASK_UTILS config.
    """

    def __init__(self, soft_center_radius: float = 3.0, topk: int = 13,
                 iou_weight: float = 3.0,
                 iou_calculator: dict = dict(type='BboxOverlaps2D')) -> None:
        self.soft_center_radius = soft_center_radius
        self.topk = topk
        self.iou_weight = iou_weight
        self.iou_calculator = TASK_UTILS.build(iou_calculator)

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None, **kwargs) -> AssignResult:
        """Assign every prior of ``pred_instances`` (``priors``, ``bboxes``, ``scores``)."""
        gt_bboxes, gt_labels = gt_instances.bboxes, gt_instances.labels
        decoded, scores, priors = strided_prior_inputs(pred_instances, type(self).__name__)
        num_gt, num_bboxes = gt_bboxes.size(0), decoded.size(0)
        if num_gt == 0 or num_bboxes == 0:
            return matched_result(num_gt, decoded)
        centers = priors[:, :2]
        deltas = torch.cat([centers[:, None] - gt_bboxes[None, :, :2],
                            gt_bboxes[None, :, 2:4] - centers[:, None]], dim=-1)
        valid = deltas.min(dim=-1).values > 0
        valid = valid.any(dim=1)
        if not valid.any():
            return matched_result(num_gt, decoded)
        valid_boxes = decoded[valid]
        valid_scores = scores[valid]
        num_valid = valid_boxes.size(0)
        if 'masks' in gt_instances:
            masks = gt_instances.masks
            masks = masks.to_tensor(torch.float32, decoded.device) \
                if hasattr(masks, 'to_tensor') else masks
            gt_center = center_of_mass(masks, eps=EPS)
        else:
            gt_center = (gt_bboxes[:, :2] + gt_bboxes[:, 2:4]) / 2.0
        valid_priors = priors[valid]
        dist = (valid_priors[:, None, :2] - gt_center[None]).pow(2).sum(-1).sqrt() \
            / valid_priors[:, 2:3]
        soft_center_prior = torch.pow(10, dist - self.soft_center_radius)
        ious = self.iou_calculator(valid_boxes, gt_bboxes)
        iou_cost = -torch.log(ious + EPS) * self.iou_weight
        onehot = F.one_hot(gt_labels.long(), scores.size(-1)).float()[None].expand(
            num_valid, num_gt, -1)
        pair_scores = valid_scores[:, None].expand(-1, num_gt, -1)
        soft_label = onehot * ious[..., None]
        scale = (soft_label - pair_scores.sigmoid()).abs().pow(2.0)
        cls_cost = (F.binary_cross_entropy_with_logits(pair_scores, soft_label,
                                                       reduction='none') * scale).sum(-1)
        cost = cls_cost + iou_cost + soft_center_prior
        matched = self.dynamic_k_matching(cost, ious, num_gt)
        return matched_result(num_gt, decoded, valid, matched, gt_labels, -INF)

    def dynamic_k_matching(self, cost: Tensor, ious: Tensor,
                           num_gt: int) -> Tuple[Tensor, Tensor, Tensor]:
        """``(matched IoUs, matched gt index, foreground mask over the candidates)``."""
        return dynamic_k_matching(cost, ious, num_gt, self.topk)


def strided_prior_inputs(pred_instances: InstanceData,
                         assigner: str) -> Tuple[Tensor, Tensor, Tensor]:
    """``(decoded boxes, scores, priors)`` of ``pred_instances``; the priors must carry
    their strides, ``(x, y, stride_w, stride_h)``."""
    priors = pred_instances.priors
    if priors.size(-1) < 4:
        raise ValueError(f'{assigner} needs priors with strides (x, y, stride_w, stride_h): '
                         'use grid_priors(with_stride=True)')
    return pred_instances.bboxes, pred_instances.scores, priors


def matched_result(num_gt: int, decoded: Tensor, valid: Optional[Tensor] = None,
                   matched: Optional[Tuple[Tensor, Tensor, Tensor]] = None,
                   gt_labels: Optional[Tensor] = None,
                   unmatched_overlap: float = 0.) -> AssignResult:
    """The AssignResult of a dynamic-k matching over the ``valid`` candidates (everything
    negative when ``matched`` is None): positives get their gt, label and IoU, the rest
    ``unmatched_overlap``."""
    num = decoded.size(0)
    gt_inds = decoded.new_zeros((num,), dtype=torch.long)
    labels = decoded.new_full((num,), -1, dtype=torch.long)
    if matched is None:
        return AssignResult(num_gt, gt_inds, decoded.new_zeros((num,)), labels)
    matched_ious, matched_gt, fg = matched
    idx = valid.nonzero().squeeze(1)[fg]
    gt_inds[idx] = matched_gt + 1
    labels[idx] = gt_labels[matched_gt].long()
    max_overlaps = decoded.new_full((num,), unmatched_overlap, dtype=torch.float32)
    max_overlaps[idx] = matched_ious.float()
    return AssignResult(num_gt, gt_inds, max_overlaps, labels)


def dynamic_k_matching(cost: Tensor, ious: Tensor, num_gt: int,
                       topk: int) -> Tuple[Tensor, Tensor, Tensor]:
    """SimOTA's dynamic-k matching of ``(candidates, gts)`` costs and IoUs.

    Each gt takes its ``k = max(int(sum of its topk IoUs), 1)`` cheapest candidates; a
    candidate taken by several gts keeps the cheapest.

    Returns:
        ``(matched IoUs, matched gt index, foreground mask over the candidates)``.
    """
    matching = torch.zeros_like(cost, dtype=torch.uint8)
    candidate_topk = min(topk, ious.size(0))
    topk_ious, _ = torch.topk(ious, candidate_topk, dim=0)
    dynamic_ks = torch.clamp(topk_ious.sum(0).int(), min=1)
    for g in range(num_gt):
        _, pos = torch.topk(cost[:, g], k=int(dynamic_ks[g]), largest=False)
        matching[pos, g] = 1
    multiple = matching.sum(1) > 1
    if multiple.any():
        # a prior wanted by several gts goes to its cheapest
        cost_argmin = cost[multiple].argmin(dim=1)
        matching[multiple] = 0
        matching[multiple.nonzero().squeeze(1), cost_argmin] = 1
    fg = matching.sum(1) > 0
    matched_gt = matching[fg].argmax(1)
    matched_ious = (matching * ious).sum(1)[fg]
    return matched_ious, matched_gt, fg
