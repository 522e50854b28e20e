import copy

import pytest
import torch
from mmengine.structures import InstanceData

from mmft.registry import MODELS
from mmft.structures import DetDataSample

RPN_CFG = dict(
    type='RPNHead', in_channels=8, feat_channels=8,
    anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                          strides=[4, 8, 16, 32, 64]),
    bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                    target_stds=[1.0, 1.0, 1.0, 1.0]),
    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
    loss_bbox=dict(type='L1Loss', loss_weight=1.0),
    train_cfg=dict(
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                      match_low_quality=True, ignore_iof_thr=0.5),
        sampler=dict(type='RandomSampler', num=64, pos_fraction=0.5, neg_pos_ub=-1,
                     add_gt_as_proposals=False),
        allowed_border=-1, pos_weight=-1, debug=False),
    test_cfg=dict(nms_pre=200, max_per_img=50, nms=dict(type='nms', iou_threshold=0.7),
                  min_bbox_size=0))


def _sample(img_shape, pad_shape, batch_shape, boxes, ignored=None, scale=(1., 1.)):
    s = DetDataSample(metainfo=dict(img_shape=img_shape, pad_shape=pad_shape,
                                    batch_input_shape=batch_shape, scale_factor=scale))
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    s.gt_instances = InstanceData(bboxes=boxes, labels=torch.full((len(boxes),), 4))
    if ignored is not None:
        s.ignored_instances = InstanceData(bboxes=torch.tensor(ignored).reshape(-1, 4).float())
    return s


def _feats(batch=2, size=(32, 32), channels=8):
    h, w = size
    return tuple(torch.randn(batch, channels, max(h // 2**i, 1), max(w // 2**i, 1))
                 for i in range(5))


def _head(**overrides):
    cfg = copy.deepcopy(RPN_CFG)
    cfg.update(overrides)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def test_forward_shapes_and_keys():
    head = _head()
    cls_scores, bbox_preds = head(_feats())
    assert [tuple(s.shape) for s in cls_scores] == [(2, 3, 32 // 2**i, 32 // 2**i)
                                                    for i in range(5)]
    assert [tuple(p.shape) for p in bbox_preds] == [(2, 12, 32 // 2**i, 32 // 2**i)
                                                    for i in range(5)]
    assert {k: tuple(v.shape) for k, v in head.state_dict().items()} == {
        'rpn_conv.weight': (8, 8, 3, 3), 'rpn_conv.bias': (8,), 'rpn_cls.weight': (3, 8, 1, 1),
        'rpn_cls.bias': (3,), 'rpn_reg.weight': (12, 8, 1, 1), 'rpn_reg.bias': (12,)}
    deep = _head(num_convs=2)
    assert 'rpn_conv.1.conv.weight' in deep.state_dict()


def test_loss_with_and_without_gt_ignored_and_mixed_sizes():
    head = _head()
    batch = [
        _sample((128, 100), (128, 128), (128, 128), [[10, 10, 60, 50], [70, 80, 90, 126]],
                ignored=[[0, 100, 30, 128]]),
        _sample((90, 128), (96, 128), (128, 128), []),  # no gt: only negatives
    ]
    losses = head.loss(_feats(), batch)
    assert set(losses) == {'loss_rpn_cls', 'loss_rpn_bbox'}
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    assert losses['loss_rpn_bbox'] > 0
    (losses['loss_rpn_cls'] + losses['loss_rpn_bbox']).backward()
    assert head.rpn_cls.weight.grad.abs().sum() > 0

    bare = DetDataSample(metainfo=dict(img_shape=(128, 128), pad_shape=(128, 128)))
    bare.gt_instances = InstanceData()  # no annotation fields at all
    no_gt = head.loss(_feats(), [_sample((128, 128), (128, 128), (128, 128), []), bare])
    assert torch.isfinite(no_gt['loss_rpn_cls']) and no_gt['loss_rpn_cls'] > 0
    assert no_gt['loss_rpn_bbox'] == 0


def test_tiny_and_degenerate_boxes():
    head = _head()
    batch = [_sample((128, 128), (128, 128), (128, 128),
                     [[5, 5, 5.5, 5.5], [40, 40, 40, 60], [0, 0, 128, 128]])]
    losses = head.loss(_feats(1), batch)
    assert all(torch.isfinite(v) for v in losses.values())


def test_predict_bounded_inside_image_sorted_and_rescaled():
    torch.manual_seed(0)
    head = _head()
    batch = [_sample((120, 100), (128, 128), (128, 128), [], scale=(2., 2.)),
             _sample((64, 128), (64, 128), (128, 128), [])]
    feats = _feats()
    results = head.predict(feats, batch)
    assert len(results) == 2
    for res, (h, w) in zip(results, [(120, 100), (64, 128)]):
        assert 0 < len(res) <= 50
        assert res.bboxes.shape == (len(res), 4) and res.labels.tolist() == [0] * len(res)
        assert (res.bboxes[:, 0::2] >= 0).all() and (res.bboxes[:, 0::2] <= w).all()
        assert (res.bboxes[:, 1::2] >= 0).all() and (res.bboxes[:, 1::2] <= h).all()
        assert (res.scores[:-1] >= res.scores[1:]).all()
    rescaled = head.predict(feats, batch, rescale=True)[0]
    torch.testing.assert_close(rescaled.bboxes, results[0].bboxes / 2)


def test_predict_empty_when_every_box_is_filtered():
    head = _head(test_cfg=dict(nms_pre=100, max_per_img=10, nms=dict(type='nms', iou_threshold=0.7),
                               min_bbox_size=1000))
    res = head.predict(_feats(1), [_sample((128, 128), (128, 128), (128, 128), [])])[0]
    assert res.bboxes.shape == (0, 4) and res.scores.shape == (0,) and res.labels.shape == (0,)


def test_loss_and_predict_returns_proposals():
    head = _head()
    batch = [_sample((128, 128), (128, 128), (128, 128), [[10, 10, 60, 50]])]
    losses, proposals = head.loss_and_predict(
        _feats(1), batch, proposal_cfg=dict(nms_pre=100, max_per_img=20,
                                            nms=dict(type='nms', iou_threshold=0.7),
                                            min_bbox_size=0))
    assert set(losses) == {'loss_rpn_cls', 'loss_rpn_bbox'}
    assert 0 < len(proposals[0]) <= 20 and not proposals[0].bboxes.requires_grad


def test_rpn_overfits_a_tiny_batch():
    torch.manual_seed(0)
    head = _head(in_channels=16, feat_channels=16,
                 train_cfg=dict(RPN_CFG['train_cfg'],
                                sampler=dict(type='RandomSampler', num=32, pos_fraction=0.5,
                                             add_gt_as_proposals=False)))
    feats = _feats(2, (16, 16), channels=16)
    batch = [_sample((64, 64), (64, 64), (64, 64), [[8, 8, 40, 30]]),
             _sample((64, 64), (64, 64), (64, 64), [[20, 16, 52, 60], [0, 0, 16, 20]])]
    optim = torch.optim.Adam(head.parameters(), lr=0.01)
    history = []
    for _ in range(100):
        losses = head.loss(feats, batch)
        total = losses['loss_rpn_cls'] + losses['loss_rpn_bbox']
        optim.zero_grad()
        total.backward()
        optim.step()
        history.append(total.item())
    # sampling is random each step: compare the last steps' mean with the start
    assert sum(history[-5:]) / 5 < 0.25 * history[0]


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match='num_classes'):
        _head(num_classes=3)
    head = _head(train_cfg=None)
    with pytest.raises(RuntimeError, match='train_cfg'):
        head.loss(_feats(1), [_sample((64, 64), (64, 64), (64, 64), [])])
    with pytest.raises(ValueError, match='feature levels'):
        head(_feats(1)[:3])


def test_resnet_fpn_rpn_on_a_batch_of_different_sizes():
    torch.manual_seed(0)
    pre = MODELS.build(dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                            std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32))
    backbone = MODELS.build(dict(type='ResNet', depth=18, base_channels=8, frozen_stages=1))
    neck = MODELS.build(dict(type='FPN', in_channels=[8, 16, 32, 64], out_channels=8,
                             num_outs=5))
    head = _head()
    sizes = [(100, 70), (64, 128)]
    samples = []
    for (h, w), boxes in zip(sizes, [[[5, 5, 60, 90]], []]):
        s = DetDataSample(metainfo=dict(img_shape=(h, w), scale_factor=(1., 1.)))
        b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        s.gt_instances = InstanceData(bboxes=b, labels=torch.zeros(len(b), dtype=torch.long))
        samples.append(s)
    data = pre(dict(inputs=[torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
                            for h, w in sizes], data_samples=samples), training=True)
    assert data['inputs'].shape == (2, 3, 128, 128)
    feats = neck(backbone(data['inputs']))
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4, 2]
    losses = head.loss(feats, data['data_samples'])
    assert all(torch.isfinite(v) for v in losses.values())
    head.eval()
    for res, (h, w) in zip(head.predict(feats, data['data_samples']), sizes):
        assert len(res) <= 50
        assert (res.bboxes[:, 2] <= w).all() and (res.bboxes[:, 3] <= h).all()


def test_mmdet_mask_rcnn_r50_fpn_configs_build_with_mmdet_key_shapes():
    """The backbone / neck / rpn_head dicts of MMDetection's mask_rcnn_r50_fpn, verbatim."""
    neck = MODELS.build(dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256,
                             num_outs=5))
    rpn = MODELS.build(dict(
        type='RPNHead', in_channels=256, feat_channels=256,
        anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                              strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0),
        train_cfg=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3,
                          min_pos_iou=0.3, match_low_quality=True, ignore_iof_thr=-1),
            sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1,
                         add_gt_as_proposals=False),
            allowed_border=-1, pos_weight=-1, debug=False),
        test_cfg=dict(nms_pre=1000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7),
                      min_bbox_size=0)))
    backbone = MODELS.build(dict(
        type='ResNet', depth=50, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True, style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))
    keys = {f'neck.{k}': tuple(v.shape) for k, v in neck.state_dict().items()}
    keys.update({f'rpn_head.{k}': tuple(v.shape) for k, v in rpn.state_dict().items()})
    expected = {}
    for i, c in enumerate([256, 512, 1024, 2048]):
        expected[f'neck.lateral_convs.{i}.conv.weight'] = (256, c, 1, 1)
        expected[f'neck.lateral_convs.{i}.conv.bias'] = (256,)
        expected[f'neck.fpn_convs.{i}.conv.weight'] = (256, 256, 3, 3)
        expected[f'neck.fpn_convs.{i}.conv.bias'] = (256,)
    expected.update({'rpn_head.rpn_conv.weight': (256, 256, 3, 3), 'rpn_head.rpn_conv.bias': (256,),
                     'rpn_head.rpn_cls.weight': (3, 256, 1, 1), 'rpn_head.rpn_cls.bias': (3,),
                     'rpn_head.rpn_reg.weight': (12, 256, 1, 1), 'rpn_head.rpn_reg.bias': (12,)})
    assert keys == expected
    assert len(backbone.state_dict()) == 318  # 265 tensors + 53 num_batches_tracked
