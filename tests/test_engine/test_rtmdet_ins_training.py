"""A short shapes run of a small RTMDet-Ins: the losses fall, bbox and segm mAP > 0.

As for RTMDet (tests/test_engine/test_rtmdet_training.py) the box loss peaks within the first
iterations, so its fall is measured from that peak; the mask (Dice) loss falls from the start.
"""
import numpy as np
import pytest

from mmft.engine import FinetuneRunner
from tests.test_models.test_detectors.test_rtmdet_ins import tiny_rtmdet_ins
from tests.tiny_runs import SOURCE_CLASSES, make_shapes_data, short_run_config


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return make_shapes_data(str(tmp_path_factory.mktemp('shapes')), num_train=16)


@pytest.mark.slow
def test_short_shapes_run_learns_boxes_and_masks(shapes, tmp_path):
    max_iters = 80
    cfg = short_run_config(
        shapes['source'], str(tmp_path), tiny_rtmdet_ins(len(SOURCE_CLASSES)), max_iters,
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=0.004, weight_decay=0.05),
             paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0, bypass_duplicate=True)),
        transforms=[dict(type='YOLOXHSVRandomAug'), dict(type='RandomFlip', prob=0.5)],
        with_mask=True)
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
