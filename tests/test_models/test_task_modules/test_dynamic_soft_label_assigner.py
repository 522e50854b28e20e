"""DynamicSoftLabelAssigner on small cases whose costs are computed here from the formula."""
import math

import torch
from mmengine.structures import InstanceData

from mmft.models.task_modules import DynamicSoftLabelAssigner
from mmft.structures import bbox_overlaps


def _priors(points, stride=8.):
    return torch.tensor([[x, y, stride, stride] for x, y in points])


def test_only_points_inside_a_gt_are_candidates_and_the_cheapest_wins():
    # gt 0 at (0, 0, 32, 32); four priors: three inside it, one outside every gt
    priors = _priors([(8, 8), (16, 16), (24, 24), (48, 48)])
    boxes = torch.tensor([[0., 0., 30., 30.], [2., 2., 20., 20.], [20., 20., 28., 28.],
                          [40., 40., 56., 56.]])
    scores = torch.zeros(4, 3)
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 32., 32.]]), labels=torch.tensor([2]))
    res = DynamicSoftLabelAssigner(topk=13).assign(
        InstanceData(priors=priors, bboxes=boxes, scores=scores), gt)
    ious = bbox_overlaps(boxes[:3], gt.bboxes)[:, 0]
    # dynamic k = int(sum of the (at most 13) candidate IoUs)
    k = max(int(ious.sum()), 1)
    # cost per candidate, by the formula
    costs = []
    for i in range(3):
        dist = math.dist(priors[i, :2].tolist(), [16., 16.]) / 8
        p = 0.5  # sigmoid(0)
        y = ious[i].item()
        cls = -(y * math.log(p) + (1 - y) * math.log(1 - p)) * abs(y - p) ** 2 + \
            2 * (-math.log(1 - p)) * p ** 2  # the two other classes have target 0
        costs.append(cls - 3 * math.log(y + 1e-7) + 10 ** (dist - 3))
    chosen = sorted(range(3), key=lambda i: costs[i])[:k]
    assert res.gt_inds.tolist() == [1 if i in chosen else 0 for i in range(4)]
    assert res.labels.tolist() == [2 if i in chosen else -1 for i in range(4)]
    for i in chosen:
        assert abs(res.max_overlaps[i].item() - ious[i].item()) < 1e-6


def test_a_prior_wanted_by_two_gts_goes_to_the_cheaper():
    priors = _priors([(16, 16)])
    boxes = torch.tensor([[0., 0., 32., 32.]])
    gts = InstanceData(bboxes=torch.tensor([[0., 0., 32., 32.], [8., 8., 40., 40.]]),
                       labels=torch.tensor([0, 1]))
    res = DynamicSoftLabelAssigner().assign(
        InstanceData(priors=priors, bboxes=boxes, scores=torch.zeros(1, 2)), gts)
    assert res.gt_inds.tolist() == [1]  # IoU 1 with gt 0: far cheaper than gt 1
    assert res.max_overlaps.tolist() == [1.0]


def test_no_gt_or_no_candidate_gives_all_negative():
    priors = _priors([(8, 8), (40, 40)])
    pred = InstanceData(priors=priors, bboxes=torch.tensor([[0., 0., 16., 16.]] * 2),
                        scores=torch.zeros(2, 2))
    empty = InstanceData(bboxes=torch.zeros((0, 4)), labels=torch.zeros((0,), dtype=torch.long))
    res = DynamicSoftLabelAssigner().assign(pred, empty)
    assert res.gt_inds.tolist() == [0, 0] and res.labels.tolist() == [-1, -1]
    far = InstanceData(bboxes=torch.tensor([[100., 100., 120., 120.]]),
                       labels=torch.tensor([0]))
    res = DynamicSoftLabelAssigner().assign(pred, far)
    assert res.gt_inds.tolist() == [0, 0]
