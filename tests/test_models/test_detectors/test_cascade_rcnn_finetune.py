"""Cascade Mask R-CNN through the fine-tuning path on the shapes data: every stage's class
rows move by class name, the preset and num_classes='auto' cover all stages, and a short
run learns."""
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmft.checkpoint import torch_load_safely
from mmft.engine import FinetuneRunner
from mmft.finetune import FinetuneConfig, load_pretrained
from mmft.registry import MODELS
from tests.tiny_runs import (REPO_ROOT, SOURCE_CLASSES, TARGET_CLASSES, make_shapes_data,
                             tiny_config)

MAPPING = {'box': 'square'}
WIDTH = 16


def cascade_model(with_mask: bool = True, num_classes='auto') -> Config:
    """MMDetection's Cascade (Mask) R-CNN layout, narrowed for 64 px shapes on a CPU."""
    name = 'cascade_mask_rcnn_r50_fpn' if with_mask else 'cascade_rcnn_r50_fpn'
    cfg = Config.fromfile(osp.join(REPO_ROOT, f'configs/_base_/models/{name}.py'))
    cfg.merge_from_dict({
        'model.backbone': dict(depth=18, base_channels=16, frozen_stages=-1, norm_eval=False,
                               init_cfg=None),
        'model.neck': dict(in_channels=[16, 32, 64, 128], out_channels=WIDTH),
        'model.rpn_head': dict(in_channels=WIDTH, feat_channels=WIDTH,
                               anchor_generator=dict(scales=[4])),  # 16 px anchors at stride 4
        'model.roi_head.bbox_roi_extractor.out_channels': WIDTH,
        'model.train_cfg.rpn.sampler.num': 128,
        'model.train_cfg.rpn_proposal': dict(nms_pre=300, max_per_img=150),
        'model.test_cfg.rpn': dict(nms_pre=300, max_per_img=100),
        'model.test_cfg.rcnn.max_per_img': 50})
    for head in cfg.model.roi_head.bbox_head:
        head.update(in_channels=WIDTH, fc_out_channels=64, num_classes=num_classes)
    for stage in cfg.model.train_cfg.rcnn:
        stage.sampler.num = 64
    if with_mask:
        cfg.merge_from_dict({
            'model.roi_head.mask_roi_extractor.out_channels': WIDTH,
            'model.roi_head.mask_head': dict(num_convs=1, in_channels=WIDTH,
                                             conv_out_channels=WIDTH, num_classes=num_classes)})
    return cfg.model


def _config(data_root, work_dir, classes, with_mask=True, **kwargs):
    cfg = tiny_config(data_root, work_dir, classes, **kwargs)
    cfg.model = cascade_model(with_mask)
    return cfg


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return make_shapes_data(str(tmp_path_factory.mktemp('shapes')))


@pytest.fixture(scope='module')
def source_ckpt(shapes, tmp_path_factory):
    """A 10-class Cascade Mask R-CNN after 2 iterations on the source domain."""
    work_dir = str(tmp_path_factory.mktemp('source'))
    FinetuneRunner.from_cfg(_config(shapes['source'], work_dir, SOURCE_CLASSES,
                                    max_iters=2)).train()
    return osp.join(work_dir, 'iter_2.pth')


CLASS_ROW_KEYS = [f'roi_head.bbox_head.{t}.fc_cls.{p}' for t in range(3)
                  for p in ('weight', 'bias')] + \
    [f'roi_head.mask_head.{t}.conv_logits.{p}' for t in range(3) for p in ('weight', 'bias')]


def test_every_stage_and_mask_head_gets_the_rows_of_shared_classes(shapes, source_ckpt,
                                                                   tmp_path):
    cfg = _config(shapes['target'], str(tmp_path), TARGET_CLASSES,
                  finetune=dict(class_mapping=MAPPING), load_from=source_ckpt)
    runner = FinetuneRunner.from_cfg(cfg)
    model = runner.model
    # num_classes='auto' reached the heads inside the per-stage list
    assert [h.num_classes for h in model.roi_head.bbox_head] == [5, 5, 5]
    assert [h.num_classes for h in model.roi_head.mask_head] == [5, 5, 5]
    init = {k: v.clone() for k, v in model.state_dict().items()}
    runner.load_checkpoint(source_ckpt)
    src = torch_load_safely(source_ckpt)['state_dict']
    out = model.state_dict()
    for t in range(3):
        cls_w = f'roi_head.bbox_head.{t}.fc_cls.weight'
        logits = f'roi_head.mask_head.{t}.conv_logits.weight'
        assert out[cls_w].shape[0] == len(TARGET_CLASSES) + 1
        for new, old in (('circle', 'circle'), ('star', 'star'), ('box', 'square')):
            i, j = TARGET_CLASSES.index(new), SOURCE_CLASSES.index(old)
            assert torch.equal(out[cls_w][i], src[cls_w][j]), (t, new)
            assert torch.equal(out[logits][i], src[logits][j]), (t, new)
        assert torch.equal(out[cls_w][-1], src[cls_w][len(SOURCE_CLASSES)])  # background
        pentagon = TARGET_CLASSES.index('pentagon')
        assert torch.equal(out[cls_w][pentagon], init[cls_w][pentagon])
        # class-agnostic regression: the same 4 rows, loaded as they are
        reg = f'roi_head.bbox_head.{t}.fc_reg.weight'
        assert out[reg].shape[0] == 4 and torch.equal(out[reg], src[reg])
        assert torch.equal(out[f'roi_head.bbox_head.{t}.shared_fcs.0.weight'],
                           src[f'roi_head.bbox_head.{t}.shared_fcs.0.weight'])
    report = runner.load_report
    assert sorted(report.transferred) == sorted(CLASS_ROW_KEYS)
    assert report.skipped_suspicious == [] and report.missing == []
    table = report.table()
    for t in range(3):
        assert f'roi_head.bbox_head.{t}' in table and f'roi_head.mask_head.{t}' in table


def test_cascade_rcnn_preset_excludes_the_class_rows_of_every_stage(source_ckpt):
    model = MODELS.build(cascade_model(num_classes=len(SOURCE_CLASSES)))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    report = load_pretrained(model, source_ckpt, FinetuneConfig(exclude=['cascade_rcnn']),
                             new_classes=SOURCE_CLASSES)
    assert sorted(report.excluded) == sorted(CLASS_ROW_KEYS)
    src = torch_load_safely(source_ckpt)['state_dict']
    out = model.state_dict()
    for key in CLASS_ROW_KEYS:
        assert torch.equal(out[key], init[key])
    assert torch.equal(out['roi_head.bbox_head.2.fc_reg.weight'],
                       src['roi_head.bbox_head.2.fc_reg.weight'])


@pytest.mark.slow
def test_short_shapes_run_loss_falls_and_map_is_above_zero(shapes, tmp_path):
    """Cascade R-CNN from scratch on 8 source images for 30 iterations, then COCO mAP on
    those images (a check that it learns, not a benchmark)."""
    iters = 30
    cfg = _config(shapes['source'], str(tmp_path), SOURCE_CLASSES, with_mask=False,
                  max_iters=iters, batch_size=4)
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True),
                dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                      'img_shape', 'scale_factor'))]
    cfg.merge_from_dict(dict(
        train_cfg=dict(val_interval=10 ** 6),
        val_cfg=dict(type='ValLoop'),
        val_dataloader=dict(
            batch_size=4, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(type='CocoDataset', data_root=shapes['source'] + '/',
                         ann_file='train.json', data_prefix=dict(img='train/'),
                         metainfo=dict(classes=SOURCE_CLASSES), test_mode=True,
                         pipeline=pipeline)),
        val_evaluator=dict(type='CocoMetric', ann_file=shapes['source'] + '/train.json',
                           metric='bbox'),
        optim_wrapper=dict(optimizer=dict(lr=0.02)),
        param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                              end=5)],
        log_processor=dict(by_epoch=False, window_size=1)))
    runner = FinetuneRunner.from_cfg(cfg)
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0].tolist()
    assert len(losses) == iters
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5, losses
    # the last stage trained at every step
    assert len(runner.message_hub.get_scalar('train/s2.loss_cls').data[0]) == iters
    metrics = runner.val()
    assert metrics['coco/bbox_mAP'] > 0, metrics


def test_init_detector_and_inference_on_a_cascade_checkpoint(shapes, source_ckpt, tmp_path):
    """The exact-mode load (test.py, init_detector) takes a Cascade Mask R-CNN checkpoint
    whole: 'auto' heads get the checkpoint's 10 classes, every stage loads."""
    import cv2
    from mmft.apis import inference_detector, init_detector
    cfg = _config(shapes['source'], str(tmp_path), SOURCE_CLASSES)
    cfg.test_dataloader = dict(dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                              'scale_factor'))]))
    model = init_detector(cfg, source_ckpt)
    assert model.dataset_meta['classes'] == SOURCE_CLASSES
    src = torch_load_safely(source_ckpt)['state_dict']
    for key in ('roi_head.bbox_head.2.fc_cls.weight', 'roi_head.mask_head.1.conv_logits.bias'):
        assert torch.equal(model.state_dict()[key], src[key])
    train_dir = osp.join(shapes['source'], 'train')
    image = cv2.imread(osp.join(train_dir, sorted(os.listdir(train_dir))[0]))
    result = inference_detector(model, image)
    res = result.pred_instances
    assert res.masks.shape[1:] == image.shape[:2] and (res.labels < len(SOURCE_CLASSES)).all()
