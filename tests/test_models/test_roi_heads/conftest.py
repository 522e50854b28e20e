import pytest
import torch
from mmengine.structures import InstanceData

from mmft.registry import TASK_UTILS


@pytest.fixture
def sample_priors():
    """``f(priors, gt_bboxes, gt_labels, iou_thr=0.5) -> (SamplingResult, gt InstanceData)``:
    every prior sampled, IoU >= iou_thr positive, below negative, no gt added."""

    def sample(priors, gt_bboxes, gt_labels, iou_thr=0.5):
        assigner = TASK_UTILS.build(dict(type='MaxIoUAssigner', pos_iou_thr=iou_thr,
                                         neg_iou_thr=iou_thr, match_low_quality=False))
        sampler = TASK_UTILS.build(dict(type='RandomSampler', num=100, pos_fraction=1.0,
                                        add_gt_as_proposals=False))
        pred = InstanceData(priors=torch.tensor(priors, dtype=torch.float32).reshape(-1, 4))
        gt = InstanceData(bboxes=torch.tensor(gt_bboxes, dtype=torch.float32).reshape(-1, 4),
                          labels=torch.tensor(gt_labels, dtype=torch.long))
        return sampler.sample(assigner.assign(pred, gt), pred, gt), gt

    return sample
