"""MMDetection 3.3.0's SSD300/512, SSDLite and YOLOv3 config files, with only
``default_scope='mmft'`` set: they build, their pipelines run, they train a step and predict.

The model keys are compared with MMDetection's layout in
tests/test_models/test_detectors/test_ssd_yolov3.py; here the configs themselves are run.
"""
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from mmft.registry import HOOKS, MODELS, TRANSFORMS
from tests.test_configs.mmdet_ssd_yolo_configs import MMDET_CONFIGS
from tests.tiny_runs import REPO_ROOT


@pytest.fixture(scope='module')
def config_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('mmdet_configs')
    for sub in ('datasets', 'schedules'):
        shutil.copytree(osp.join(REPO_ROOT, 'configs/_base_', sub), root / '_base_' / sub)
    shutil.copy(osp.join(REPO_ROOT, 'configs/_base_/default_runtime.py'), root / '_base_')
    for rel, text in MMDET_CONFIGS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp('imgs')
    rng = np.random.default_rng(0)
    paths = []
    for i in range(2):
        img = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        cv2.rectangle(img, (20, 16), (70, 80), (0, 0, 255), -1)
        paths.append(str(folder / f'{i}.png'))
        cv2.imwrite(paths[-1], img)
    return paths


def load(config_dir, rel):
    cfg = Config.fromfile(str(config_dir / rel))
    cfg.default_scope = 'mmft'
    return cfg


def _sample(path, img_id):
    return dict(img_path=path, img_id=img_id, instances=[
        dict(bbox=[20., 16., 71., 81.], bbox_label=3, ignore_flag=0),
        dict(bbox=[80., 40., 120., 90.], bbox_label=7, ignore_flag=0)])


def _run_pipeline(pipeline_cfg, sample):
    steps = [TRANSFORMS.build(step) for step in pipeline_cfg]
    for _ in range(20):  # MinIoURandomCrop may drop a sample: draw again, as a dataset does
        results = dict(sample)
        for step in steps:
            results = step(results)
            if results is None:
                break
        if results is not None:
            return results
    raise AssertionError('the pipeline dropped the sample 20 times')


def _train_and_predict(cfg, images):
    np.random.seed(0)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmft'):
        model = MODELS.build(cfg.model)
        batch = pseudo_collate([_run_pipeline(cfg.train_pipeline, _sample(p, i))
                                for i, p in enumerate(images)])
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
        model.train()
        losses = model.train_step(batch, optim)
        assert losses['loss'].isfinite() and losses['loss'] > 0
        model.eval()
        test_batch = pseudo_collate([_run_pipeline(cfg.test_pipeline, _sample(p, i))
                                     for i, p in enumerate(images)])
        with torch.no_grad():
            preds = model.val_step(test_batch)
    for pred in preds:
        inst = pred.pred_instances
        assert inst.bboxes.shape[1] == 4 and len(inst.scores) == len(inst.labels)
        assert len(inst) <= cfg.model.test_cfg.max_per_img
        # SSD clips to the image, rescaled to the original 96 x 128 (YOLOv3 does not clip,
        # as in MMDetection)
        if len(inst) and cfg.model.type == 'SingleStageDetector':
            assert inst.bboxes[:, 2].max() <= 128 + 1e-3 and inst.bboxes[:, 3].max() <= 96 + 1e-3
    return losses


@pytest.mark.parametrize('rel, num_levels', [
    ('ssd/ssd300_coco.py', 6), ('ssd/ssd512_coco.py', 7),
    ('ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py', 6),
    ('yolo/yolov3_mobilenetv2_8xb24-ms-416-300e_coco.py', 3),
    ('yolo/yolov3_mobilenetv2_8xb24-320-300e_coco.py', 3)])
def test_config_builds_and_its_pipelines_run(config_dir, images, rel, num_levels):
    cfg = load(config_dir, rel)
    with DefaultScope.overwrite_default_scope('mmft'):
        model = MODELS.build(cfg.model)
        for hook in cfg.get('custom_hooks', []):
            HOOKS.build({k: v for k, v in hook.items() if k != 'priority'})  # as the Runner
        packed = _run_pipeline(cfg.train_pipeline, _sample(images[0], 0))
        test_packed = _run_pipeline(cfg.test_pipeline, _sample(images[0], 0))
    assert len(model.bbox_head.prior_generator.strides) == num_levels
    sample = packed['data_samples']
    assert packed['inputs'].shape[0] == 3 and len(sample.gt_instances) >= 1
    h, w = packed['inputs'].shape[1:]
    boxes = sample.gt_instances.bboxes
    assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= w).all()
    assert (boxes[:, 1::2] >= 0).all() and (boxes[:, 1::2] <= h).all()
    assert test_packed['data_samples'].ori_shape == (96, 128)


@pytest.mark.slow
@pytest.mark.parametrize('rel', ['ssd/ssd300_coco.py',
                                 'ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py',
                                 'yolo/yolov3_mobilenetv2_8xb24-ms-416-300e_coco.py'])
def test_config_trains_a_step_and_predicts(config_dir, images, rel):
    losses = _train_and_predict(load(config_dir, rel), images)
    prefix = 'loss_conf' if 'yolo' in rel else 'loss_bbox'
    assert prefix in losses


@pytest.mark.slow
def test_yolov3_darknet53_configs(config_dir, images):
    """The 608 multi-scale config builds MMDetection's YOLOv3-D53 (61.95M parameters);
    the 320 one (same model) trains a step and predicts."""
    cfg = load(config_dir, 'yolo/yolov3_d53_8xb8-ms-608-273e_coco.py')
    with DefaultScope.overwrite_default_scope('mmft'):
        model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) == 61949149
    del model
    cfg = load(config_dir, 'yolo/yolov3_d53_8xb8-320-273e_coco.py')
    assert [s['type'] for s in cfg.train_pipeline][2:4] == ['Expand', 'MinIoURandomCrop']
    _train_and_predict(cfg, images)
