import math

import pytest
import torch

from mmft.models.roi_heads import multiclass_nms
from mmft.registry import MODELS

NMS = dict(type='nms', iou_threshold=0.5)
TRAIN_CFG = dict(pos_weight=-1)


def _head(**overrides):
    cfg = dict(type='Shared2FCBBoxHead', in_channels=8, fc_out_channels=16, roi_feat_size=7,
               num_classes=3,
               bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                               target_stds=[0.1, 0.1, 0.2, 0.2]),
               loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
               loss_bbox=dict(type='L1Loss', loss_weight=1.0))
    cfg.update(overrides)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def test_keys_shapes_and_init_follow_mmdetection():
    head = _head()
    assert {k: tuple(v.shape) for k, v in head.state_dict().items()} == {
        'fc_cls.weight': (4, 16), 'fc_cls.bias': (4,), 'fc_reg.weight': (12, 16),
        'fc_reg.bias': (12,), 'shared_fcs.0.weight': (16, 8 * 49), 'shared_fcs.0.bias': (16,),
        'shared_fcs.1.weight': (16, 16), 'shared_fcs.1.bias': (16,)}
    cls_score, bbox_pred = head(torch.randn(5, 8, 7, 7))
    assert cls_score.shape == (5, 4) and bbox_pred.shape == (5, 12)
    assert not head.fc_cls.bias.any() and not head.fc_reg.bias.any()
    big = _head(in_channels=16, fc_out_channels=512)  # enough weights for a stable std
    assert 0.005 < big.fc_cls.weight.std() < 0.02 and 0.0005 < big.fc_reg.weight.std() < 0.002
    bound = (6 / (16 * 49 + 512)) ** 0.5  # Xavier uniform
    assert big.shared_fcs[0].weight.abs().max() <= bound and not big.shared_fcs[0].bias.any()

    agnostic = _head(reg_class_agnostic=True)
    assert agnostic.fc_reg.weight.shape == (4, 16)
    conv = _head(type='Shared4Conv1FCBBoxHead', conv_out_channels=8)
    assert conv.state_dict()['shared_convs.3.conv.weight'].shape == (8, 8, 3, 3)
    assert conv(torch.randn(2, 8, 7, 7))[1].shape == (2, 12)


def test_targets_put_background_last_and_encode_positives(sample_priors):
    head = _head()
    gts = [[10, 10, 50, 50], [60, 60, 100, 90]]
    res, _ = sample_priors([[12, 10, 50, 52], [0, 0, 5, 5], [60, 62, 98, 90]], gts, [2, 0])
    labels, label_weights, bbox_targets, bbox_weights = head.get_targets([res], TRAIN_CFG)
    assert labels.tolist() == [2, 0, 3]  # positives first; background is num_classes
    assert label_weights.tolist() == [1, 1, 1]
    expected = head.bbox_coder.encode(res.pos_priors, torch.tensor(gts, dtype=torch.float32)[
        res.pos_assigned_gt_inds])
    torch.testing.assert_close(bbox_targets[:2], expected)
    assert bbox_weights.tolist() == [[1] * 4, [1] * 4, [0] * 4]
    weighted = head.get_targets([res], dict(pos_weight=2.0), concat=False)[1]
    assert weighted[0].tolist() == [2, 2, 1]


def test_loss_is_zero_for_perfect_predictions_and_reads_the_label_columns(sample_priors):
    head = _head()
    res, _ = sample_priors([[12, 10, 50, 52], [0, 0, 5, 5]], [[10, 10, 50, 50]], [1])
    labels, _, bbox_targets, _ = head.get_targets([res], TRAIN_CFG)
    cls_score = torch.full((2, 4), -20.)
    cls_score[torch.arange(2), labels] = 20.
    bbox_pred = torch.randn(2, 12)
    bbox_pred[0, 4:8] = bbox_targets[0]  # class 1's columns
    rois = torch.cat([torch.zeros(2, 1), res.priors], dim=1)
    out = head.loss_and_target(cls_score, bbox_pred, rois, [res], TRAIN_CFG)
    losses = out['loss_bbox']
    assert set(losses) == {'loss_cls', 'acc', 'loss_bbox'}
    assert losses['loss_cls'] < 1e-6 and losses['loss_bbox'] < 1e-6 and losses['acc'] == 100
    assert len(out['bbox_targets']) == 4


def test_losses_without_positives_or_rois_are_finite_zeros(sample_priors):
    head = _head()
    res, _ = sample_priors([[0, 0, 5, 5], [40, 40, 60, 70]], [], [])
    feats = torch.randn(2, 8, 7, 7)
    cls_score, bbox_pred = head(feats)
    rois = torch.cat([torch.zeros(2, 1), res.priors], dim=1)
    losses = head.loss_and_target(cls_score, bbox_pred, rois, [res], TRAIN_CFG)['loss_bbox']
    assert losses['loss_bbox'] == 0 and losses['loss_cls'] > 0
    (losses['loss_cls'] + losses['loss_bbox']).backward()
    assert head.fc_cls.weight.grad.abs().sum() > 0 and not head.fc_reg.weight.grad.any()

    none, _ = sample_priors([], [[1, 1, 9, 9]], [0])
    cls_score, bbox_pred = head(torch.zeros(0, 8, 7, 7))
    losses = head.loss_and_target(cls_score, bbox_pred, torch.zeros(0, 5), [none],
                                  TRAIN_CFG)['loss_bbox']
    assert all(torch.isfinite(v) and v == 0 for v in losses.values())


def test_multiclass_nms_is_per_class_thresholded_sorted_and_capped():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], dtype=torch.float32)
    scores = torch.tensor([[0.9, 0.8, 0.0, 0.1],    # box 0: class 0 and class 1
                           [0.7, 0.0, 0.0, 0.3],    # box 1 overlaps box 0 in class 0
                           [0.0, 0.0, 0.04, 0.96]])  # box 2: below score_thr
    bboxes, det_scores, labels = multiclass_nms(boxes, scores, 0.05, NMS)
    assert det_scores.tolist() == pytest.approx([0.9, 0.8])
    assert labels.tolist() == [0, 1]
    torch.testing.assert_close(bboxes, boxes[[0, 0]])
    assert len(multiclass_nms(boxes, scores, 0.05, NMS, max_num=1)[0]) == 1
    per_class = boxes.repeat(1, 3)  # (N, 4 * C) class-specific boxes
    assert multiclass_nms(per_class, scores, 0.05, NMS)[0].shape == (2, 4)
    with pytest.raises(ValueError, match=r"nms.type='matrix_nms' is not an NMS mmft runs"):
        multiclass_nms(boxes, scores, 0.05, dict(type='matrix_nms', iou_threshold=0.5))
    # Soft-NMS decays box 1's class-0 score by its IoU with box 0 (9/11) instead of dropping it
    soft = dict(type='soft_nms', iou_threshold=0.5, method='linear', min_score=0.05)
    bboxes, det_scores, labels = multiclass_nms(boxes, scores, 0.05, soft)
    assert det_scores.tolist() == pytest.approx([0.9, 0.8, 0.7 * (1 - 9 / 11)])
    assert labels.tolist() == [0, 1, 0]
    torch.testing.assert_close(bboxes, boxes[[0, 0, 1]])


def test_predict_by_feat_decodes_clips_rescales_and_handles_empty():
    head = _head()
    rois = torch.tensor([[0, 10, 10, 30, 40], [0, 50, 20, 90, 70]], dtype=torch.float32)
    cls_score = torch.tensor([[5., 0., 0., 0.], [0., 0., 5., 0.]])
    bbox_pred = torch.zeros(2, 12)
    bbox_pred[1, 10] = math.log(2) / 0.2  # class 2's dw (std 0.2): twice as wide, then clipped
    metas = [dict(img_shape=(64, 80), scale_factor=(2., 4.)), dict(img_shape=(64, 80))]
    cfg = dict(score_thr=0.05, nms=NMS, max_per_img=100)
    res, empty = head.predict_by_feat([rois, torch.zeros(0, 5)], [cls_score, torch.zeros(0, 4)],
                                      [bbox_pred, torch.zeros(0, 12)], metas, cfg)
    assert res.labels.tolist() == [0, 2]
    torch.testing.assert_close(res.bboxes, torch.tensor([[10., 10., 30., 40.],
                                                         [30., 20., 80., 64.]]))
    assert empty.bboxes.shape == (0, 4) and empty.scores.shape == (0,)
    assert empty.labels.shape == (0,) and empty.labels.dtype == torch.long
    scaled = head.predict_by_feat([rois], [cls_score], [bbox_pred], metas[:1], cfg,
                                  rescale=True)[0]
    torch.testing.assert_close(scaled.bboxes, res.bboxes / torch.tensor([2., 4., 2., 4.]))
    raw = head.predict_by_feat([rois], [cls_score], [bbox_pred], metas[:1])[0]
    assert raw.bboxes.shape == (2, 12) and raw.scores.shape == (2, 4)
    torch.testing.assert_close(raw.scores.sum(dim=1), torch.ones(2))


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match='Linear'):
        _head(reg_predictor_cfg=dict(type='NormedLinear'))
    with pytest.raises(ValueError, match='with_cls or with_reg'):
        _head(with_cls=False, with_reg=False)
    with pytest.raises(KeyError, match='scale_factor'):
        _head().predict_by_feat([torch.tensor([[0., 1, 1, 5, 5]])], [torch.zeros(1, 4)],
                                [torch.zeros(1, 12)], [dict(img_shape=(8, 8))], rescale=True)
