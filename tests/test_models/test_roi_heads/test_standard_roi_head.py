import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmft.registry import MODELS
from mmft.structures import BitmapMasks, DetDataSample

C = 8  # feature channels


def _roi_head(with_mask=True, share_extractor=False, **overrides):
    extractor = dict(type='SingleRoIExtractor', out_channels=C, featmap_strides=[4, 8, 16, 32])
    cfg = dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(extractor, roi_layer=dict(type='RoIAlign', output_size=7,
                                                          sampling_ratio=0)),
        bbox_head=dict(type='Shared2FCBBoxHead', in_channels=C, fc_out_channels=16,
                       roi_feat_size=7, num_classes=3,
                       bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                                       target_stds=[0.1, 0.1, 0.2, 0.2]),
                       loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False),
                       loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        train_cfg=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                          min_pos_iou=0.5, match_low_quality=True, ignore_iof_thr=0.5),
            sampler=dict(type='RandomSampler', num=32, pos_fraction=0.25, neg_pos_ub=-1,
                         add_gt_as_proposals=True),
            mask_size=28, pos_weight=-1, debug=False),
        test_cfg=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
                      max_per_img=10, mask_thr_binary=0.5))
    if with_mask:
        cfg['mask_head'] = dict(type='FCNMaskHead', num_convs=1, in_channels=C,
                                conv_out_channels=C, num_classes=3)
        if share_extractor:  # the mask head reads the 7x7 box features: 14x14 logits
            cfg['train_cfg']['mask_size'] = 14
        else:
            cfg['mask_roi_extractor'] = dict(extractor, roi_layer=dict(
                type='RoIAlign', output_size=14, sampling_ratio=0))
    cfg.update(overrides)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def _feats(batch=2, size=64):
    torch.manual_seed(0)
    return tuple(torch.randn(batch, C, size // 2**i, size // 2**i) for i in range(2, 7))


def _sample(boxes, labels, shape=(64, 64), ignored=None, meta=None):
    h, w = shape
    metainfo = dict(img_shape=shape, ori_shape=shape, scale_factor=(1., 1.), pad_shape=shape)
    s = DetDataSample(metainfo={**metainfo, **(meta or {})})
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    masks = np.zeros((len(boxes), h, w), np.uint8)
    for m, (x1, y1, x2, y2) in zip(masks, boxes.int().tolist()):
        m[y1:y2, x1:x2] = 1
    s.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor(labels, dtype=torch.long),
                                  masks=BitmapMasks(masks, h, w))
    if ignored is not None:
        s.ignored_instances = InstanceData(bboxes=torch.tensor(ignored).float().reshape(-1, 4))
    return s


def _proposals(*boxes_per_image):
    return [InstanceData(bboxes=torch.tensor(b, dtype=torch.float32).reshape(-1, 4),
                         scores=torch.ones(len(b))) for b in boxes_per_image]


BOXES = [[[4, 6, 30, 28], [30, 30, 60, 62]], [[10, 10, 50, 40]]]
PROPOSALS = ([[5, 5, 30, 30], [0, 0, 10, 10], [32, 28, 60, 60], [40, 0, 64, 20]],
             [[12, 10, 48, 40], [0, 40, 20, 64]])


@pytest.mark.parametrize('share_extractor', [False, True])
def test_loss_keys_finite_and_reaching_every_head(share_extractor):
    head = _roi_head(share_extractor=share_extractor)
    assert head.with_bbox and head.with_mask and head.share_roi_extractor == share_extractor
    samples = [_sample(BOXES[0], [0, 2]), _sample(BOXES[1], [1])]
    proposals = _proposals(*PROPOSALS)
    losses = head.loss(_feats(), proposals, samples)
    assert set(losses) == {'loss_cls', 'acc', 'loss_bbox', 'loss_mask'}
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert losses['loss_bbox'] > 0 and losses['loss_mask'] > 0
    sum(v.sum() for k, v in losses.items() if 'loss' in k).backward()
    for param in (head.bbox_head.fc_cls.weight, head.bbox_head.fc_reg.weight,
                  head.mask_head.conv_logits.weight):
        assert param.grad.abs().sum() > 0
    assert 'bboxes' in proposals[0]  # the caller's proposals are left as they were


def test_images_without_gt_give_zero_box_and_mask_losses():
    head = _roi_head()
    bare = DetDataSample(metainfo=dict(img_shape=(64, 64)))
    bare.gt_instances = InstanceData()  # no annotation fields at all
    no_gt = [_sample([], []), bare]
    losses = head.loss(_feats(), _proposals(*PROPOSALS), no_gt)
    assert losses['loss_bbox'] == 0 and losses['loss_mask'] == 0
    assert torch.isfinite(losses['loss_cls']) and losses['loss_cls'] > 0
    sum(v.sum() for k, v in losses.items() if 'loss' in k).backward()


def test_no_proposals_at_all():
    head = _roi_head()
    losses = head.loss(_feats(), _proposals([], []), [_sample([], []), _sample([], [])])
    assert all(torch.isfinite(v).all() and v.sum() == 0 for v in losses.values())
    # gts are added as proposals, so a gt still trains every branch
    losses = head.loss(_feats(), _proposals([], []),
                       [_sample(BOXES[0], [0, 1]), _sample([], [])])
    assert losses['loss_cls'] > 0 and losses['loss_mask'] > 0


def test_ignored_boxes_are_neither_positive_nor_negative():
    head = _roi_head()
    sampled = []
    sample = head.bbox_sampler.sample
    head.bbox_sampler.sample = lambda *args, **kwargs: sampled.append(
        sample(*args, **kwargs)) or sampled[-1]
    inside_crowd = [[2, 2, 20, 20], [4, 4, 18, 22], [0, 0, 16, 16]]
    crowd = [[0, 0, 24, 24]]
    gt = [[40, 40, 60, 60]]
    head.loss(_feats(1), _proposals(inside_crowd), [_sample(gt, [0])])
    head.loss(_feats(1), _proposals(inside_crowd), [_sample(gt, [0], ignored=crowd)])
    assert [len(r.neg_inds) for r in sampled] == [3, 0]
    assert [len(r.pos_inds) for r in sampled] == [1, 1]  # the gt itself


def test_tiny_and_degenerate_boxes_stay_finite():
    head = _roi_head()
    samples = [_sample([[5, 5, 5.5, 5.5], [20, 20, 20, 40], [0, 0, 64, 64]], [0, 1, 2])]
    proposals = _proposals([[5, 5, 5, 5], [20, 20, 20.1, 40], [1, 1, 63, 63]])
    losses = head.loss(_feats(1), proposals, samples)
    assert all(torch.isfinite(v).all() for v in losses.values())


def test_masks_as_a_plain_tensor():
    head = _roi_head()
    torch.manual_seed(1)
    sample = _sample(BOXES[0], [0, 2])
    tensor_sample = _sample(BOXES[0], [0, 2])
    tensor_sample.gt_instances.masks = torch.from_numpy(sample.gt_instances.masks.masks).bool()
    torch.manual_seed(1)
    a = head.loss(_feats(1), _proposals(PROPOSALS[0]), [sample])['loss_mask']
    torch.manual_seed(1)
    b = head.loss(_feats(1), _proposals(PROPOSALS[0]), [tensor_sample])['loss_mask']
    torch.testing.assert_close(a, b)


def test_predict_shapes_rescale_and_empty_images():
    head = _roi_head().eval()
    meta = dict(ori_shape=(32, 48), scale_factor=(2., 2.))
    samples = [_sample([], [], shape=(64, 96), meta=meta), _sample([], [], shape=(64, 64))]
    feats = _feats(2, 96)
    proposals = _proposals(PROPOSALS[0], [])
    with torch.no_grad():
        full, empty = head.predict(feats, proposals, samples)
        ori, _ = head.predict(feats, proposals, samples, rescale=True)
    k = len(full)
    assert 0 < k <= 10 and full.masks.shape == (k, 64, 96) and full.masks.dtype == torch.bool
    assert full.bboxes.shape == (k, 4) and full.scores.shape == (k,) and full.labels.shape == (k,)
    assert (full.scores[:-1] >= full.scores[1:]).all()
    torch.testing.assert_close(ori.bboxes, full.bboxes / 2)
    assert ori.masks.shape == (k, 32, 48)
    assert empty.bboxes.shape == (0, 4) and empty.masks.shape == (0, 64, 64)
    assert empty.labels.dtype == torch.long

    boxes_only = _roi_head(with_mask=False).eval()
    with torch.no_grad():
        res = boxes_only.predict(feats, proposals, samples, rescale=True)[0]
        none = boxes_only.predict(feats, _proposals([], []), samples)
    assert 'masks' not in res and res.bboxes[:, 2].max() <= 48
    assert [len(r) for r in none] == [0, 0]
    with torch.no_grad():
        masked_none = head.predict(feats, _proposals([], []), samples, rescale=True)
    assert [tuple(r.masks.shape) for r in masked_none] == [(0, 32, 48), (0, 64, 64)]


def test_tensor_mode_outputs():
    head = _roi_head()
    cls_score, bbox_pred, mask_pred = head(_feats(), _proposals(*PROPOSALS))
    assert cls_score.shape == (6, 4) and bbox_pred.shape == (6, 12)
    assert mask_pred.shape == (6, 3, 28, 28)
    assert len(_roi_head(with_mask=False)(_feats(), _proposals(*PROPOSALS))) == 2


def test_errors_name_the_fix():
    with pytest.raises(NotImplementedError, match='shared_head'):
        _roi_head(shared_head=dict(type='ResLayer'))
    head = _roi_head(train_cfg=None)
    with pytest.raises(RuntimeError, match='train_cfg'):
        head.loss(_feats(1), _proposals([]), [_sample([], [])])
    with pytest.raises(ValueError, match='proposal lists'):
        _roi_head().loss(_feats(), _proposals([]), [_sample([], []), _sample([], [])])
    with pytest.raises(KeyError, match='mask_thr_binary'):
        _roi_head(test_cfg=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
                                max_per_img=10)).predict(_feats(1), _proposals([[0, 0, 9, 9]]),
                                                         [_sample([], [])])
