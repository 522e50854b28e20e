"""Pick positive and negative priors for training from an ``AssignResult``.

``SamplingResult`` orders sampled priors positives first:
``priors == cat([pos_priors, neg_priors])``. With ``add_gt_as_proposals`` the
gt boxes are prepended to the candidates, so indices count them first and
``pos_is_gt`` marks them.
"""

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.registry import TASK_UTILS
from .assigners import AssignResult


class SamplingResult:
    """Sampled positives / negatives of one image (MMDetection 3.x fields).

    Attributes:
        pos_inds, neg_inds: indices into the candidate priors.
        pos_priors, neg_priors: ``(P, 4)`` / ``(Q, 4)``.
        pos_gt_bboxes: ``(P, 4)`` the gt each positive is assigned to.
        pos_gt_labels: ``(P,)``.
        pos_assigned_gt_inds: ``(P,)`` 0-based gt index.
        pos_is_gt: ``(P,)`` uint8, 1 where the positive is a gt box itself.
        avg_factor: loss normaliser, ``max(P, 1) + max(Q, 1)`` (or ``max(P, 1)``).
    """

    def __init__(self, pos_inds: Tensor, neg_inds: Tensor, priors: Tensor, gt_bboxes: Tensor,
                 assign_result: AssignResult, gt_flags: Tensor,
                 avg_factor_with_neg: bool = True) -> None:
        self.pos_inds = pos_inds
        self.neg_inds = neg_inds
        self.num_pos = max(pos_inds.numel(), 1)
        self.num_neg = max(neg_inds.numel(), 1)
        self.avg_factor_with_neg = avg_factor_with_neg
        self.avg_factor = self.num_pos + self.num_neg if avg_factor_with_neg else self.num_pos
        self.pos_priors = priors[pos_inds]
        self.neg_priors = priors[neg_inds]
        self.pos_is_gt = gt_flags[pos_inds]
        self.num_gts = gt_bboxes.shape[0]
        self.pos_assigned_gt_inds = assign_result.gt_inds[pos_inds] - 1
        self.pos_gt_labels = assign_result.labels[pos_inds]
        if gt_bboxes.numel() == 0:
            if self.pos_assigned_gt_inds.numel() != 0:
                raise ValueError('SamplingResult: positives assigned but there are no gt boxes')
            self.pos_gt_bboxes = gt_bboxes.view(-1, 4)
        else:
            self.pos_gt_bboxes = gt_bboxes.view(-1, 4)[self.pos_assigned_gt_inds.long()]

    @property
    def priors(self) -> Tensor:
        """Sampled priors, positives first."""
        return torch.cat([self.pos_priors, self.neg_priors])

    @property
    def bboxes(self) -> Tensor:
        return self.priors

    @property
    def pos_bboxes(self) -> Tensor:
        return self.pos_priors

    @property
    def neg_bboxes(self) -> Tensor:
        return self.neg_priors

    def to(self, device) -> 'SamplingResult':
        for key, value in list(vars(self).items()):
            if isinstance(value, Tensor):
                setattr(self, key, value.to(device))
        return self

    @property
    def info(self) -> dict:
        return {'pos_inds': self.pos_inds, 'neg_inds': self.neg_inds,
                'pos_priors': self.pos_priors, 'neg_priors': self.neg_priors,
                'pos_is_gt': self.pos_is_gt, 'num_gts': self.num_gts,
                'pos_assigned_gt_inds': self.pos_assigned_gt_inds,
                'num_pos': self.num_pos, 'num_neg': self.num_neg,
                'avg_factor': self.avg_factor}

    def __repr__(self) -> str:
        return (f'<SamplingResult(num_pos={self.pos_inds.numel()}, '
                f'num_neg={self.neg_inds.numel()}, num_gts={self.num_gts})>')


@TASK_UTILS.register_module()
class RandomSampler:
    """Sample ``num`` priors at random, at most ``num * pos_fraction`` positives.

    Args:
        num: total samples per image.
        pos_fraction: upper bound of the positive share.
        neg_pos_ub: at most ``neg_pos_ub * max(num_pos, 1)`` negatives (-1: no bound).
        add_gt_as_proposals: add the gt boxes as candidate positives.
    """

    def __init__(self, num: int, pos_fraction: float, neg_pos_ub: int = -1,
                 add_gt_as_proposals: bool = True, **kwargs) -> None:
        if num <= 0 or not 0 <= pos_fraction <= 1:
            raise ValueError(f'RandomSampler needs num > 0 and 0 <= pos_fraction <= 1, got '
                             f'num={num}, pos_fraction={pos_fraction}')
        self.num = num
        self.pos_fraction = pos_fraction
        self.neg_pos_ub = neg_pos_ub
        self.add_gt_as_proposals = add_gt_as_proposals

    @staticmethod
    def random_choice(gallery: Tensor, num: int) -> Tensor:
        """``num`` distinct elements of ``gallery`` at random."""
        perm = torch.randperm(gallery.numel(), device=gallery.device)[:num]
        return gallery[perm]

    def _sample_pos(self, assign_result: AssignResult, num_expected: int) -> Tensor:
        pos_inds = torch.nonzero(assign_result.gt_inds > 0, as_tuple=False).view(-1)
        if pos_inds.numel() <= num_expected:
            return pos_inds
        return self.random_choice(pos_inds, num_expected)

    def _sample_neg(self, assign_result: AssignResult, num_expected: int) -> Tensor:
        neg_inds = torch.nonzero(assign_result.gt_inds == 0, as_tuple=False).view(-1)
        if neg_inds.numel() <= num_expected:
            return neg_inds
        return self.random_choice(neg_inds, num_expected)

    def sample(self, assign_result: AssignResult, pred_instances: InstanceData,
               gt_instances: InstanceData, **kwargs) -> SamplingResult:
        """Sample from ``pred_instances.priors`` (N, 4) given their assignment."""
        gt_bboxes = gt_instances.bboxes
        priors = pred_instances.priors
        gt_labels = gt_instances.labels
        if priors.dim() < 2:
            priors = priors[None, :]
        gt_flags = priors.new_zeros((priors.shape[0],), dtype=torch.uint8)
        if self.add_gt_as_proposals and len(gt_bboxes) > 0:
            priors = torch.cat([gt_bboxes.to(priors.dtype), priors], dim=0)
            assign_result.add_gt_(gt_labels)
            gt_flags = torch.cat([gt_flags.new_ones(gt_bboxes.shape[0]), gt_flags])

        num_expected_pos = int(self.num * self.pos_fraction)
        pos_inds = self._sample_pos(assign_result, num_expected_pos).unique()
        num_sampled_pos = pos_inds.numel()
        num_expected_neg = self.num - num_sampled_pos
        if self.neg_pos_ub >= 0:
            neg_upper_bound = int(self.neg_pos_ub * max(1, num_sampled_pos))
            num_expected_neg = min(num_expected_neg, neg_upper_bound)
        neg_inds = self._sample_neg(assign_result, num_expected_neg).unique()
        return SamplingResult(pos_inds, neg_inds, priors, gt_bboxes, assign_result, gt_flags)


@TASK_UTILS.register_module()
class PseudoSampler:
    """Take every positive and negative (for heads that weight all priors)."""

    def __init__(self, **kwargs) -> None:
        pass

    def sample(self, assign_result: AssignResult, pred_instances: InstanceData,
               gt_instances: InstanceData, **kwargs) -> SamplingResult:
        priors = pred_instances.priors
        pos_inds = torch.nonzero(assign_result.gt_inds > 0, as_tuple=False).view(-1).unique()
        neg_inds = torch.nonzero(assign_result.gt_inds == 0, as_tuple=False).view(-1).unique()
        gt_flags = priors.new_zeros(priors.shape[0], dtype=torch.uint8)
        return SamplingResult(pos_inds, neg_inds, priors, gt_instances.bboxes, assign_result,
                              gt_flags, avg_factor_with_neg=False)
