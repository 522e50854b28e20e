"""What every RoI head shares: branch flags, proposal sampling and the predict flow.

``StandardRoIHead`` (one box head) and ``CascadeRoIHead`` (a box head per stage) differ in
how many box heads run and how their outputs combine (``predict_bbox``, ``predict_mask``,
``loss``); assigning and sampling proposals and the order of the branches at test time are
the same, and live here once.
"""
from typing import List, Optional, Sequence

import torch
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.structures import SampleList
from ..task_modules import SamplingResult


def _boxes_and_labels(gt: Optional[InstanceData], like: Tensor) -> InstanceData:
    """``gt`` itself, or an empty gt when the sample has no annotation fields."""
    if gt is not None and 'bboxes' in gt and 'labels' in gt:
        return gt
    return InstanceData(bboxes=like.new_zeros((0, 4)),
                        labels=torch.zeros((0,), dtype=torch.long, device=like.device))


def sample_proposals(proposals: Sequence[Tensor], batch_gt_instances: List[InstanceData],
                     batch_gt_instances_ignore: List[Optional[InstanceData]], assigner,
                     sampler) -> List[SamplingResult]:
    """Assign each image's proposal boxes to its gt boxes and sample RoIs from them.

    Proposals are detached (no gradient flows into the RPN or an earlier stage through the
    RoI targets); an image without gt contributes negatives only.
    """
    results = []
    for boxes, gt, ignored in zip(proposals, batch_gt_instances, batch_gt_instances_ignore):
        # a new InstanceData: the caller's proposals stay as they are
        priors = InstanceData(priors=boxes.detach())
        gt = _boxes_and_labels(gt, priors.priors)
        assign_result = assigner.assign(priors, gt, ignored)
        results.append(sampler.sample(assign_result, priors, gt))
    return results


class BaseRoIHead(BaseModule):
    """Flags, input checks and the test-time flow shared by the RoI heads."""

    @property
    def with_bbox(self) -> bool:
        return getattr(self, 'bbox_head', None) is not None

    @property
    def with_mask(self) -> bool:
        return getattr(self, 'mask_head', None) is not None

    @property
    def with_shared_head(self) -> bool:
        return False  # C4 shared heads are refused at construction

    def _check_loss_inputs(self, rpn_results_list: List[InstanceData],
                           batch_data_samples: SampleList, can_sample: bool) -> None:
        name = type(self).__name__
        if len(rpn_results_list) != len(batch_data_samples):
            raise ValueError(f'{name}.loss got {len(rpn_results_list)} proposal lists '
                             f'for {len(batch_data_samples)} samples')
        if not can_sample:
            raise RuntimeError(f'{name}.loss needs train_cfg (assigner and sampler, one per '
                               'stage for a cascade); build the head with train_cfg set')

    def predict(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: SampleList, rescale: bool = False) -> List[InstanceData]:
        """Detections per image: ``bboxes``, ``scores``, ``labels`` (and ``masks``).

        With ``rescale`` boxes and masks are in ``ori_shape`` pixels, else in
        ``img_shape`` pixels.
        """
        name = type(self).__name__
        if not self.with_bbox:
            raise RuntimeError(f'{name}.predict needs a bbox_head')
        if self.test_cfg is None:
            raise ValueError(f'{name}.predict needs test_cfg (score_thr, nms, '
                             'max_per_img[, mask_thr_binary])')
        batch_img_metas = [data_sample.metainfo for data_sample in batch_data_samples]
        # the mask branch reads boxes in img_shape pixels and rescales boxes and masks itself
        results_list = self.predict_bbox(x, batch_img_metas, rpn_results_list, self.test_cfg,
                                         rescale=rescale and not self.with_mask)
        if self.with_mask:
            results_list = self.predict_mask(x, batch_img_metas, results_list, rescale=rescale)
        return results_list
