"""SimOTAAssigner on small cases whose costs are computed here from the formula."""
import math

import pytest
import torch
from mmengine.structures import InstanceData

from mmft.models.task_modules import SimOTAAssigner
from mmft.structures import bbox_overlaps


def _priors(points, stride=8.):
    return torch.tensor([[x, y, stride, stride] for x, y in points])


def _bce(p, y):
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_candidates_costs_and_dynamic_k():
    # gt (0, 0, 40, 40), centre (20, 20), centre square +-2.5 * 8 = (0, 0)-(40, 40);
    # prior 3 (44, 20) is outside the box but inside no square either -> not a candidate;
    # prior 2 (38, 38) is inside both
    priors = _priors([(10, 10), (20, 20), (38, 38), (44, 20)])
    boxes = torch.tensor([[0., 0., 36., 36.], [4., 4., 40., 40.], [10., 10., 40., 40.],
                          [30., 10., 50., 30.]])
    scores = torch.tensor([[0.2, 0.7], [0.6, 0.3], [0.9, 0.9], [0.5, 0.5]])
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 40., 40.]]), labels=torch.tensor([1]))
    res = SimOTAAssigner(center_radius=2.5, candidate_topk=10).assign(
        InstanceData(priors=priors, bboxes=boxes, scores=scores), gt)
    ious = bbox_overlaps(boxes[:3], gt.bboxes)[:, 0]
    k = max(int(ious.sum()), 1)
    costs = [_bce(scores[i, 0].item(), 0) + _bce(scores[i, 1].item(), 1)
             - 3 * math.log(ious[i].item() + 1e-7) for i in range(3)]
    chosen = sorted(range(3), key=lambda i: costs[i])[:k]
    # IoUs 0.81, 0.81, 0.5625: k = 2; costs 1.21, 2.75, 4.14
    assert k == 2 and chosen == [0, 1]
    assert res.gt_inds.tolist() == [1, 1, 0, 0]
    assert res.labels.tolist() == [1, 1, -1, -1]
    assert torch.allclose(res.max_overlaps[:2], ious[:2])
    assert (res.max_overlaps[2:] == -1e5).all()


def test_a_prior_outside_box_or_centre_square_pays_the_big_cost():
    # gt (0, 0, 64, 16): centre (32, 8), square +-2.5 * 4 = x 22..42, y -2..18.
    # prior 0 (4, 8) is in the box but outside the square: candidate, but INF cost;
    # prior 1 (32, 8) is in both -> the only positive even with a worse box
    priors = _priors([(4, 8), (32, 8)], stride=4.)
    boxes = torch.tensor([[0., 0., 64., 16.], [20., 2., 40., 14.]])
    scores = torch.full((2, 1), 0.5)
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 64., 16.]]), labels=torch.tensor([0]))
    res = SimOTAAssigner().assign(InstanceData(priors=priors, bboxes=boxes, scores=scores), gt)
    # dynamic k = int(1.0 + 0.234) = 1: the cheapest is the in-both prior
    assert res.gt_inds.tolist() == [0, 1]


def test_each_gt_takes_its_own_cheapest_prior():
    priors = _priors([(16, 16), (20, 16)])
    boxes = torch.tensor([[0., 0., 32., 32.], [8., 0., 40., 32.]])
    scores = torch.tensor([[0.9, 0.1], [0.9, 0.1]])
    gts = InstanceData(bboxes=torch.tensor([[0., 0., 32., 32.], [8., 0., 40., 32.]]),
                       labels=torch.tensor([0, 1]))
    res = SimOTAAssigner().assign(InstanceData(priors=priors, bboxes=boxes, scores=scores), gts)
    # k = int(1 + 0.6) = 1 for both; gt 1's class cost is the same on both priors, so the
    # box that matches it exactly wins
    assert res.gt_inds.tolist() == [1, 2]
    assert res.labels.tolist() == [0, 1]


def test_a_prior_wanted_by_two_gts_goes_to_the_cheapest():
    priors = _priors([(16, 16), (28, 16)])
    boxes = torch.tensor([[1., 0., 33., 32.], [20., 8., 30., 24.]])
    scores = torch.full((2, 1), 0.5)
    gts = InstanceData(bboxes=torch.tensor([[0., 0., 32., 32.], [4., 0., 36., 32.]]),
                       labels=torch.tensor([0, 0]))
    res = SimOTAAssigner().assign(InstanceData(priors=priors, bboxes=boxes, scores=scores), gts)
    # both gts (k = 1) want box 0 (IoUs 0.939 and 0.829): it goes to gt 0, whose IoU cost is
    # lower, and gt 1 is left without a positive
    assert res.gt_inds.tolist() == [1, 0]
    assert res.max_overlaps[0].item() == pytest.approx(992 / 1056)


def test_no_gt_or_no_candidate():
    priors = _priors([(100, 100)])
    boxes = torch.tensor([[90., 90., 110., 110.]])
    pred = InstanceData(priors=priors, bboxes=boxes, scores=torch.full((1, 2), 0.5))
    empty = InstanceData(bboxes=torch.zeros((0, 4)), labels=torch.zeros((0,), dtype=torch.long))
    assert SimOTAAssigner().assign(pred, empty).gt_inds.tolist() == [0]
    far = InstanceData(bboxes=torch.tensor([[0., 0., 10., 10.]]), labels=torch.tensor([0]))
    res = SimOTAAssigner().assign(pred, far)
    assert res.gt_inds.tolist() == [0] and res.labels.tolist() == [-1]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='center_radius'):
        SimOTAAssigner(center_radius=0)
    pred = InstanceData(priors=torch.zeros(1, 2), bboxes=torch.zeros(1, 4),
                        scores=torch.zeros(1, 1))
    gt = InstanceData(bboxes=torch.ones(1, 4), labels=torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match='with_stride=True'):
        SimOTAAssigner().assign(pred, gt)
