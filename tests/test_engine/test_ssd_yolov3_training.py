"""Short shapes runs of small SSDLite and YOLOv3 models: the loss falls and bbox mAP > 0."""
import numpy as np
import pytest
from mmengine.config import ConfigDict

from mmft.engine import FinetuneRunner
from tests.test_models.test_detectors.test_ssd_yolov3 import tiny_ssdlite, tiny_yolov3
from tests.tiny_runs import SOURCE_CLASSES, make_shapes_data, tiny_config


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return make_shapes_data(str(tmp_path_factory.mktemp('shapes')), num_train=16)


def _run(shapes, work_dir, model, max_iters, lr):
    root = shapes['source']
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                dict(type='RandomFlip', prob=0.5), dict(type='PackDetInputs')]
    test_pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                     dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                           'img_shape', 'scale_factor'))]
    # evaluated on its own training images: the test checks learning, not generalisation
    dataset = dict(type='CocoDataset', data_root=root + '/', ann_file='train.json',
                   data_prefix=dict(img='train/'), metainfo=dict(classes=SOURCE_CLASSES))
    cfg = tiny_config(root, str(work_dir), SOURCE_CLASSES, max_iters=max_iters, batch_size=4,
                      optim_wrapper=dict(type='OptimWrapper', clip_grad=dict(max_norm=35),
                                         optimizer=dict(type='SGD', lr=lr, momentum=0.9,
                                                        weight_decay=4e-5)))
    cfg.model = ConfigDict(model)
    cfg.train_dataloader.dataset.pipeline = pipeline
    cfg.train_cfg.val_interval = max_iters
    cfg.val_dataloader = dict(batch_size=4, num_workers=0, drop_last=False,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              dataset=dict(dataset, test_mode=True, pipeline=test_pipeline))
    cfg.val_cfg = dict(type='ValLoop')
    cfg.val_evaluator = dict(type='CocoMetric', ann_file=root + '/train.json', metric='bbox')
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                                end=10)]
    runner = FinetuneRunner.from_cfg(cfg)
    runner.train()
    losses = {k: np.array(runner.message_hub.get_scalar(f'train/{k}').data[0])
              for k in ('loss', 'loss_cls')}
    metrics = runner.val_loop.run()
    return losses, metrics


@pytest.mark.slow
@pytest.mark.parametrize('make_model, lr, key', [(tiny_ssdlite, 0.01, 'loss'),
                                                 (tiny_yolov3, 0.01, 'loss_cls')])
def test_short_shapes_run_learns(shapes, tmp_path, make_model, lr, key):
    """YOLOv3's total has a floor its soft targets set (BCE on tx, ty in (0, 1) cannot
    reach 0), so its class loss is the one watched."""
    losses, metrics = _run(shapes, tmp_path, make_model(len(SOURCE_CLASSES)), 80, lr)
    assert np.isfinite(losses['loss']).all()
    assert losses[key][-10:].mean() < 0.7 * losses[key][:10].mean()
    assert metrics['coco/bbox_mAP'] > 0
