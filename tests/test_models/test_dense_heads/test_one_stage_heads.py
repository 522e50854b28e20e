"""AnchorHead / RetinaHead / FCOSHead / ATSSHead: class rows, prior init, targets, decoding."""
import math

import pytest
import torch
from mmengine.structures import InstanceData

from mmft.registry import MODELS
from mmft.structures.class_rows import ClassRows

PRIOR_BIAS = -math.log(99)
ONE_ANCHOR = dict(type='AnchorGenerator', scales=[2], ratios=[1.0], strides=[8])  # 16 px boxes
MAX_IOU = dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0)
TEST_CFG = dict(nms_pre=100, score_thr=0.3, nms=dict(type='nms', iou_threshold=0.5),
                max_per_img=10)


def _head(type_, **kwargs):
    head = MODELS.build(dict(type=type_, in_channels=8, feat_channels=8, **kwargs))
    head.init_weights()
    return head


def test_sigmoid_heads_declare_per_anchor_rows_and_start_at_the_focal_prior():
    retina = _head('RetinaHead', num_classes=3, stacked_convs=1)
    assert retina.class_rows() == {'retina_cls.weight': ClassRows(3, groups=9),
                                   'retina_cls.bias': ClassRows(3, groups=9)}
    assert torch.allclose(retina.retina_cls.bias, torch.full((27,), PRIOR_BIAS))
    assert not torch.allclose(retina.retina_reg.bias, torch.full((36,), PRIOR_BIAS))
    fcos = _head('FCOSHead', num_classes=3, stacked_convs=1, norm_cfg=None)
    assert fcos.class_rows()['conv_cls.weight'] == ClassRows(3)
    assert torch.allclose(fcos.conv_cls.bias, torch.full((3,), PRIOR_BIAS))
    atss = _head('ATSSHead', num_classes=3, stacked_convs=1, norm_cfg=None,
                 anchor_generator=ONE_ANCHOR)
    assert atss.class_rows()['atss_cls.bias'] == ClassRows(3)
    assert torch.allclose(atss.atss_cls.bias, torch.full((3,), PRIOR_BIAS))
    assert type(retina).finetune_preset == 'retinanet' and type(fcos).finetune_preset == 'fcos'


def test_softmax_anchor_head_has_a_background_row_per_anchor():
    head = _head('AnchorHead', num_classes=4, loss_cls=dict(type='CrossEntropyLoss'),
                 anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                                       strides=[8]))
    rows = head.class_rows()['conv_cls.weight']
    assert rows == ClassRows(4, groups=3, background='last', activation='softmax')
    assert head.conv_cls.out_channels == rows.num_rows == 15


def test_anchor_targets_and_losses():
    head = _head('AnchorHead', num_classes=2,
                 loss_cls=dict(type='FocalLoss', use_sigmoid=True),
                 loss_bbox=dict(type='L1Loss'), anchor_generator=ONE_ANCHOR,
                 train_cfg=dict(assigner=MAX_IOU, allowed_border=-1, pos_weight=-1))
    # 4x4 grid of 16 px anchors centred at multiples of 8; the gt is exactly anchor (1, 2)
    anchors = head.prior_generator.grid_priors([(4, 4)])[0]
    gt = InstanceData(bboxes=anchors[6:7].clone(), labels=torch.tensor([1]))
    meta = dict(img_shape=(32, 32), pad_shape=(32, 32))
    labels, label_w, targets, target_w, pos, avg = head.get_targets(
        anchors, [(4, 4)], [gt], [meta])
    assert pos.nonzero().view(-1).tolist() == [6] and avg == 1.0
    assert labels[6] == 1 and (labels[torch.arange(16) != 6] == 2).all()  # 2 = background
    assert torch.equal(targets[6], torch.zeros(4)) and target_w[6].tolist() == [1.] * 4
    assert label_w.sum() > 1  # negatives count too (PseudoSampler)
    cls_scores = [torch.zeros(1, 2, 4, 4, requires_grad=True)]
    losses = head.loss_by_feat(cls_scores, [torch.zeros(1, 4, 4, 4)], [gt], [meta])
    assert losses['loss_bbox'].item() == 0  # zero deltas are the target
    assert losses['loss_cls'].item() > 0


def test_predict_decodes_filters_and_suppresses():
    head = _head('AnchorHead', num_classes=2, loss_cls=dict(type='FocalLoss', use_sigmoid=True),
                 anchor_generator=ONE_ANCHOR, test_cfg=TEST_CFG)
    logits = torch.full((1, 2, 4, 4), -10.)
    logits[0, 1, 1, 1] = 3.0   # class 1 at anchor (1, 1): box (0, 0, 16, 16)
    logits[0, 1, 1, 2] = 2.0   # overlaps it by IoU 1/3: kept
    logits[0, 1, 2, 2] = 2.5   # class 1, IoU 1/7 with the first: kept
    logits[0, 0, 1, 1] = 1.0   # class 0 at the same place: other class, kept
    logits[0, 0, 3, 3] = -2.0  # below score_thr
    meta = dict(img_shape=(32, 32), scale_factor=(2.0, 2.0))
    res = head.predict_by_feat([logits], [torch.zeros(1, 4, 4, 4)], batch_img_metas=[meta],
                               rescale=True)[0]
    assert res.labels.tolist() == [1, 1, 1, 0]
    assert torch.allclose(res.scores, torch.tensor([3.0, 2.5, 2.0, 1.0]).sigmoid())
    # zero deltas: the anchors, rescaled to ori_shape
    assert res.bboxes.tolist() == [[0, 0, 8, 8], [4, 4, 12, 12], [4, 0, 12, 8], [0, 0, 8, 8]]
    # two boxes of a class with IoU > 0.5: the weaker goes
    logits[0, 1, 1, 2] = -10.
    deltas = torch.zeros(1, 4, 4, 4)
    deltas[0, :2, 2, 2] = -0.4375  # (8, 8, 24, 24) moves 7 px to (1, 1, 17, 17): IoU 225 / 287
    res = head.predict_by_feat([logits], [deltas], batch_img_metas=[meta])[0]
    assert res.labels.tolist() == [1, 0] and res.scores[0] == torch.tensor(3.0).sigmoid()


def test_fcos_targets_smallest_box_regress_range_and_centre_sampling():
    head = _head('FCOSHead', num_classes=3, stacked_convs=1, norm_cfg=None, strides=[8, 16],
                 regress_ranges=((-1, 16), (16, 1e8)))
    points = head.prior_generator.grid_priors([(4, 4), (2, 2)])
    big = [0., 0., 32., 32.]
    small = [0., 0., 12., 12.]
    gt = InstanceData(bboxes=torch.tensor([big, small]), labels=torch.tensor([0, 2]))
    labels, targets = head.get_targets(points, [gt])
    lvl0, lvl1 = labels[:16].view(4, 4), labels[16:].view(2, 2)
    # stride 8 points (4, 4), (12, 4), ...: (4, 4) lies in both -> the smaller (class 2);
    # the big box's distances (> 16) are out of level 0's range
    assert lvl0[0, 0] == 2 and lvl0[0, 1] == 3 and (lvl0[2:] == 3).all()
    assert torch.equal(targets[0], torch.tensor([4., 4., 8., 8.]))
    # level 1 points (8, 8), (24, 8), ...: the big box (max distance 24 in range)
    assert (lvl1 == 0).all()
    sampled = _head('FCOSHead', num_classes=3, stacked_convs=1, norm_cfg=None, strides=[8, 16],
                    regress_ranges=((-1, 16), (16, 1e8)), center_sampling=True,
                    center_sample_radius=0.5)
    labels, _ = sampled.get_targets(points, [gt])
    # level 1: the big box's centre region is 8 px around (16, 16), and its points lie exactly
    # 8 px away (excluded: inside means > 0); (8, 8) is near the small box but out of range
    assert (labels[16:] == 3).all()
    assert labels[0] == 2  # (4, 4) within 4 px of the small box's centre (6, 6)
    centerness = head.centerness_target(torch.tensor([[4., 4., 8., 8.], [1., 2., 1., 2.]]))
    assert torch.allclose(centerness, torch.tensor([0.5, 1.0]))


def test_empty_outputs_and_bad_configs():
    head = _head('RetinaHead', num_classes=2, stacked_convs=1, test_cfg=TEST_CFG,
                 anchor_generator=ONE_ANCHOR)
    res = head.predict([torch.zeros(1, 8, 4, 4)], [_sample()])[0]
    assert res.bboxes.shape == (0, 4) and res.scores.shape == (0,) and res.labels.shape == (0,)
    with pytest.raises(ValueError, match='feature levels'):
        head([torch.zeros(1, 8, 4, 4)] * 2)
    with pytest.raises(ValueError, match='positive int'):
        MODELS.build(dict(type='RetinaHead', num_classes='auto', in_channels=8))
    with pytest.raises(ValueError, match='dcn_on_last_conv'):
        MODELS.build(dict(type='FCOSHead', num_classes=2, in_channels=8, dcn_on_last_conv=True))
    with pytest.raises(RuntimeError, match='train_cfg'):
        head.loss([torch.zeros(1, 8, 4, 4)], [_sample(with_gt=True)])
    with pytest.raises(ValueError, match="matrix_nms"):
        bad = _head('RetinaHead', num_classes=2, stacked_convs=1, anchor_generator=ONE_ANCHOR,
                    test_cfg=dict(TEST_CFG, nms=dict(type='matrix_nms', iou_threshold=0.5)))
        with torch.no_grad():
            bad.retina_cls.bias.fill_(5.)
        bad.predict([torch.zeros(1, 8, 4, 4)], [_sample()])
    # Soft-NMS keeps overlapping boxes with decayed scores instead of dropping them
    soft = _head('RetinaHead', num_classes=2, stacked_convs=1, anchor_generator=ONE_ANCHOR,
                 test_cfg=dict(TEST_CFG, max_per_img=100,
                               nms=dict(type='soft_nms', iou_threshold=0.3, min_score=0.0)))
    hard = _head('RetinaHead', num_classes=2, stacked_convs=1, anchor_generator=ONE_ANCHOR,
                 test_cfg=dict(TEST_CFG, max_per_img=100, nms=dict(type='nms', iou_threshold=0.3)))
    hard.load_state_dict(soft.state_dict())
    with torch.no_grad():
        soft.retina_cls.bias.fill_(5.)
        hard.retina_cls.bias.fill_(5.)
        feats = [torch.rand(1, 8, 4, 4)]
        n_soft = len(soft.predict(feats, [_sample()])[0])
        n_hard = len(hard.predict(feats, [_sample()])[0])
    assert n_soft > n_hard > 0


def _sample(with_gt=False):
    from mmft.structures import DetDataSample
    sample = DetDataSample(metainfo=dict(img_shape=(32, 32), pad_shape=(32, 32)))
    if with_gt:
        sample.gt_instances = InstanceData(bboxes=torch.tensor([[0., 0., 16., 16.]]),
                                           labels=torch.tensor([0]))
    return sample
