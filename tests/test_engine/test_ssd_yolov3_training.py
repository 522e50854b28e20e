"""Short shapes runs of small SSDLite and YOLOv3 models: the loss falls and bbox mAP > 0."""
import numpy as np
import pytest

from mmft.engine import FinetuneRunner
from tests.test_models.test_detectors.test_ssd_yolov3 import tiny_ssdlite, tiny_yolov3
from tests.tiny_runs import SOURCE_CLASSES, make_shapes_data, short_run_config


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return make_shapes_data(str(tmp_path_factory.mktemp('shapes')), num_train=16)


def _run(shapes, work_dir, model, max_iters, lr):
    cfg = short_run_config(
        shapes['source'], str(work_dir), model, max_iters,
        dict(type='OptimWrapper', clip_grad=dict(max_norm=35),
             optimizer=dict(type='SGD', lr=lr, momentum=0.9, weight_decay=4e-5)),
        transforms=[dict(type='RandomFlip', prob=0.5)])
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
