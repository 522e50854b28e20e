"""RetinaNet, FCOS and ATSS: MMDetection's keys, MMDetection's config files, training, inference."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from mmft.registry import MODELS
from mmft.structures import bbox_overlaps
from .test_two_stage import _batch, _scene

MODELS_DIR = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs', '_base_', 'models')
BASES = dict(retinanet='retinanet_r50_fpn', fcos='fcos_r50-caffe_fpn_gn-head', atss='atss_r50_fpn')


# -------------------------------------------------------------------- MMDetection's keys
def _bn(prefix, channels):
    keys = {f'{prefix}.{n}': (channels,) for n in ('weight', 'bias', 'running_mean',
                                                    'running_var')}
    keys[f'{prefix}.num_batches_tracked'] = ()
    return keys


def _resnet50_fpn_keys(extra_in):
    """ResNet-50 + FPN (start_level=1, 5 outputs, first extra conv on ``extra_in`` channels)."""
    keys = {'backbone.conv1.weight': (64, 3, 7, 7), **_bn('backbone.bn1', 64)}
    inplanes = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
        for b in range(blocks):
            p = f'backbone.layer{stage + 1}.{b}'
            keys[f'{p}.conv1.weight'] = (planes, inplanes if b == 0 else planes * 4, 1, 1)
            keys[f'{p}.conv2.weight'] = (planes, planes, 3, 3)
            keys[f'{p}.conv3.weight'] = (planes * 4, planes, 1, 1)
            keys.update({**_bn(f'{p}.bn1', planes), **_bn(f'{p}.bn2', planes),
                         **_bn(f'{p}.bn3', planes * 4)})
            if b == 0:
                keys[f'{p}.downsample.0.weight'] = (planes * 4, inplanes, 1, 1)
                keys.update(_bn(f'{p}.downsample.1', planes * 4))
        inplanes = planes * 4
    for i, c in enumerate((512, 1024, 2048)):
        keys.update({f'neck.lateral_convs.{i}.conv.weight': (256, c, 1, 1),
                     f'neck.lateral_convs.{i}.conv.bias': (256,)})
    for i, c in enumerate((256, 256, 256, extra_in, 256)):
        keys.update({f'neck.fpn_convs.{i}.conv.weight': (256, c, 3, 3),
                     f'neck.fpn_convs.{i}.conv.bias': (256,)})
    return keys


def _towers(gn):
    keys = {}
    for tower in ('cls_convs', 'reg_convs'):
        for i in range(4):
            p = f'bbox_head.{tower}.{i}'
            keys[f'{p}.conv.weight'] = (256, 256, 3, 3)
            if gn:
                keys.update({f'{p}.gn.weight': (256,), f'{p}.gn.bias': (256,)})
            else:
                keys[f'{p}.conv.bias'] = (256,)
    return keys


def _predictors(names_rows, scales=False):
    keys = {}
    for name, rows in names_rows:
        keys.update({f'bbox_head.{name}.weight': (rows, 256, 3, 3),
                     f'bbox_head.{name}.bias': (rows,)})
    if scales:
        keys.update({f'bbox_head.scales.{i}.scale': () for i in range(5)})
    return keys


MMDET_KEYS = dict(
    # RetinaNet: extra P6 from C5 ('on_input'), 9 anchors x 80 classes
    retinanet={**_resnet50_fpn_keys(2048), **_towers(gn=False),
               **_predictors([('retina_cls', 720), ('retina_reg', 36)])},
    fcos={**_resnet50_fpn_keys(256), **_towers(gn=True),
          **_predictors([('conv_cls', 80), ('conv_reg', 4), ('conv_centerness', 1)], True)},
    atss={**_resnet50_fpn_keys(256), **_towers(gn=True),
          **_predictors([('atss_cls', 80), ('atss_reg', 4), ('atss_centerness', 1)], True)},
)


@pytest.mark.parametrize('family', ['retinanet', 'fcos', 'atss'])
def test_r50_configs_have_exactly_mmdetection_keys_and_shapes(family):
    cfg = Config.fromfile(osp.join(MODELS_DIR, f'{BASES[family]}.py'))
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == {'retinanet': 'RetinaNet', 'fcos': 'FCOS',
                                    'atss': 'ATSS'}[family]
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == MMDET_KEYS[family]
    assert len(MMDET_KEYS[family]) == {'retinanet': 354, 'fcos': 369, 'atss': 369}[family]


# -------------------------------------------------------------------- MMDetection's config files
# The model parts of MMDetection 3.3's files, as they are; only default_scope is added.
RETINANET_BASE = """
model = dict(
    type='RetinaNet',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(type='ResNet', depth=50, num_stages=4, out_indices=(0, 1, 2, 3),
                  frozen_stages=1, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True,
                  style='pytorch',
                  init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, start_level=1,
              add_extra_convs='on_input', num_outs=5),
    bbox_head=dict(
        type='RetinaHead', num_classes=80, in_channels=256, stacked_convs=4, feat_channels=256,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3,
                              ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=dict(
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0,
                      ignore_iof_thr=-1),
        sampler=dict(type='PseudoSampler'),  # Focal loss should use PseudoSampler
        allowed_border=-1, pos_weight=-1, debug=False),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
"""
RETINANET_R18 = """
_base_ = ['./retinanet_r50_fpn.py']
default_scope = 'mmft'
model = dict(
    backbone=dict(depth=18, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
"""
FCOS_1X = """
default_scope = 'mmft'
model = dict(
    type='FCOS',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[102.9801, 115.9465, 122.7717],
                           std=[1.0, 1.0, 1.0], bgr_to_rgb=False, pad_size_divisor=32),
    backbone=dict(type='ResNet', depth=50, num_stages=4, out_indices=(0, 1, 2, 3),
                  frozen_stages=1, norm_cfg=dict(type='BN', requires_grad=False),
                  norm_eval=True, style='caffe',
                  init_cfg=dict(type='Pretrained',
                                checkpoint='open-mmlab://detectron/resnet50_caffe')),
    neck=dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, start_level=1,
              add_extra_convs='on_output', num_outs=5, relu_before_extra_convs=True),
    bbox_head=dict(
        type='FCOSHead', num_classes=80, in_channels=256, stacked_convs=4, feat_channels=256,
        strides=[8, 16, 32, 64, 128],
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0),
        loss_bbox=dict(type='IoULoss', loss_weight=1.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
optim_wrapper = dict(optimizer=dict(lr=0.01), paramwise_cfg=dict(bias_lr_mult=2.,
                     bias_decay_mult=0.), clip_grad=dict(max_norm=35, norm_type=2))
"""
FCOS_CENTER_GIOU = """
_base_ = './fcos_r50-caffe_fpn_gn-head_1x_coco.py'
model = dict(
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[103.530, 116.280, 123.675],
                           std=[1.0, 1.0, 1.0], bgr_to_rgb=False, pad_size_divisor=32),
    backbone=dict(init_cfg=dict(type='Pretrained',
                                checkpoint='open-mmlab://detectron2/resnet50_caffe')),
    bbox_head=dict(norm_on_bbox=True, centerness_on_reg=True, dcn_on_last_conv=False,
                   center_sampling=True, conv_bias=True,
                   loss_bbox=dict(type='GIoULoss', loss_weight=1.0)),
    test_cfg=dict(nms=dict(type='nms', iou_threshold=0.6)))
optim_wrapper = dict(clip_grad=None)
"""
ATSS_1X = """
default_scope = 'mmft'
model = dict(
    type='ATSS',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(type='ResNet', depth=50, num_stages=4, out_indices=(0, 1, 2, 3),
                  frozen_stages=1, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True,
                  style='pytorch',
                  init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, start_level=1,
              add_extra_convs='on_output', num_outs=5),
    bbox_head=dict(
        type='ATSSHead', num_classes=80, in_channels=256, stacked_convs=4, feat_channels=256,
        anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=8,
                              scales_per_octave=1, strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                        target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    train_cfg=dict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1,
                   pos_weight=-1, debug=False),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.6), max_per_img=100))
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
"""
MMDET_FILES = {
    'retinanet_r50_fpn.py': RETINANET_BASE,
    'retinanet_r18_fpn_1x_coco.py': RETINANET_R18,
    'fcos_r50-caffe_fpn_gn-head_1x_coco.py': FCOS_1X,
    'fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py': FCOS_CENTER_GIOU,
    'atss_r50_fpn_1x_coco.py': ATSS_1X,
}

SHRINK = {  # for speed only: narrow backbone, 32-channel FPN and towers, 3 classes
    'model.backbone': dict(depth=18, base_channels=16, init_cfg=None),
    'model.neck.in_channels': [16, 32, 64, 128],
    'model.neck.out_channels': 32,
    'model.bbox_head': dict(in_channels=32, feat_channels=32, stacked_convs=2, num_classes=3),
}


@pytest.fixture(scope='module')
def mmdet_configs(tmp_path_factory):
    folder = tmp_path_factory.mktemp('mmdet_configs')
    for name, text in MMDET_FILES.items():
        (folder / name).write_text(text)
    return folder


def _step(model, data, steps=1, lr=1e-3):
    optim = OptimWrapper(torch.optim.Adam(model.parameters(), lr=lr))
    model.train()
    return [model.train_step(data, optim)['loss'].item() for _ in range(steps)]


SCENES = [dict(objects=[(0, (6, 8, 30, 34)), (1, (36, 30, 60, 56))], ori_shape=(32, 32),
               scale_factor=(2., 2.)),
          dict(objects=[(2, (20, 14, 50, 40)), (1, (4, 40, 24, 62))])]


def test_mmdetection_retinanet_r18_file_builds_and_trains_as_is(mmdet_configs):
    """retinanet_r18_fpn_1x_coco.py unchanged but for default_scope: full-width model, one step."""
    cfg = Config.fromfile(str(mmdet_configs / 'retinanet_r18_fpn_1x_coco.py'))
    cfg.model.backbone.init_cfg = None  # no download here; the file's init_cfg is kept above
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert model.bbox_head.retina_cls.out_channels == 9 * 80
    losses = _step(model, _batch(_scene(**SCENES[1])))
    assert np.isfinite(losses).all()


@pytest.mark.parametrize('name, head', [
    ('retinanet_r18_fpn_1x_coco.py', 'RetinaHead'),
    ('fcos_r50-caffe_fpn_gn-head_1x_coco.py', 'FCOSHead'),
    ('fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py', 'FCOSHead'),
    ('atss_r50_fpn_1x_coco.py', 'ATSSHead')])
def test_mmdetection_files_build_and_train_shrunk(mmdet_configs, name, head):
    cfg = Config.fromfile(str(mmdet_configs / name))
    assert cfg.default_scope == 'mmft'
    cfg.merge_from_dict(SHRINK)
    if head != 'RetinaHead':
        cfg.model.bbox_head.norm_cfg = dict(type='GN', num_groups=8, requires_grad=True)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert type(model.bbox_head).__name__ == head
    data = _batch(*[_scene(**kw) for kw in SCENES])
    losses = _step(model, data, steps=2)
    assert np.isfinite(losses).all()
    model.eval()
    with torch.no_grad():
        preds = model.test_step(data)
    assert all(p.pred_instances.bboxes.shape[1] == 4 for p in preds)
    if 'center-normbbox' in name:
        head_ = model.bbox_head
        assert head_.norm_on_bbox and head_.centerness_on_reg and head_.center_sampling
        assert type(head_.loss_bbox).__name__ == 'GIoULoss'
        assert head_.cls_convs[0].conv.bias is not None  # conv_bias=True


# -------------------------------------------------------------------- overfitting
def _small(family, **head):
    cfg = Config.fromfile(osp.join(MODELS_DIR, f'{BASES[family]}.py'))
    cfg.merge_from_dict(SHRINK)
    if family != 'retinanet':
        cfg.model.bbox_head.norm_cfg = dict(type='GN', num_groups=8, requires_grad=True)
    cfg.merge_from_dict({'model.bbox_head': head, 'model.backbone.frozen_stages': -1})
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


@pytest.mark.parametrize('family', ['retinanet', 'fcos', 'atss'])
def test_overfits_a_tiny_batch(family):
    model = _small(family)
    data = _batch(*[_scene(**kw) for kw in SCENES])
    history = _step(model, data, steps=40, lr=2e-3)
    assert np.mean(history[-3:]) < 0.5 * history[0], history
    model.eval()
    with torch.no_grad():
        preds = model.test_step(data)
    found = 0
    for pred, sample in zip(preds, data['data_samples']):
        gt = sample.gt_instances
        scale = torch.tensor(sample.scale_factor).repeat(2)
        # predictions come rescaled to ori_shape
        ious = bbox_overlaps(gt.bboxes / scale, pred.pred_instances.bboxes)
        for g in range(len(gt.bboxes)):
            ok = (ious[g] > 0.5) & (pred.pred_instances.labels == gt.labels[g])
            found += bool(ok.any())
    assert found >= 3, (family, found)


def test_empty_gt_gives_only_background_losses():
    for family in ('retinanet', 'fcos', 'atss'):
        model = _small(family)
        img, sample = _scene(objects=[])
        losses = model(*model.data_preprocessor(_batch((img, sample)), True).values(),
                       mode='loss')
        assert losses['loss_cls'].item() > 0
        assert losses['loss_bbox'].item() == 0
        sum(losses.values()).backward()  # the graph stays connected without positives


@pytest.mark.parametrize('family', ['retinanet', 'fcos', 'atss'])
def test_channels_last_gives_the_default_layouts_losses_grads_and_detections(family):
    """The speed option of DetDataPreprocessor changes the memory layout only."""
    model = _small(family)
    data = _batch(*[_scene(**kw) for kw in SCENES])
    results = []
    for channels_last in (False, True):
        model.data_preprocessor.channels_last = channels_last
        model.train()
        model.zero_grad()
        batch = model.data_preprocessor(data, True)
        losses = model(**batch, mode='loss')
        sum(losses.values()).backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        model.eval()
        with torch.no_grad():
            preds = model.test_step(data)
        results.append((losses, grads, preds))
    (l0, g0, p0), (l1, g1, p1) = results
    for key in l0:
        torch.testing.assert_close(l1[key], l0[key], rtol=1e-4, atol=1e-6)
    assert len(g0) == len(g1) > 0
    for a, b in zip(g0, g1):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-5)
    for a, b in zip(p0, p1):
        torch.testing.assert_close(b.pred_instances.scores, a.pred_instances.scores,
                                   rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(b.pred_instances.bboxes, a.pred_instances.bboxes,
                                   rtol=1e-4, atol=1e-3)
