"""Assign priors (anchors / proposals) to ground-truth boxes.

``AssignResult.gt_inds`` per prior: ``0`` negative (background), ``-1``
ignored (neither positive nor negative), ``k + 1`` positive for gt ``k``.
``labels`` holds the assigned gt's label, ``-1`` for non-positives.
"""
from typing import Optional, Tuple, Union

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.registry import TASK_UTILS
from mmft.structures import bbox_overlaps


@TASK_UTILS.register_module()
class BboxOverlaps2D:
    """IoU / IoF of ``(x1, y1, x2, y2[, score])`` boxes (extra columns ignored)."""

    def __init__(self, scale: float = 1., dtype: Optional[str] = None) -> None:
        self.scale = scale
        self.dtype = dtype

    def __call__(self, bboxes1: Tensor, bboxes2: Tensor, mode: str = 'iou',
                 is_aligned: bool = False) -> Tensor:
        return bbox_overlaps(bboxes1[..., :4], bboxes2[..., :4], mode=mode, is_aligned=is_aligned)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(scale={self.scale}, dtype={self.dtype})'


class AssignResult:
    """Result of assigning ``num_preds`` priors to ``num_gts`` ground truths.

    Attributes:
        num_gts: number of ground truths considered.
        gt_inds: ``(num_preds,)`` int64, 0 / -1 / k + 1 (see module docstring).
        max_overlaps: ``(num_preds,)`` IoU with the best gt.
        labels: ``(num_preds,)`` int64, -1 for non-positives.
    """

    def __init__(self, num_gts: int, gt_inds: Tensor, max_overlaps: Tensor,
                 labels: Optional[Tensor]) -> None:
        self.num_gts = num_gts
        self.gt_inds = gt_inds
        self.max_overlaps = max_overlaps
        self.labels = labels
        self._extra_properties = {}

    @property
    def num_preds(self) -> int:
        return len(self.gt_inds)

    def set_extra_property(self, key: str, value) -> None:
        if key in self.info:
            raise KeyError(f'AssignResult already has a property {key!r}')
        self._extra_properties[key] = value

    def get_extra_property(self, key: str):
        return self._extra_properties.get(key, None)

    @property
    def info(self) -> dict:
        info = {'num_gts': self.num_gts, 'num_preds': self.num_preds, 'gt_inds': self.gt_inds,
                'max_overlaps': self.max_overlaps, 'labels': self.labels}
        info.update(self._extra_properties)
        return info

    def add_gt_(self, gt_labels: Tensor) -> None:
        """Prepend the ground truths themselves as positive priors (overlap 1)."""
        self_inds = torch.arange(1, len(gt_labels) + 1, dtype=torch.long, device=gt_labels.device)
        self.gt_inds = torch.cat([self_inds, self.gt_inds])
        self.max_overlaps = torch.cat([self.max_overlaps.new_ones(len(gt_labels)),
                                       self.max_overlaps])
        if self.labels is not None:
            self.labels = torch.cat([gt_labels, self.labels])

    def __repr__(self) -> str:
        num_pos = int((self.gt_inds > 0).sum()) if self.gt_inds.numel() else 0
        return (f'<AssignResult(num_gts={self.num_gts}, num_preds={self.num_preds}, '
                f'num_pos={num_pos})>')


@TASK_UTILS.register_module()
class MaxIoUAssigner:
    """Assign each prior to the gt of highest IoU, with thresholds.

    1. every prior starts as ignored (-1);
    2. IoU in ``[0, neg_iou_thr)`` (or in the ``(lo, hi)`` range) -> negative (0);
    3. IoU >= ``pos_iou_thr`` -> positive for its best gt;
    4. with ``match_low_quality``: each gt also claims the prior(s) it overlaps
       most if that IoU >= ``min_pos_iou`` (all ties when ``gt_max_assign_all``),
       later gts winning ties as in MMDetection.

    Priors overlapping ignored boxes by IoF > ``ignore_iof_thr`` get IoU -1
    with every gt, i.e. stay ignored unless step 4 claims them.
    """

    def __init__(self,
                 pos_iou_thr: float,
                 neg_iou_thr: Union[float, Tuple[float, float]],
                 min_pos_iou: float = .0,
                 gt_max_assign_all: bool = True,
                 ignore_iof_thr: float = -1,
                 ignore_wrt_candidates: bool = True,
                 match_low_quality: bool = True,
                 gpu_assign_thr: float = -1,
                 iou_calculator: dict = dict(type='BboxOverlaps2D')) -> None:
        if not isinstance(neg_iou_thr, (int, float, tuple, list)):
            raise TypeError(f'MaxIoUAssigner neg_iou_thr must be a float or (lo, hi), '
                            f'got {neg_iou_thr!r}')
        if isinstance(neg_iou_thr, (tuple, list)) and len(neg_iou_thr) != 2:
            raise ValueError('MaxIoUAssigner neg_iou_thr range must be (lo, hi), '
                             f'got {neg_iou_thr!r}')
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = neg_iou_thr
        self.min_pos_iou = min_pos_iou
        self.gt_max_assign_all = gt_max_assign_all
        self.ignore_iof_thr = ignore_iof_thr
        self.ignore_wrt_candidates = ignore_wrt_candidates
        self.gpu_assign_thr = gpu_assign_thr
        self.match_low_quality = match_low_quality
        self.iou_calculator = TASK_UTILS.build(iou_calculator) \
            if isinstance(iou_calculator, dict) else iou_calculator

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None, **kwargs) -> AssignResult:
        """Assign ``pred_instances.priors`` (N, 4) to ``gt_instances`` (bboxes, labels).

        ``gt_instances_ignore.bboxes`` (optional, may be empty) are crowd / ignored regions.
        """
        priors = pred_instances.priors
        gt_bboxes = gt_instances.bboxes
        gt_labels = gt_instances.labels
        gt_bboxes_ignore = None
        if gt_instances_ignore is not None and 'bboxes' in gt_instances_ignore:
            gt_bboxes_ignore = gt_instances_ignore.bboxes

        device = priors.device
        assign_on_cpu = self.gpu_assign_thr > 0 and gt_bboxes.shape[0] > self.gpu_assign_thr
        if assign_on_cpu:
            priors, gt_bboxes, gt_labels = priors.cpu(), gt_bboxes.cpu(), gt_labels.cpu()
            if gt_bboxes_ignore is not None:
                gt_bboxes_ignore = gt_bboxes_ignore.cpu()

        overlaps = self.iou_calculator(gt_bboxes, priors)
        if (self.ignore_iof_thr > 0 and gt_bboxes_ignore is not None
                and gt_bboxes_ignore.numel() > 0 and priors.numel() > 0):
            if self.ignore_wrt_candidates:
                ignore_max = self.iou_calculator(priors, gt_bboxes_ignore, mode='iof').max(dim=1)[0]
            else:
                ignore_max = self.iou_calculator(gt_bboxes_ignore, priors, mode='iof').max(dim=0)[0]
            overlaps[:, ignore_max > self.ignore_iof_thr] = -1

        result = self.assign_wrt_overlaps(overlaps, gt_labels)
        if assign_on_cpu:
            result.gt_inds = result.gt_inds.to(device)
            result.max_overlaps = result.max_overlaps.to(device)
            if result.labels is not None:
                result.labels = result.labels.to(device)
        return result

    def assign_wrt_overlaps(self, overlaps: Tensor, gt_labels: Tensor) -> AssignResult:
        """Assign from a ``(num_gts, num_priors)`` overlap matrix."""
        num_gts, num_priors = overlaps.size(0), overlaps.size(1)
        assigned_gt_inds = overlaps.new_full((num_priors,), -1, dtype=torch.long)
        if num_gts == 0 or num_priors == 0:
            max_overlaps = overlaps.new_zeros((num_priors,))
            assigned_labels = overlaps.new_full((num_priors,), -1, dtype=torch.long)
            if num_gts == 0:
                assigned_gt_inds[:] = 0  # no gt: every prior is background
            return AssignResult(num_gts, assigned_gt_inds, max_overlaps, labels=assigned_labels)

        max_overlaps, argmax_overlaps = overlaps.max(dim=0)
        gt_max_overlaps, gt_argmax_overlaps = overlaps.max(dim=1)

        if isinstance(self.neg_iou_thr, (int, float)):
            assigned_gt_inds[(max_overlaps >= 0) & (max_overlaps < self.neg_iou_thr)] = 0
        else:
            lo, hi = self.neg_iou_thr
            assigned_gt_inds[(max_overlaps >= lo) & (max_overlaps < hi)] = 0

        pos_mask = max_overlaps >= self.pos_iou_thr
        assigned_gt_inds[pos_mask] = argmax_overlaps[pos_mask] + 1

        if self.match_low_quality:
            # (num_gts, num_priors): gt i claims prior j; the largest such i wins
            # (MMDetection loops over gts in order, later ones overwriting)
            eligible = (gt_max_overlaps >= self.min_pos_iou)[:, None]
            if self.gt_max_assign_all:
                claims = (overlaps == gt_max_overlaps[:, None]) & eligible
            else:
                claims = torch.zeros_like(overlaps, dtype=torch.bool)
                claims[torch.arange(num_gts, device=overlaps.device), gt_argmax_overlaps] = True
                claims &= eligible
            gt_ids = torch.arange(1, num_gts + 1, device=overlaps.device)[:, None]
            claimant = (claims.long() * gt_ids).max(dim=0)[0]
            claimed = claimant > 0
            assigned_gt_inds[claimed] = claimant[claimed]

        assigned_labels = assigned_gt_inds.new_full((num_priors,), -1)
        pos = assigned_gt_inds > 0
        assigned_labels[pos] = gt_labels[assigned_gt_inds[pos] - 1]
        return AssignResult(num_gts, assigned_gt_inds, max_overlaps, labels=assigned_labels)
