"""Faster / Mask R-CNN built from the shipped configs: MMDetection's keys, training, inference."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.structures import InstanceData

from mmft.registry import MODELS
from mmft.structures import BitmapMasks, DetDataSample, bbox_overlaps

MODELS_DIR = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs', '_base_', 'models')
COLORS = [(40, 40, 220), (40, 200, 40), (220, 60, 60)]  # BGR, one per class


def _config(name):
    return Config.fromfile(osp.join(MODELS_DIR, f'{name}.py'))


def _small_model(name='mask_rcnn_r50_fpn', **overrides):
    """The shipped config shrunk to ResNet-18 (16 base channels) and 32-channel heads."""
    cfg = _config(name)
    cfg.merge_from_dict({
        'model.backbone': dict(depth=18, base_channels=16, frozen_stages=-1, init_cfg=None),
        'model.neck': dict(in_channels=[16, 32, 64, 128], out_channels=32),
        'model.rpn_head': dict(in_channels=32, feat_channels=32),
        'model.roi_head.bbox_roi_extractor.out_channels': 32,
        'model.roi_head.bbox_head': dict(in_channels=32, fc_out_channels=128, num_classes=3),
        'model.train_cfg.rpn_proposal': dict(nms_pre=200, max_per_img=100),
        'model.train_cfg.rcnn.sampler.num': 64,
        'model.test_cfg.rpn': dict(nms_pre=200, max_per_img=100),
    })
    if 'mask' in name:
        cfg.merge_from_dict({
            'model.roi_head.mask_roi_extractor.out_channels': 32,
            'model.roi_head.mask_head': dict(num_convs=2, in_channels=32, conv_out_channels=32,
                                             num_classes=3)})
    cfg.merge_from_dict(overrides)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _scene(objects, shape=(64, 64), ori_shape=None, scale_factor=(1., 1.)):
    """A uint8 BGR image with filled rectangles (classes 0, 2) and ellipses (class 1)."""
    h, w = shape
    img = np.random.RandomState(0).randint(90, 110, (h, w, 3)).astype(np.uint8)
    yy, xx = np.mgrid[:h, :w] + 0.5
    masks, boxes, labels = [], [], []
    for label, (x1, y1, x2, y2) in objects:
        if label == 1:
            inside = ((xx - (x1 + x2) / 2) / ((x2 - x1) / 2))**2 + \
                ((yy - (y1 + y2) / 2) / ((y2 - y1) / 2))**2 <= 1
        else:
            inside = (xx > x1) & (xx < x2) & (yy > y1) & (yy < y2)
        img[inside] = COLORS[label]
        ys, xs = np.nonzero(inside)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        labels.append(label)
        masks.append(inside.astype(np.uint8))
    sample = DetDataSample(metainfo=dict(img_shape=shape, ori_shape=ori_shape or shape,
                                         scale_factor=scale_factor))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor(labels, dtype=torch.long),
        masks=BitmapMasks(np.stack(masks) if masks else np.zeros((0, h, w), np.uint8), h, w))
    return torch.from_numpy(img).permute(2, 0, 1).contiguous(), sample


def _batch(*scenes):
    inputs, samples = zip(*scenes)
    return dict(inputs=list(inputs), data_samples=list(samples))


# -------------------------------------------------------------------- MMDetection's keys
def _bn(prefix, channels):
    keys = {f'{prefix}.{n}': (channels,) for n in ('weight', 'bias', 'running_mean',
                                                    'running_var')}
    keys[f'{prefix}.num_batches_tracked'] = ()
    return keys


def _mmdet_mask_rcnn_r50_fpn_keys():
    """Key -> shape of MMDetection 3.x's mask_rcnn_r50_fpn_1x_coco checkpoint."""
    keys = {'backbone.conv1.weight': (64, 3, 7, 7), **_bn('backbone.bn1', 64)}
    inplanes = 64
    for stage, num_blocks in enumerate([3, 4, 6, 3], start=1):
        planes = 64 * 2**(stage - 1)
        for b in range(num_blocks):
            p = f'backbone.layer{stage}.{b}'
            keys[f'{p}.conv1.weight'] = (planes, inplanes if b == 0 else planes * 4, 1, 1)
            keys[f'{p}.conv2.weight'] = (planes, planes, 3, 3)
            keys[f'{p}.conv3.weight'] = (planes * 4, planes, 1, 1)
            keys.update({**_bn(f'{p}.bn1', planes), **_bn(f'{p}.bn2', planes),
                         **_bn(f'{p}.bn3', planes * 4)})
            if b == 0:
                keys[f'{p}.downsample.0.weight'] = (planes * 4, inplanes, 1, 1)
                keys.update(_bn(f'{p}.downsample.1', planes * 4))
        inplanes = planes * 4
    for i, c in enumerate([256, 512, 1024, 2048]):
        keys.update({f'neck.lateral_convs.{i}.conv.weight': (256, c, 1, 1),
                     f'neck.lateral_convs.{i}.conv.bias': (256,),
                     f'neck.fpn_convs.{i}.conv.weight': (256, 256, 3, 3),
                     f'neck.fpn_convs.{i}.conv.bias': (256,)})
    keys.update({
        'rpn_head.rpn_conv.weight': (256, 256, 3, 3), 'rpn_head.rpn_conv.bias': (256,),
        'rpn_head.rpn_cls.weight': (3, 256, 1, 1), 'rpn_head.rpn_cls.bias': (3,),
        'rpn_head.rpn_reg.weight': (12, 256, 1, 1), 'rpn_head.rpn_reg.bias': (12,),
        'roi_head.bbox_head.fc_cls.weight': (81, 1024), 'roi_head.bbox_head.fc_cls.bias': (81,),
        'roi_head.bbox_head.fc_reg.weight': (320, 1024),
        'roi_head.bbox_head.fc_reg.bias': (320,),
        'roi_head.bbox_head.shared_fcs.0.weight': (1024, 256 * 7 * 7),
        'roi_head.bbox_head.shared_fcs.0.bias': (1024,),
        'roi_head.bbox_head.shared_fcs.1.weight': (1024, 1024),
        'roi_head.bbox_head.shared_fcs.1.bias': (1024,),
        'roi_head.mask_head.upsample.weight': (256, 256, 2, 2),
        'roi_head.mask_head.upsample.bias': (256,),
        'roi_head.mask_head.conv_logits.weight': (80, 256, 1, 1),
        'roi_head.mask_head.conv_logits.bias': (80,)})
    for i in range(4):
        keys[f'roi_head.mask_head.convs.{i}.conv.weight'] = (256, 256, 3, 3)
        keys[f'roi_head.mask_head.convs.{i}.conv.bias'] = (256,)
    return keys


def test_r50_fpn_configs_have_exactly_mmdetection_keys_and_shapes():
    expected = _mmdet_mask_rcnn_r50_fpn_keys()
    assert len(expected) == 360
    mask_rcnn = MODELS.build(_config('mask_rcnn_r50_fpn').model)
    assert type(mask_rcnn).__name__ == 'MaskRCNN'
    assert {k: tuple(v.shape) for k, v in mask_rcnn.state_dict().items()} == expected
    faster = MODELS.build(_config('faster_rcnn_r50_fpn').model)
    assert type(faster).__name__ == 'FasterRCNN' and not faster.with_mask
    assert {k: tuple(v.shape) for k, v in faster.state_dict().items()} == {
        k: v for k, v in expected.items() if not k.startswith('roi_head.mask_head')}


def test_config_values_follow_mmdetection():
    faster, mask = _config('faster_rcnn_r50_fpn').model, _config('mask_rcnn_r50_fpn').model
    assert faster.data_preprocessor == dict(
        type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_size_divisor=32)
    assert mask.data_preprocessor.pad_mask is True
    assert faster.backbone.init_cfg == dict(type='Pretrained',
                                            checkpoint='torchvision://resnet50')
    assert faster.train_cfg.rcnn.assigner.match_low_quality is False
    assert mask.train_cfg.rcnn.assigner.match_low_quality is True
    assert mask.train_cfg.rcnn.mask_size == 28 and 'mask_size' not in faster.train_cfg.rcnn
    assert faster.train_cfg.rpn_proposal == dict(nms_pre=2000, max_per_img=1000, min_bbox_size=0,
                                                 nms=dict(type='nms', iou_threshold=0.7))
    assert mask.test_cfg.rcnn == dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
                                      max_per_img=100, mask_thr_binary=0.5)
    assert mask.roi_head.mask_roi_extractor.roi_layer == dict(type='RoIAlign', output_size=14,
                                                              sampling_ratio=0)


# -------------------------------------------------------------------- overfitting
TRAIN_SCENES = [
    dict(objects=[(0, (6, 8, 30, 34)), (1, (36, 30, 60, 56))], ori_shape=(32, 32),
         scale_factor=(2., 2.)),
    dict(objects=[(2, (20, 14, 50, 40)), (1, (4, 40, 24, 62))]),
]


def _overfit(name, steps=100):
    torch.manual_seed(0)
    model = _small_model(name)
    data = _batch(*[_scene(**kwargs) for kwargs in TRAIN_SCENES])
    optim = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-3))
    model.train()
    history = [model.train_step(data, optim)['loss'].item() for _ in range(steps)]
    model.eval()
    return model, data, history


@pytest.fixture(scope='module')
def trained_mask_rcnn():
    return _overfit('mask_rcnn_r50_fpn')


def _found(pred, gt, min_score=0.5):
    """For each gt: the index of a same-label detection with IoU > 0.5, or None."""
    ious = bbox_overlaps(gt.bboxes, pred.bboxes)
    found = []
    for g in range(len(gt.bboxes)):
        ok = (ious[g] > 0.5) & (pred.labels == gt.labels[g]) & (pred.scores >= min_score)
        found.append(int(torch.nonzero(ok)[0, 0]) if ok.any() else None)
    return found


def _gt_at_ori_shape(sample):
    scale = torch.tensor(sample.scale_factor).repeat(2)
    return InstanceData(bboxes=sample.gt_instances.bboxes / scale,
                        labels=sample.gt_instances.labels)


def _mask_iou(a, b):
    return float((a & b).sum()) / max(float((a | b).sum()), 1.)


@pytest.mark.slow
def test_faster_rcnn_overfits_a_tiny_batch():
    model, data, history = _overfit('faster_rcnn_r50_fpn')
    assert np.mean(history[-5:]) < 0.3 * history[0]
    with torch.no_grad():
        preds = model.test_step(data)
    for pred, sample in zip(preds, data['data_samples']):
        assert 'masks' not in pred.pred_instances
        found = _found(pred.pred_instances, _gt_at_ori_shape(sample))
        assert None not in found, (found, pred.pred_instances)


@pytest.mark.slow
def test_mask_rcnn_overfits_a_tiny_batch(trained_mask_rcnn):
    model, data, history = trained_mask_rcnn
    assert np.mean(history[-5:]) < 0.3 * history[0]
    with torch.no_grad():
        preds = model(**model.data_preprocessor(copy.deepcopy(data)), mode='predict')
    pred, gt = preds[1].pred_instances, data['data_samples'][1].gt_instances  # scale 1
    found = _found(pred, gt)
    assert None not in found, (found, pred)
    gt_masks = torch.from_numpy(gt.masks.masks).bool()
    assert pred.masks.dtype == torch.bool and pred.masks.shape[1:] == (64, 64)
    assert all(_mask_iou(pred.masks[i], gt_masks[g]) > 0.7 for g, i in enumerate(found))


@pytest.mark.slow
def test_predict_rescale_maps_boxes_and_masks_to_the_original_image(trained_mask_rcnn):
    model, data, _ = trained_mask_rcnn
    batch = model.data_preprocessor(copy.deepcopy(data))
    with torch.no_grad():
        ori = model.predict(batch['inputs'], copy.deepcopy(batch['data_samples']))
        img = model.predict(batch['inputs'], batch['data_samples'], rescale=False)
    small, full = ori[0].pred_instances, img[0].pred_instances  # image 0: ori 32x32, scale 2
    assert small.masks.shape[1:] == (32, 32) and full.masks.shape[1:] == (64, 64)
    torch.testing.assert_close(small.bboxes, full.bboxes / 2)
    found = _found(small, _gt_at_ori_shape(data['data_samples'][0]))
    assert None not in found
    gt = data['data_samples'][0].gt_instances
    gt_masks = torch.from_numpy(gt.masks.resize((32, 32)).masks).bool()
    assert all(_mask_iou(small.masks[i], gt_masks[g]) > 0.6 for g, i in enumerate(found))


# -------------------------------------------------------------------- edge cases
def _floats(log_vars):
    return {k: float(v.detach()) for k, v in log_vars.items()}


def test_empty_gt_ignored_boxes_and_mixed_sizes_in_one_batch():
    torch.manual_seed(0)
    model = _small_model(**{'model.train_cfg.rcnn.assigner.ignore_iof_thr': 0.5,
                            'model.train_cfg.rpn.assigner.ignore_iof_thr': 0.5})
    crowd_img, crowd = _scene([(0, (4, 4, 30, 30)), (2, (40, 10, 60, 40))], shape=(64, 80))
    crowd.ignored_instances = InstanceData(bboxes=torch.tensor([[50., 40., 80., 64.]]))
    empty_img, empty = _scene([], shape=(48, 64))
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log = _floats(model.train_step(_batch((crowd_img, crowd), (empty_img, empty)), optim))
    assert {'loss', 'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'acc', 'loss_bbox',
            'loss_mask'} <= set(log)
    assert all(np.isfinite(v) for v in log.values())

    only_empty = _floats(model.train_step(_batch(_scene([], (48, 64)), _scene([], (64, 32))),
                                          optim))
    assert only_empty['loss_rpn_bbox'] == 0 and only_empty['loss_bbox'] == 0
    assert only_empty['loss_mask'] == 0 and np.isfinite(only_empty['loss'])

    model.eval()
    preds = model.val_step(_batch((crowd_img, crowd), (empty_img, empty)))
    for pred, shape in zip(preds, [(64, 80), (48, 64)]):
        res = pred.pred_instances
        assert res.masks.shape == (len(res), *shape)
        assert (res.bboxes[:, 2] <= shape[1]).all() and (res.bboxes[:, 3] <= shape[0]).all()


def test_no_detections_give_empty_tensors_of_the_right_shapes():
    model = _small_model(**{'model.test_cfg.rcnn.score_thr': 1.0}).eval()
    preds = model.val_step(_batch(_scene([], (64, 64), ori_shape=(32, 40),
                                         scale_factor=(1.6, 2.)), _scene([], (48, 64))))
    for pred, shape in zip(preds, [(32, 40), (48, 64)]):
        res = pred.pred_instances
        assert res.bboxes.shape == (0, 4) and res.scores.shape == (0,)
        assert res.labels.shape == (0,) and res.labels.dtype == torch.long
        assert res.masks.shape == (0, *shape) and res.masks.dtype == torch.bool


def test_tensor_mode_and_properties():
    model = _small_model()
    assert model.with_rpn and model.with_roi_head and model.with_neck
    assert model.with_bbox and model.with_mask
    inputs = torch.randn(2, 3, 64, 64)
    (roi_outs,) = model(inputs, mode='tensor')
    cls_score, bbox_pred, mask_pred = roi_outs
    assert cls_score.shape[1] == 4 and bbox_pred.shape[1] == 12
    assert mask_pred.shape[1:] == (3, 28, 28) and len(cls_score) == len(bbox_pred) > 0
    with pytest.raises(RuntimeError, match="'loss', 'predict', 'tensor'"):
        model(inputs, mode='features')


def test_rpn_num_classes_is_forced_to_one():
    model = _small_model(**{'model.rpn_head.num_classes': 3})
    assert model.rpn_head.num_classes == 1


# -------------------------------------------------------------------- test_cfg NMS
def test_unknown_nms_type_fails_when_the_model_is_built():
    with pytest.raises(ValueError, match=r"test_cfg.rcnn.nms.type='matrix_nms' is not an NMS "
                                         r"mmft runs; use one of \['nms', 'soft_nms'\]"):
        _small_model('faster_rcnn_r50_fpn', **{'model.test_cfg.rcnn.nms.type': 'matrix_nms'})
    with pytest.raises(ValueError, match=r'train_cfg.rpn_proposal.nms \(nms\) has unknown keys'):
        _small_model('faster_rcnn_r50_fpn', **{'model.train_cfg.rpn_proposal.nms.sigma': 0.5})


@pytest.mark.parametrize('stage', ['rcnn', 'rpn'])
def test_soft_nms_in_test_cfg_keeps_what_hard_nms_drops_with_decayed_scores(stage):
    """MMDetection's soft-NMS test_cfg: the same model keeps every box hard NMS keeps (same
    top detection), plus overlapping ones with lower scores instead of none."""
    iou = 0.5 if stage == 'rcnn' else 0.7
    hard = dict(type='nms', iou_threshold=iou)
    soft = dict(type='soft_nms', iou_threshold=iou, method='linear', min_score=0.001)
    models = {}
    for name, nms in (('hard', hard), ('soft', soft)):
        torch.manual_seed(0)
        models[name] = _small_model('faster_rcnn_r50_fpn', **{
            f'model.test_cfg.{stage}.nms': dict(nms, _delete_=True),
            'model.test_cfg.rcnn.score_thr': 0.0, 'model.test_cfg.rcnn.max_per_img': 1000,
            'model.test_cfg.rpn.max_per_img': 1000}
        ).eval()
    torch.manual_seed(1)
    data = _batch(_scene([(0, (10, 10, 40, 40)), (1, (30, 20, 60, 50))]))
    with torch.no_grad():
        if stage == 'rpn':
            feats = {n: m.extract_feat(m.data_preprocessor(copy.deepcopy(data))['inputs'])
                     for n, m in models.items()}
            preds = {n: m.rpn_head.predict(feats[n], data['data_samples'])[0]
                     for n, m in models.items()}
        else:
            preds = {n: m.test_step(copy.deepcopy(data))[0].pred_instances
                     for n, m in models.items()}
    h, s = preds['hard'], preds['soft']
    assert len(s) > len(h) > 0
    assert (s.scores[:-1] >= s.scores[1:]).all()
    torch.testing.assert_close(s.bboxes[0], h.bboxes[0])
    assert float(s.scores[0]) == pytest.approx(float(h.scores[0]))
