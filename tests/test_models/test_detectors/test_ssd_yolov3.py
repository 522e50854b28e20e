"""SSD300, SSDLite and YOLOv3 as MMDetection lays them out (state_dict keys and shapes
held here), their class-row declarations, and a fine-tuning load from the shapes source
classes to the target classes that copies the shared classes' rows at every anchor and level.
"""
import pytest
import torch
from mmengine.registry import DefaultScope

from mmft.datasets.synthetic import SHAPES_SYNONYMS, SOURCE_CLASSES, TARGET_CLASSES
from mmft.finetune.config import FinetuneConfig
from mmft.finetune.load import load_pretrained
from mmft.finetune.patterns import model_presets
from mmft.registry import MODELS
from mmft.structures.class_rows import find_class_rows

SSD300 = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[1, 1, 1], bgr_to_rgb=True, pad_size_divisor=1),
    backbone=dict(type='SSDVGG', depth=16, with_last_pool=False, ceil_mode=True,
                  out_indices=(3, 4), out_feature_indices=(22, 34)),
    neck=dict(type='SSDNeck', in_channels=(512, 1024),
              out_channels=(512, 1024, 512, 256, 256, 256), level_strides=(2, 2, 1, 1),
              level_paddings=(1, 1, 0, 0), l2_norm_scale=20),
    bbox_head=dict(type='SSDHead', in_channels=(512, 1024, 512, 256, 256, 256), num_classes=80,
                   anchor_generator=dict(type='SSDAnchorGenerator', scale_major=False,
                                         input_size=300, basesize_ratio_range=(0.15, 0.9),
                                         strides=[8, 16, 32, 64, 100, 300],
                                         ratios=[[2], [2, 3], [2, 3], [2, 3], [2], [2]]),
                   bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                                   target_stds=[0.1, 0.1, 0.2, 0.2])),
    train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                                 min_pos_iou=0., ignore_iof_thr=-1, gt_max_assign_all=False),
                   sampler=dict(type='PseudoSampler'), smoothl1_beta=1., allowed_border=-1,
                   pos_weight=-1, neg_pos_ratio=3, debug=False),
    test_cfg=dict(nms_pre=1000, nms=dict(type='nms', iou_threshold=0.45), min_bbox_size=0,
                  score_thr=0.02, max_per_img=200))

# MMDetection 3.3's SSD300 (COCO) state_dict, read from its SSDVGG / SSDNeck / SSDHead source
VGG16 = {0: (64, 3, 3), 2: (64, 64, 3), 5: (128, 64, 3), 7: (128, 128, 3), 10: (256, 128, 3),
         12: (256, 256, 3), 14: (256, 256, 3), 17: (512, 256, 3), 19: (512, 512, 3),
         21: (512, 512, 3), 24: (512, 512, 3), 26: (512, 512, 3), 28: (512, 512, 3),
         31: (1024, 512, 3), 33: (1024, 1024, 1)}
SSD300_NECK = {  # extra level -> ((out, in, k) of the 1x1 conv, of the second conv)
    0: ((256, 1024, 1), (512, 256, 3)), 1: ((128, 512, 1), (256, 128, 3)),
    2: ((128, 256, 1), (256, 128, 3)), 3: ((128, 256, 1), (256, 128, 3))}
SSD300_HEAD = {  # level -> (in channels, anchors)
    0: (512, 4), 1: (1024, 6), 2: (512, 6), 3: (256, 6), 4: (256, 4), 5: (256, 4)}


def ssd300_keys(num_classes=80):
    keys = {}
    for i, (o, c, k) in VGG16.items():
        keys[f'backbone.features.{i}.weight'] = (o, c, k, k)
        keys[f'backbone.features.{i}.bias'] = (o,)
    keys['neck.l2_norm.weight'] = (512,)
    for lvl, convs in SSD300_NECK.items():
        for j, (o, c, k) in enumerate(convs):
            keys[f'neck.extra_layers.{lvl}.{j}.conv.weight'] = (o, c, k, k)
            keys[f'neck.extra_layers.{lvl}.{j}.conv.bias'] = (o,)
    for lvl, (c, a) in SSD300_HEAD.items():
        for name, rows in (('cls_convs', a * (num_classes + 1)), ('reg_convs', a * 4)):
            keys[f'bbox_head.{name}.{lvl}.0.weight'] = (rows, c, 3, 3)
            keys[f'bbox_head.{name}.{lvl}.0.bias'] = (rows,)
    return keys


def yolov3_d53_head_neck_keys(num_classes=80):
    """MMDetection's YOLOV3Neck (in [1024, 512, 256], out [512, 256, 128]) and YOLOV3Head."""
    convs = {}  # ConvModule path -> (out, in, k): conv + BN

    def block(name, cin, cout):
        for j, (o, c, k) in enumerate([(cout, cin, 1), (2 * cout, cout, 3), (cout, 2 * cout, 1),
                                       (2 * cout, cout, 3), (cout, 2 * cout, 1)], start=1):
            convs[f'neck.{name}.conv{j}'] = (o, c, k)
    block('detect1', 1024, 512)
    convs['neck.conv1'] = (256, 512, 1)
    block('detect2', 512 + 256, 256)
    convs['neck.conv2'] = (128, 256, 1)
    block('detect3', 256 + 128, 128)
    for i, (c, o) in enumerate([(512, 1024), (256, 512), (128, 256)]):
        convs[f'bbox_head.convs_bridge.{i}'] = (o, c, 3)
    keys = {}
    for path, (o, c, k) in convs.items():
        keys[f'{path}.conv.weight'] = (o, c, k, k)
        for buf in ('weight', 'bias', 'running_mean', 'running_var'):
            keys[f'{path}.bn.{buf}'] = (o,)
        keys[f'{path}.bn.num_batches_tracked'] = ()
    for i, c in enumerate([1024, 512, 256]):
        keys[f'bbox_head.convs_pred.{i}.weight'] = (3 * (5 + num_classes), c, 1, 1)
        keys[f'bbox_head.convs_pred.{i}.bias'] = (3 * (5 + num_classes),)
    return keys


def build(cfg):
    with DefaultScope.overwrite_default_scope('mmft'):
        return MODELS.build(cfg)


def shapes_of(model, prefixes=('',)):
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith(prefixes)}


def test_ssd300_keys_equal_mmdetection():
    model = build(SSD300)
    assert shapes_of(model) == ssd300_keys()
    rows = find_class_rows(model)
    assert sorted(rows) == sorted(f'bbox_head.cls_convs.{i}.0.{p}' for i in range(6)
                                  for p in ('weight', 'bias'))
    level1 = rows['bbox_head.cls_convs.1.0.weight']
    assert (level1.groups, level1.background, level1.num_rows) == (6, 'last', 486)
    assert model_presets(model)['ssd'] == [f'bbox_head.cls_convs.{i}.0' for i in range(6)]


@pytest.mark.slow
def test_yolov3_darknet53_keys_equal_mmdetection():
    from tests.test_configs.mmdet_ssd_yolo_configs import MMDET_CONFIGS
    text = MMDET_CONFIGS['yolo/yolov3_d53_8xb8-ms-608-273e_coco.py']
    namespace = {}  # the config's model section is plain python
    exec(text[text.index('# model settings'):text.index('# dataset settings')], namespace)
    model = build(namespace['model'])
    assert shapes_of(model, ('neck.', 'bbox_head.')) == yolov3_d53_head_neck_keys()
    assert len([k for k in model.state_dict() if k.startswith('backbone.')]) == 52 * 6
    rows = find_class_rows(model)['bbox_head.convs_pred.2.weight']
    assert (rows.groups, rows.prefix, rows.num_rows) == (3, 5, 255)


# small versions for fine-tuning: the real layouts (anchors, row blocks), few channels
def tiny_ssdlite(num_classes):
    return dict(
        type='SingleStageDetector',
        data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
        backbone=dict(type='MobileNetV2', widen_factor=0.25, out_indices=(4, 7)),
        neck=dict(type='SSDNeck', in_channels=(24, 1280), out_channels=(24, 1280, 64, 32),
                  level_strides=(2, 2), level_paddings=(1, 1), l2_norm_scale=None,
                  use_depthwise=True, norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU6')),
        bbox_head=dict(type='SSDHead', in_channels=(24, 1280, 64, 32), num_classes=num_classes,
                       use_depthwise=True, norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU6'),
                       anchor_generator=dict(type='SSDAnchorGenerator', scale_major=False,
                                             strides=[16, 32, 64, 128],
                                             ratios=[[2], [2, 3], [2, 3], [2]],
                                             min_sizes=[12, 24, 48, 80],
                                             max_sizes=[24, 48, 80, 112]),
                       bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                                       target_stds=[0.1, 0.1, 0.2, 0.2])),
        train_cfg=SSD300['train_cfg'],
        test_cfg=dict(nms_pre=200, nms=dict(type='nms', iou_threshold=0.45), min_bbox_size=0,
                      score_thr=0.02, max_per_img=50))


def tiny_yolov3(num_classes):
    return dict(
        type='YOLOV3',
        data_preprocessor=dict(type='DetDataPreprocessor', mean=[0, 0, 0], std=[255.] * 3,
                               bgr_to_rgb=True, pad_size_divisor=32),
        backbone=dict(type='MobileNetV2', widen_factor=0.25, out_indices=(2, 4, 6),
                      act_cfg=dict(type='LeakyReLU', negative_slope=0.1)),
        neck=dict(type='YOLOV3Neck', num_scales=3, in_channels=[80, 24, 8],
                  out_channels=[32, 32, 32]),
        bbox_head=dict(type='YOLOV3Head', num_classes=num_classes, in_channels=[32, 32, 32],
                       out_channels=[32, 32, 32],
                       anchor_generator=dict(type='YOLOAnchorGenerator',
                                             base_sizes=[[(40, 40), (56, 40), (40, 56)],
                                                         [(20, 20), (28, 20), (20, 28)],
                                                         [(8, 8), (12, 8), (8, 12)]],
                                             strides=[32, 16, 8]),
                       featmap_strides=[32, 16, 8],
                       loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='sum'),
                       loss_conf=dict(type='CrossEntropyLoss', use_sigmoid=True,
                                      reduction='sum'),
                       loss_xy=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=2.0,
                                    reduction='sum'),
                       loss_wh=dict(type='MSELoss', loss_weight=2.0, reduction='sum')),
        train_cfg=dict(assigner=dict(type='GridAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                                     min_pos_iou=0)),
        test_cfg=dict(nms_pre=200, min_bbox_size=0, score_thr=0.05, conf_thr=0.005,
                      nms=dict(type='nms', iou_threshold=0.45), max_per_img=50))


def _fine_tune_load(tmp_path, make_cfg, seed=0):
    torch.manual_seed(seed)
    source = build(make_cfg(len(SOURCE_CLASSES)))
    source.init_weights()
    path = tmp_path / 'source.pth'
    torch.save({'state_dict': source.state_dict(),
                'meta': {'dataset_meta': {'classes': SOURCE_CLASSES}}}, path)
    target = build(make_cfg(len(TARGET_CLASSES)))
    target.init_weights()
    init = {k: v.clone() for k, v in target.state_dict().items()}
    report = load_pretrained(target, str(path), FinetuneConfig(class_mapping=SHAPES_SYNONYMS),
                             new_classes=TARGET_CLASSES)
    return source.state_dict(), init, target.state_dict(), report


# target class -> source class: circle, triangle, star by name, box <- square (class_mapping)
SHARED = {0: 0, 1: 2, 2: 3, 3: 1}


def test_ssd_fine_tune_copies_shared_rows_of_every_anchor_and_level(tmp_path):
    src, init, out, report = _fine_tune_load(tmp_path, tiny_ssdlite)
    n_src, n_tgt = len(SOURCE_CLASSES) + 1, len(TARGET_CLASSES) + 1
    for level, anchors in enumerate([4, 6, 6, 4]):
        key = f'bbox_head.cls_convs.{level}.1.weight'
        assert out[key].shape[0] == anchors * n_tgt
        for a in range(anchors):
            for new, old in SHARED.items():
                assert torch.equal(out[key][a * n_tgt + new], src[key][a * n_src + old])
            # pentagon is new: keeps the head's own init; background (last) comes along
            assert torch.equal(out[key][a * n_tgt + 4], init[key][a * n_tgt + 4])
            assert torch.equal(out[key][a * n_tgt + 5], src[key][a * n_src + 10])
        bias = f'bbox_head.cls_convs.{level}.1.bias'
        assert torch.equal(out[bias][n_tgt - 1::n_tgt], src[bias][n_src - 1::n_src])
    assert len(report.transferred) == 8  # weight and bias of 4 levels
    for key in out:  # everything else restored as is
        if 'cls_convs' not in key or not key.endswith(('.1.weight', '.1.bias')):
            assert torch.equal(out[key], src[key]), key


def test_yolov3_fine_tune_copies_shared_rows_and_box_rows(tmp_path):
    src, init, out, report = _fine_tune_load(tmp_path, tiny_yolov3)
    n_src, n_tgt = 5 + len(SOURCE_CLASSES), 5 + len(TARGET_CLASSES)
    for level in range(3):
        for name in ('weight', 'bias'):
            key = f'bbox_head.convs_pred.{level}.{name}'
            assert out[key].shape[0] == 3 * n_tgt
            for a in range(3):
                # box and objectness rows of every anchor, then the shared classes
                assert torch.equal(out[key][a * n_tgt:a * n_tgt + 5],
                                   src[key][a * n_src:a * n_src + 5])
                for new, old in SHARED.items():
                    assert torch.equal(out[key][a * n_tgt + 5 + new],
                                       src[key][a * n_src + 5 + old])
                assert torch.equal(out[key][a * n_tgt + 5 + 4], init[key][a * n_tgt + 5 + 4])
    # a new class starts at the 0.01 prior, as MMDetection initialises its class rows
    new_bias = out['bbox_head.convs_pred.0.bias'][5 + 4]
    assert new_bias.item() == pytest.approx(-4.59512, abs=1e-4)
    assert len(report.transferred) == 6


def test_ssd_head_predicts_in_eval_with_its_test_cfg():
    """MMDetection 3.3.0's SSDHead cannot predict (no loss_cls attribute); mmft's does."""
    from mmft.structures import DetDataSample
    model = build(tiny_ssdlite(3)).eval()
    model.init_weights()
    samples = [DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(32, 32),
                                           scale_factor=(2.0, 2.0)))]
    with torch.no_grad():
        preds = model(torch.rand(1, 3, 64, 64), samples, mode='predict')
    inst = preds[0].pred_instances
    assert len(inst) > 0 and inst.labels.max() < 3
    assert inst.bboxes.max() <= 32 + 1e-4  # rescaled to ori_shape
    assert model.bbox_head.loss_cls is not None
