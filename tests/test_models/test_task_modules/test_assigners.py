import torch
from mmengine.structures import InstanceData

from mmft.models.task_modules import MaxIoUAssigner
from mmft.registry import TASK_UTILS

PRIORS = torch.tensor([
    [0., 0., 10., 10.],    # 0: IoU 1 with gt0
    [0., 0., 10., 8.],     # 1: IoU .8 with gt0
    [5., 0., 15., 10.],    # 2: IoU 1/3 with gt0
    [30., 30., 40., 40.],  # 3: no overlap -> negative
    [20., 0., 30., 10.],   # 4: IoU .5 with gt1 (gt1's best) -> low-quality positive
    [50., 50., 60., 60.],  # 5: inside the ignore region
])
GT = InstanceData(bboxes=torch.tensor([[0., 0., 10., 10.], [20., 0., 40., 10.]]),
                  labels=torch.tensor([3, 7]))


def test_thresholds_low_quality_and_labels():
    assigner = TASK_UTILS.build(dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3,
                                     min_pos_iou=0.3))
    res = assigner.assign(InstanceData(priors=PRIORS), GT)
    assert res.num_gts == 2
    assert res.gt_inds.tolist() == [1, 1, -1, 0, 2, 0]
    assert res.labels.tolist() == [3, 3, -1, -1, 7, -1]
    torch.testing.assert_close(res.max_overlaps,
                               torch.tensor([1., .8, 1 / 3, 0., .5, 0.]))


def test_ignore_boxes_and_low_quality_off():
    assigner = MaxIoUAssigner(pos_iou_thr=0.7, neg_iou_thr=0.3, ignore_iof_thr=0.5,
                              match_low_quality=False)
    ignore = InstanceData(bboxes=torch.tensor([[45., 45., 70., 70.]]))
    res = assigner.assign(InstanceData(priors=PRIORS), GT, ignore)
    assert res.gt_inds.tolist() == [1, 1, -1, 0, -1, -1]
    # empty ignore instances change nothing
    res = assigner.assign(InstanceData(priors=PRIORS), GT,
                          InstanceData(bboxes=torch.zeros(0, 4)))
    assert res.gt_inds.tolist() == [1, 1, -1, 0, -1, 0]


def test_neg_range_and_gt_max_assign_all():
    priors = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 10.], [0., 0., 4., 10.]])
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 10., 10.]]), labels=torch.tensor([0]))
    res = MaxIoUAssigner(pos_iou_thr=1.1, neg_iou_thr=(0.1, 0.5)).assign(
        InstanceData(priors=priors), gt)
    assert res.gt_inds.tolist() == [1, 1, 0]  # both ties claimed; IoU .4 in the neg range
    res = MaxIoUAssigner(pos_iou_thr=1.1, neg_iou_thr=(0.1, 0.5), gt_max_assign_all=False).assign(
        InstanceData(priors=priors), gt)
    assert res.gt_inds.tolist() == [1, -1, 0]


def test_empty_gt_and_empty_priors():
    assigner = MaxIoUAssigner(pos_iou_thr=0.5, neg_iou_thr=0.5)
    empty_gt = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    res = assigner.assign(InstanceData(priors=PRIORS), empty_gt)
    assert res.gt_inds.tolist() == [0] * 6 and res.labels.tolist() == [-1] * 6
    res = assigner.assign(InstanceData(priors=torch.zeros(0, 4)), GT)
    assert res.gt_inds.shape == (0,) and res.num_gts == 2


def _reference_low_quality(overlaps, pos_thr, neg_thr, min_pos_iou, assign_all):
    """The sequential rule written out as a loop over gts (later gts win)."""
    max_ov, argmax = overlaps.max(dim=0)
    gt_max, gt_argmax = overlaps.max(dim=1)
    inds = torch.full((overlaps.size(1),), -1, dtype=torch.long)
    inds[(max_ov >= 0) & (max_ov < neg_thr)] = 0
    inds[max_ov >= pos_thr] = argmax[max_ov >= pos_thr] + 1
    for i in range(overlaps.size(0)):
        if gt_max[i] >= min_pos_iou:
            if assign_all:
                inds[overlaps[i] == gt_max[i]] = i + 1
            else:
                inds[gt_argmax[i]] = i + 1
    return inds


def test_vectorised_low_quality_matches_sequential_rule():
    torch.manual_seed(0)
    for assign_all in (True, False):
        for _ in range(5):
            # quantised overlaps create many ties between gts and between priors
            overlaps = (torch.rand(6, 40) * 10).floor() / 10
            assigner = MaxIoUAssigner(pos_iou_thr=0.8, neg_iou_thr=0.3, min_pos_iou=0.2,
                                      gt_max_assign_all=assign_all)
            labels = torch.arange(6) * 10
            res = assigner.assign_wrt_overlaps(overlaps, labels)
            expected = _reference_low_quality(overlaps, 0.8, 0.3, 0.2, assign_all)
            assert res.gt_inds.tolist() == expected.tolist()
            pos = expected > 0
            assert res.labels[pos].tolist() == ((expected[pos] - 1) * 10).tolist()
