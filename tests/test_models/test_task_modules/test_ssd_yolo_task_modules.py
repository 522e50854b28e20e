"""SSD / YOLOv3 task utilities: anchors against torchvision's DefaultBoxGenerator and fixed
numbers, the YOLO coder and grid assigner on hand-worked cases, MSELoss."""
import math

import pytest
import torch
from mmengine.structures import InstanceData

from mmft.models.losses import MSELoss
from mmft.models.task_modules import (GridAssigner, SSDAnchorGenerator, YOLOAnchorGenerator,
                                      YOLOBBoxCoder)

SSD300_RATIOS = [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
SSD300_STRIDES = [8, 16, 32, 64, 100, 300]
SSD300_SIZES = [38, 19, 10, 5, 3, 1]


def _ssd300(**kwargs):
    return SSDAnchorGenerator(strides=SSD300_STRIDES, ratios=SSD300_RATIOS, scale_major=False,
                              input_size=300, basesize_ratio_range=(0.15, 0.9), **kwargs)


def _torchvision_ssd300_boxes(clip):
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
    gen = DefaultBoxGenerator(SSD300_RATIOS, scales=[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05],
                              steps=SSD300_STRIDES, clip=clip)
    boxes = gen._grid_default_boxes([(s, s) for s in SSD300_SIZES], [300, 300]) * 300
    return torch.cat([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], dim=1)


def test_ssd300_anchors_equal_torchvision_default_boxes():
    """torchvision's SSD300 boxes (scales 0.07 .. 1.05) are MMDetection's sizes 21 .. 315,
    in the same order per location; torchvision clips sizes to the image, mmft on request."""
    gen = _ssd300()
    assert gen.min_sizes == [21, 45, 99, 153, 207, 261]
    assert gen.max_sizes == [45, 99, 153, 207, 261, 315]
    assert gen.num_base_priors == [4, 6, 6, 6, 4, 4]
    ours = torch.cat(gen.grid_priors([(s, s) for s in SSD300_SIZES]))
    assert ours.shape == (8732, 4)
    torch.testing.assert_close(ours, _torchvision_ssd300_boxes(clip=False), atol=1e-3, rtol=0)
    clipped = torch.cat(_ssd300(clip_to_input=True).grid_priors([(s, s) for s in SSD300_SIZES]))
    torch.testing.assert_close(clipped, _torchvision_ssd300_boxes(clip=True), atol=1e-3, rtol=0)
    assert not torch.allclose(clipped, ours)


def test_ssd_base_anchors_fixed_numbers_and_ssd512_sizes():
    level0 = _ssd300().base_anchors[0]
    side2 = math.sqrt(21 * 45) / 2
    w, h = 21 * math.sqrt(2) / 2, 21 / math.sqrt(2) / 2
    expected = torch.tensor([[4 - 10.5, 4 - 10.5, 4 + 10.5, 4 + 10.5],
                             [4 - side2, 4 - side2, 4 + side2, 4 + side2],
                             [4 - w, 4 - h, 4 + w, 4 + h],     # ratio h/w = 1/2 first
                             [4 - h, 4 - w, 4 + h, 4 + w]])
    torch.testing.assert_close(level0, expected)
    ssd512 = SSDAnchorGenerator(strides=[8, 16, 32, 64, 128, 256, 512],
                                ratios=[[2], [2, 3], [2, 3], [2, 3], [2, 3], [2], [2]],
                                input_size=512, basesize_ratio_range=(0.1, 0.9),
                                scale_major=False)
    # 512 * {4, 10, 26, 42, 58, 74, 90} / 100 floored, max = next one (106 for the last)
    assert ssd512.min_sizes == [20, 51, 133, 215, 296, 378, 460]
    assert ssd512.max_sizes == [51, 133, 215, 296, 378, 460, 542]
    with pytest.raises(ValueError, match='give min_sizes and max_sizes'):
        SSDAnchorGenerator(strides=[8, 16, 32], ratios=[[2]] * 3, input_size=400)
    with pytest.raises(ValueError, match='one list of ratios per level'):
        SSDAnchorGenerator(strides=[8, 16], ratios=[[2]])


def test_yolo_anchors_and_responsible_flags():
    gen = YOLOAnchorGenerator(strides=[32, 16], base_sizes=[[(116, 90), (156, 198)],
                                                            [(30, 61), (62, 45)]])
    torch.testing.assert_close(gen.base_anchors[0][0], torch.tensor([-42., -29., 74., 61.]))
    priors = gen.grid_priors([(2, 2), (4, 4)])
    assert [p.shape[0] for p in priors] == [8, 32]
    # prior 2 = location (row 0, col 1), anchor 0: shifted by one stride in x
    torch.testing.assert_close(priors[0][2], torch.tensor([-10., -29., 106., 61.]))
    flags = gen.responsible_flags([(2, 2), (4, 4)], torch.tensor([[40., 36., 60., 44.]]))
    # centre (50, 40): cell (1, 1) of the 2x2 map (priors 6, 7), cell (2, 3) of the 4x4 one
    assert flags[0].nonzero().view(-1).tolist() == [6, 7]
    assert flags[1].nonzero().view(-1).tolist() == [2 * (2 * 4 + 3), 2 * (2 * 4 + 3) + 1]
    with pytest.raises(ValueError, match='same number of anchors'):
        YOLOAnchorGenerator(strides=[32, 16], base_sizes=[[(1, 1)], [(1, 1), (2, 2)]])


def test_yolo_coder_encode_decode():
    coder = YOLOBBoxCoder()
    prior = torch.tensor([[0., 0., 32., 32.]])
    gt = torch.tensor([[8., 4., 40., 52.]])  # centre (24, 28), size 32 x 48
    target = coder.encode(prior, gt, torch.tensor([32.]))
    torch.testing.assert_close(target, torch.tensor([[0.75, 0.875, 0.0, math.log(1.5)]]))
    torch.testing.assert_close(coder.decode(prior, target, 32), gt)
    far = coder.encode(prior, torch.tensor([[100., 100., 132., 132.]]), 32)
    assert far[0, 0] == pytest.approx(1 - 1e-6) and far[0, 1] == pytest.approx(1 - 1e-6)
    with pytest.raises(ValueError, match=r'two \(N, 4\) tensors'):
        coder.encode(prior, torch.zeros(2, 4), 32)


def test_grid_assigner_only_in_the_responsible_cell():
    priors = torch.tensor([[0., 0., 10., 10.], [0., 0., 12., 12.], [20., 20., 30., 30.],
                           [1., 1., 11., 11.]])
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 10., 10.]]), labels=torch.tensor([4]))
    flags = torch.tensor([0, 1, 0, 1], dtype=torch.uint8)
    result = GridAssigner(pos_iou_thr=0.5, neg_iou_thr=0.5).assign(
        InstanceData(priors=priors, responsible_flags=flags), gt)
    # prior 0 is the exact box but not responsible: with IoU 1 > neg_iou_thr it is ignored;
    # prior 3 (IoU 81/119) is the best responsible one; prior 1 (IoU 100/144) also passes
    assert result.gt_inds.tolist() == [-1, 1, 0, 1]
    assert result.labels.tolist() == [-1, 4, -1, 4]
    empty = GridAssigner(0.5, 0.5).assign(
        InstanceData(priors=priors, responsible_flags=flags),
        InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long)))
    assert empty.gt_inds.tolist() == [0, 0, 0, 0]
    with pytest.raises(KeyError, match='responsible_flags'):
        GridAssigner(0.5, 0.5).assign(InstanceData(priors=priors), gt)


def test_mse_loss_weights_and_reductions():
    pred, target = torch.tensor([1., 2., 4.]), torch.tensor([0., 0., 1.])
    assert MSELoss()(pred, target).item() == pytest.approx((1 + 4 + 9) / 3)
    loss = MSELoss(reduction='sum', loss_weight=2.0)(pred, target, weight=torch.tensor([1., 0., 1.]))
    assert loss.item() == pytest.approx(2 * (1 + 9))
    assert MSELoss()(pred, target, avg_factor=2).item() == pytest.approx(14 / 2)
