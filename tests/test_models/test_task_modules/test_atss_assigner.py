"""ATSSAssigner on small cases worked out by hand; point priors and the distance coder."""
import torch
from mmengine.structures import InstanceData
from torchvision.ops import box_iou

from mmft.models.task_modules import ATSSAssigner, DistancePointBBoxCoder, MlvlPointGenerator


def _priors():
    # level 0: four 10 px boxes on a row; level 1: one 40 px box
    lvl0 = torch.tensor([[0., 0., 10., 10.], [10., 0., 20., 10.], [20., 0., 30., 10.],
                         [30., 0., 40., 10.]])
    lvl1 = torch.tensor([[0., 0., 40., 40.]])
    return torch.cat([lvl0, lvl1]), [4, 1]


def test_topk_per_level_mean_plus_std_and_centre_inside():
    priors, per_level = _priors()
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 10., 10.]]), labels=torch.tensor([3]))
    result = ATSSAssigner(topk=2).assign(InstanceData(priors=priors), per_level, gt)
    # candidates: priors 0, 1 (closest centres on level 0) and 4 (the only one on level 1);
    # IoUs 1, 0, 1/16: mean + std = 0.354 + 0.560 = 0.914, so only prior 0 passes
    assert result.gt_inds.tolist() == [1, 0, 0, 0, 0]
    assert result.labels.tolist() == [3, -1, -1, -1, -1]


def _reference(priors, per_level, gts, topk):
    """ATSS written as loops over gts and priors, from the paper's algorithm."""
    iou = box_iou(priors, gts)
    centres = (priors[:, :2] + priors[:, 2:]) / 2
    best = {}
    for g, box in enumerate(gts):
        gc = (box[:2] + box[2:]) / 2
        cands, start = [], 0
        for n in per_level:
            d = [(float(torch.dist(centres[i], gc)), i) for i in range(start, start + n)]
            cands += [i for _, i in sorted(d)[:min(topk, n)]]
            start += n
        vals = torch.tensor([float(iou[i, g]) for i in cands])
        thr = vals.mean() + vals.std()
        for i in cands:
            x, y = centres[i].tolist()
            inside = min(x - box[0], y - box[1], box[2] - x, box[3] - y) > 0.01
            if iou[i, g] >= thr and inside and (i not in best or iou[i, g] > best[i][1]):
                best[i] = (g, float(iou[i, g]))
    return [best[i][0] + 1 if i in best else 0 for i in range(len(priors))]


def test_matches_a_loop_reference_on_random_boxes():
    gen = torch.Generator().manual_seed(0)
    for trial in range(5):
        per_level = [30, 12, 5]
        xy = torch.rand(sum(per_level), 2, generator=gen) * 80
        wh = torch.cat([torch.full((30, 2), 12.), torch.full((12, 2), 24.), torch.full((5, 2), 48.)])
        priors = torch.cat([xy - wh / 2, xy + wh / 2], 1)
        gxy = torch.rand(4, 2, generator=gen) * 70 + 5
        gwh = torch.rand(4, 2, generator=gen) * 30 + 8
        gts = torch.cat([gxy - gwh / 2, gxy + gwh / 2], 1)
        result = ATSSAssigner(topk=4).assign(
            InstanceData(priors=priors), per_level,
            InstanceData(bboxes=gts, labels=torch.arange(4)))
        assert result.gt_inds.tolist() == _reference(priors, per_level, gts, 4), trial
        assert (result.gt_inds > 0).any()


def test_ignored_boxes():
    priors, per_level = _priors()
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 10., 10.]]), labels=torch.tensor([3]))
    ignore = InstanceData(bboxes=torch.tensor([[29., 0., 41., 10.]]))
    result = ATSSAssigner(topk=2, ignore_iof_thr=0.5).assign(
        InstanceData(priors=priors), per_level, gt, ignore)
    assert result.gt_inds.tolist() == [1, 0, 0, -1, 0]


def test_no_gt_all_negative():
    priors, per_level = _priors()
    empty = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    result = ATSSAssigner(topk=9).assign(InstanceData(priors=priors), per_level, empty)
    assert result.gt_inds.tolist() == [0] * 5


def test_points_and_distance_coder():
    gen = MlvlPointGenerator([8, 16])
    pts = gen.grid_priors([(2, 3), (1, 2)])
    assert pts[0].tolist() == [[4, 4], [12, 4], [20, 4], [4, 12], [12, 12], [20, 12]]
    assert pts[1].tolist() == [[8, 8], [24, 8]]
    assert gen.grid_priors([(1, 1), (1, 1)], with_stride=True)[1].tolist() == [[8, 8, 16, 16]]
    coder = DistancePointBBoxCoder()
    points = torch.tensor([[10., 10.], [5., 5.]])
    boxes = torch.tensor([[0., 2., 30., 14.], [1., 1., 9., 20.]])
    dist = coder.encode(points, boxes)
    assert dist.tolist() == [[10, 8, 20, 4], [4, 4, 4, 15]]
    assert torch.equal(coder.decode(points, dist), boxes)
    assert coder.decode(points, dist, max_shape=(16, 25)).tolist()[0] == [0, 2, 25, 14]
