"""A short shapes run of a small RTMDet-Ins: the losses fall, bbox and segm mAP > 0.

As for RTMDet (tests/test_engine/test_rtmdet_training.py) the box loss peaks within the first
iterations, so its fall is measured from that peak; the mask (Dice) loss falls from the start.
"""
import numpy as np
import pytest
from mmengine.config import ConfigDict

from mmft.engine import FinetuneRunner
from tests.test_models.test_detectors.test_rtmdet_ins import tiny_rtmdet_ins
from tests.tiny_runs import SOURCE_CLASSES, make_shapes_data, tiny_config


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return make_shapes_data(str(tmp_path_factory.mktemp('shapes')), num_train=16)


@pytest.mark.slow
def test_short_shapes_run_learns_boxes_and_masks(shapes, tmp_path):
    root = shapes['source']
    max_iters = 80
    load = [dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True)]
    pipeline = load + [dict(type='YOLOXHSVRandomAug'), dict(type='RandomFlip', prob=0.5),
                       dict(type='PackDetInputs')]
    test_pipeline = load + [dict(type='PackDetInputs',
                                 meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                            'scale_factor'))]
    # evaluated on its own training images: the test checks learning, not generalisation
    dataset = dict(type='CocoDataset', data_root=root + '/', ann_file='train.json',
                   data_prefix=dict(img='train/'), metainfo=dict(classes=SOURCE_CLASSES))
    cfg = tiny_config(root, str(tmp_path), SOURCE_CLASSES, max_iters=max_iters, batch_size=4)
    cfg.optim_wrapper = ConfigDict(type='OptimWrapper',
                                   optimizer=dict(type='AdamW', lr=0.004, weight_decay=0.05),
                                   paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0,
                                                      bypass_duplicate=True))
    cfg.model = ConfigDict(tiny_rtmdet_ins(len(SOURCE_CLASSES)))
    cfg.train_dataloader.dataset.pipeline = pipeline
    cfg.train_cfg.val_interval = max_iters
    cfg.val_dataloader = dict(batch_size=4, num_workers=0, drop_last=False,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              dataset=dict(dataset, test_mode=True, pipeline=test_pipeline))
    cfg.val_cfg = dict(type='ValLoop')
    cfg.val_evaluator = dict(type='CocoMetric', ann_file=root + '/train.json',
                             metric=['bbox', 'segm'])
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                                end=10)]
    runner = FinetuneRunner.from_cfg(cfg)
    runner.train()
    hub = runner.message_hub
    loss = np.array(hub.get_scalar('train/loss').data[0])
    loss_bbox = np.array(hub.get_scalar('train/loss_bbox').data[0])
    loss_mask = np.array(hub.get_scalar('train/loss_mask').data[0])
    metrics = runner.val_loop.run()
    assert np.isfinite(loss).all()
    # measured: box loss 0.96 at iterations 15-25, 0.72 over the last 10; mask loss 1.55 over
    # the first 10, 0.85 over the last 10
    assert loss_bbox[-10:].mean() < 0.85 * loss_bbox[15:25].mean()
    assert loss_mask[-10:].mean() < 0.8 * loss_mask[:10].mean()
    assert loss[-10:].mean() < loss[15:25].mean()
    assert metrics['coco/bbox_mAP'] > 0
    assert metrics['coco/segm_mAP'] > 0
