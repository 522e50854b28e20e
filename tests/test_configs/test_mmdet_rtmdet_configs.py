"""MMDetection 3.3.0's RTMDet config files with only ``default_scope='mmft'`` set: they
build (model, pipelines with CachedMosaic / CachedMixUp / YOLOXHSVRandomAug, EMAHook with
ExpMomentumEMA, PipelineSwitchHook), and rtmdet_tiny trains a step and predicts.

The model keys are compared with MMDetection's layout in
tests/test_models/test_detectors/test_rtmdet.py; here the configs themselves are run.
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
from tests.test_configs.mmdet_rtmdet_configs import MMDET_RTMDET_CONFIGS
from tests.tiny_runs import REPO_ROOT


@pytest.fixture(scope='module')
def config_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('mmdet_configs')
    for sub in ('datasets', 'schedules'):
        shutil.copytree(osp.join(REPO_ROOT, 'configs/_base_', sub), root / '_base_' / sub)
    shutil.copy(osp.join(REPO_ROOT, 'configs/_base_/default_runtime.py'), root / '_base_')
    for rel, text in MMDET_RTMDET_CONFIGS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp('imgs')
    rng = np.random.default_rng(0)
    paths = []
    for i in range(6):
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


def _run_pipeline(steps, sample):
    for _ in range(20):  # RandomCrop may drop a sample: draw again, as a dataset does
        results = dict(sample)
        for step in steps:
            results = step(results)
            if results is None:
                break
        if results is not None:
            return results
    raise AssertionError('the pipeline dropped the sample 20 times')


def _packed(pipeline_cfg, images):
    """Run the pipeline over all images (filling the caches) and return the last two."""
    steps = [TRANSFORMS.build(step) for step in pipeline_cfg]
    out = [_run_pipeline(steps, _sample(p, i)) for i, p in enumerate(images)]
    return out[-2:]


@pytest.mark.parametrize('rel, width', [('rtmdet/rtmdet_tiny_8xb32-300e_coco.py', 96),
                                        ('rtmdet/rtmdet_s_8xb32-300e_coco.py', 128),
                                        ('rtmdet/rtmdet_m_8xb32-300e_coco.py', 192)])
def test_config_builds_and_its_pipelines_run(config_dir, images, rel, width):
    np.random.seed(0)
    cfg = load(config_dir, rel)
    with DefaultScope.overwrite_default_scope('mmft'):
        model = MODELS.build(cfg.model)
        hooks = [HOOKS.build({k: v for k, v in hook.items() if k != 'priority'})
                 for hook in cfg.custom_hooks]
        ema = MODELS.build(dict(type=cfg.custom_hooks[0].ema_type, model=model,
                                momentum=cfg.custom_hooks[0].momentum,
                                update_buffers=True))
        packed = _packed(cfg.train_pipeline, images)
        stage2 = _packed(cfg.train_pipeline_stage2, images[:2])
        test_packed = _packed(cfg.test_pipeline, images[:1])
    assert model.bbox_head.feat_channels == width
    assert [type(h).__name__ for h in hooks] == ['EMAHook', 'PipelineSwitchHook']
    assert type(ema).__name__ == 'ExpMomentumEMA'
    for p in packed + stage2:
        assert tuple(p['inputs'].shape) == (3, 640, 640)
        boxes = p['data_samples'].gt_instances.bboxes
        assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= 640).all()
        assert (boxes[:, 1::2] >= 0).all() and (boxes[:, 1::2] <= 640).all()
    assert test_packed[0]['data_samples'].ori_shape == (96, 128)


@pytest.mark.slow
def test_rtmdet_tiny_trains_a_step_and_predicts(config_dir, images):
    np.random.seed(0)
    torch.manual_seed(0)
    cfg = load(config_dir, 'rtmdet/rtmdet_tiny_8xb32-300e_coco.py')
    cfg.model.backbone.init_cfg = None  # no download in tests: random init
    with DefaultScope.overwrite_default_scope('mmft'):
        model = MODELS.build(cfg.model)
        model.init_weights()
        batch = pseudo_collate(_packed(cfg.train_pipeline, images))
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
        model.train()
        losses = model.train_step(batch, optim)
        assert losses['loss'].isfinite() and losses['loss'] > 0
        model.eval()
        with torch.no_grad():
            preds = model.val_step(pseudo_collate(_packed(cfg.test_pipeline, images[:2])))
    for pred in preds:
        inst = pred.pred_instances
        assert inst.bboxes.shape[1] == 4 and len(inst) <= 300
