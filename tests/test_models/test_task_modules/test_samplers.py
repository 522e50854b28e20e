import torch
from mmengine.structures import InstanceData

from mmft.models.task_modules import AssignResult, PseudoSampler, RandomSampler
from mmft.registry import TASK_UTILS


def _assign(num_pos=30, num_neg=100, num_ignore=10):
    gt_inds = torch.cat([torch.full((num_pos,), 2), torch.zeros(num_neg, dtype=torch.long),
                         torch.full((num_ignore,), -1)])
    labels = torch.where(gt_inds > 0, torch.tensor(5), torch.tensor(-1))
    return AssignResult(2, gt_inds, torch.rand(len(gt_inds)), labels)


def _instances(n):
    xy = torch.rand(n, 2) * 50
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 5., 5.], [10., 10., 30., 30.]]),
                      labels=torch.tensor([1, 5]))
    return InstanceData(priors=torch.cat([xy, xy + 5], 1)), gt


def test_random_sampler_counts_and_fields():
    torch.manual_seed(0)
    sampler = TASK_UTILS.build(dict(type='RandomSampler', num=40, pos_fraction=0.25,
                                    add_gt_as_proposals=False))
    pred, gt = _instances(140)
    res = sampler.sample(_assign(), pred, gt)
    assert res.pos_inds.numel() == 10 and res.neg_inds.numel() == 30
    assert (res.pos_inds < 30).all() and ((res.neg_inds >= 30) & (res.neg_inds < 130)).all()
    torch.testing.assert_close(res.pos_priors, pred.priors[res.pos_inds])
    assert res.pos_gt_bboxes.tolist() == [[10., 10., 30., 30.]] * 10
    assert res.pos_gt_labels.tolist() == [5] * 10 and res.pos_assigned_gt_inds.tolist() == [1] * 10
    assert res.priors.shape == (40, 4) and res.avg_factor == 40
    torch.testing.assert_close(res.bboxes[:10], res.pos_priors)


def test_add_gt_as_proposals_and_neg_pos_ub():
    sampler = RandomSampler(num=64, pos_fraction=0.5, neg_pos_ub=2, add_gt_as_proposals=True)
    pred, gt = _instances(140)
    res = sampler.sample(_assign(num_pos=3), pred, gt)
    # 3 assigned + 2 gts = 5 positives, at most 2 * 5 negatives
    assert res.pos_inds.numel() == 5 and res.neg_inds.numel() == 10
    assert res.pos_is_gt.sum() == 2
    assert res.pos_gt_labels[:2].tolist() == [1, 5]  # the gts themselves come first


def test_no_gt_all_negatives_and_pseudo_sampler():
    sampler = RandomSampler(num=16, pos_fraction=0.5)
    pred, _ = _instances(20)
    empty = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    assign = AssignResult(0, torch.zeros(20, dtype=torch.long), torch.zeros(20),
                          torch.full((20,), -1))
    res = sampler.sample(assign, pred, empty)
    assert res.pos_inds.numel() == 0 and res.neg_inds.numel() == 16
    assert res.pos_gt_bboxes.shape == (0, 4) and res.avg_factor == 1 + 16

    pred, gt = _instances(140)
    res = PseudoSampler().sample(_assign(), pred, gt)
    assert res.pos_inds.numel() == 30 and res.neg_inds.numel() == 100 and res.avg_factor == 30
