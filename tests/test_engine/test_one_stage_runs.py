"""RetinaNet, FCOS and ATSS through the FinetuneRunner on the shapes data: class-aware
transfer of the sigmoid heads' rows (focal-loss prior for new classes), presets,
``num_classes='auto'``, and short training runs (loss falls, mAP above zero)."""
import math
import os.path as osp

import numpy as np
import pytest
import torch

from mmft.checkpoint import torch_load_safely
from mmft.engine import FinetuneRunner
from tests.tiny_runs import (SOURCE_CLASSES, TARGET_CLASSES, evaluate_on_train,
                              make_shapes_data, tiny_config)

PRIOR_BIAS = -math.log((1 - 0.01) / 0.01)
WIDTH = 16
NECK = dict(type='FPN', in_channels=[16, 32, 64, 128], out_channels=WIDTH, start_level=1,
            add_extra_convs='on_output', num_outs=3)
BACKBONE = dict(type='ResNet', depth=18, base_channels=16, num_stages=4,
                out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False, init_cfg=None)
PREPROCESSOR = dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                    std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32)
TEST_CFG = dict(nms_pre=200, min_bbox_size=0, score_thr=0.05,
                nms=dict(type='nms', iou_threshold=0.5), max_per_img=50)
GN = dict(type='GN', num_groups=8, requires_grad=True)
STRIDES = [8, 16, 32]

MODELS = dict(
    retinanet=dict(
        type='RetinaNet', data_preprocessor=PREPROCESSOR, backbone=BACKBONE, neck=NECK,
        bbox_head=dict(
            type='RetinaHead', num_classes='auto', in_channels=WIDTH, feat_channels=WIDTH,
            stacked_convs=2,
            # anchors of 16-40 px at stride 8: the shapes are 10-40 px
            anchor_generator=dict(type='AnchorGenerator', octave_base_scale=2,
                                  scales_per_octave=3, ratios=[0.5, 1.0, 2.0], strides=STRIDES),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
            loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25),
            loss_bbox=dict(type='L1Loss')),
        train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4,
                                     min_pos_iou=0), sampler=dict(type='PseudoSampler'),
                       allowed_border=-1, pos_weight=-1),
        test_cfg=TEST_CFG),
    fcos=dict(
        type='FCOS', data_preprocessor=PREPROCESSOR, backbone=BACKBONE, neck=NECK,
        bbox_head=dict(type='FCOSHead', num_classes='auto', in_channels=WIDTH,
                       feat_channels=WIDTH, stacked_convs=2, strides=STRIDES, norm_cfg=GN,
                       regress_ranges=((-1, 32), (32, 64), (64, 1e8)), norm_on_bbox=True,
                       centerness_on_reg=True, center_sampling=True,
                       loss_bbox=dict(type='GIoULoss')),
        test_cfg=TEST_CFG),
    atss=dict(
        type='ATSS', data_preprocessor=PREPROCESSOR, backbone=BACKBONE, neck=NECK,
        bbox_head=dict(
            type='ATSSHead', num_classes='auto', in_channels=WIDTH, feat_channels=WIDTH,
            stacked_convs=2, norm_cfg=GN,
            anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=4,
                                  scales_per_octave=1, strides=STRIDES),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_stds=[0.1, 0.1, 0.2, 0.2]),
            loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25),
            loss_bbox=dict(type='GIoULoss', loss_weight=2.0)),
        train_cfg=dict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1,
                       pos_weight=-1),
        test_cfg=TEST_CFG),
)
CLS_LAYER = dict(retinanet='retina_cls', fcos='conv_cls', atss='atss_cls')
ANCHORS = dict(retinanet=9, fcos=1, atss=1)


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return make_shapes_data(str(tmp_path_factory.mktemp('shapes')))


def _config(family, data_root, work_dir, classes, evaluate=False, **kwargs):
    cfg = tiny_config(data_root, work_dir, classes, **kwargs)
    cfg.model = dict(MODELS[family])
    if evaluate:  # on the training images: a short run must reach mAP > 0 there
        evaluate_on_train(cfg, data_root, classes)
    return cfg


@pytest.fixture(scope='module')
def source_ckpts(shapes, tmp_path_factory):
    """Per family, a 10-class "pretrained" model: 2 iterations on the source domain."""
    out = {}
    for family in MODELS:
        work_dir = str(tmp_path_factory.mktemp(f'src_{family}'))
        cfg = _config(family, shapes['source'], work_dir, SOURCE_CLASSES, max_iters=2)
        FinetuneRunner.from_cfg(cfg).train()
        out[family] = osp.join(work_dir, 'iter_2.pth')
    return out


@pytest.mark.parametrize('family', list(MODELS))
def test_class_aware_transfer_copies_shared_rows_for_every_anchor(family, shapes, source_ckpts,
                                                                  tmp_path):
    cfg = _config(family, shapes['target'], str(tmp_path), TARGET_CLASSES,
                  load_from=source_ckpts[family],
                  finetune=dict(class_mapping={'box': 'square'}))
    runner = FinetuneRunner.from_cfg(cfg)
    head = runner.model.bbox_head
    assert head.num_classes == len(TARGET_CLASSES)  # num_classes='auto'
    runner.model.init_weights()  # as Runner.train() does before load_from
    runner.load_checkpoint(source_ckpts[family])
    src = torch_load_safely(source_ckpts[family])['state_dict']
    out = runner.model.state_dict()
    w, b = f'bbox_head.{CLS_LAYER[family]}.weight', f'bbox_head.{CLS_LAYER[family]}.bias'
    n_new, n_old, anchors = len(TARGET_CLASSES), len(SOURCE_CLASSES), ANCHORS[family]
    assert out[w].shape[0] == anchors * n_new and src[w].shape[0] == anchors * n_old
    for new, old in (('circle', 'circle'), ('triangle', 'triangle'), ('star', 'star'),
                     ('box', 'square')):
        i, j = TARGET_CLASSES.index(new), SOURCE_CLASSES.index(old)
        for a in range(anchors):  # per-anchor interleaved rows, no background row
            assert torch.equal(out[w][a * n_new + i], src[w][a * n_old + j]), (new, a)
            assert torch.equal(out[b][a * n_new + i], src[b][a * n_old + j])
    pentagon = TARGET_CLASSES.index('pentagon')
    new_bias = out[b][[a * n_new + pentagon for a in range(anchors)]]
    assert torch.allclose(new_bias, torch.full_like(new_bias, PRIOR_BIAS))  # not zeros
    report = runner.load_report
    assert sorted(report.transferred) == sorted([w, b]) and not report.skipped_suspicious
    for key in ('backbone.layer1.0.conv1.weight', 'neck.fpn_convs.0.conv.weight',
                'bbox_head.cls_convs.0.conv.weight'):
        assert torch.equal(out[key], src[key])


def test_family_preset_excludes_the_class_rows(shapes, source_ckpts, tmp_path):
    cfg = _config('retinanet', shapes['target'], str(tmp_path), TARGET_CLASSES,
                  load_from=source_ckpts['retinanet'], finetune=dict(exclude=['retinanet']))
    runner = FinetuneRunner.from_cfg(cfg)
    runner.model.init_weights()
    init = runner.model.state_dict()['bbox_head.retina_cls.bias'].clone()
    runner.load_checkpoint(source_ckpts['retinanet'])
    assert torch.equal(runner.model.state_dict()['bbox_head.retina_cls.bias'], init)
    assert torch.allclose(init, torch.full_like(init, PRIOR_BIAS))
    assert not runner.load_report.transferred
    with pytest.raises(ValueError, match='fcos'):
        FinetuneRunner.from_cfg(_config('retinanet', shapes['target'], str(tmp_path / 'x'),
                                        TARGET_CLASSES, load_from=source_ckpts['retinanet'],
                                        finetune=dict(exclude=['fcos']))).load_checkpoint(
                                            source_ckpts['retinanet'])


@pytest.mark.slow
@pytest.mark.parametrize('family', list(MODELS))
def test_short_training_run_loss_falls_and_map_above_zero(family, shapes, tmp_path):
    cfg = _config(family, shapes['source'], str(tmp_path), SOURCE_CLASSES, evaluate=True,
                  max_iters=60, batch_size=4)
    # Adam at a constant rate: the point is a working training loop, in few iterations
    cfg.optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=2e-3),
                             clip_grad=dict(max_norm=35, norm_type=2))
    cfg.param_scheduler = []
    runner = FinetuneRunner.from_cfg(cfg)
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 60
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:3]), losses
    assert runner.message_hub.get_scalar('val/coco/bbox_mAP').current() > 0
