"""MMDetection 3.3.0's RTMDet-Ins config files with only ``default_scope='mmft'`` set: the
models build (tiny to x), the full configs build their training
dataset on a tiny COCO with polygon masks (CachedMosaic, RandomResize, RandomCrop with
recompute_bbox, CachedMixUp, FilterAnnotations) and rtmdet-ins_tiny trains a step and
predicts masks.

The model keys are compared with MMDetection's layout in
tests/test_models/test_detectors/test_rtmdet_ins.py; here the configs themselves are run.
"""
import json
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

from mmft.datasets.synthetic import SOURCE_CLASSES
from mmft.registry import DATASETS, HOOKS, MODELS
from tests.test_configs.mmdet_rtmdet_configs import MMDET_RTMDET_CONFIGS
from tests.test_configs.mmdet_rtmdet_ins_configs import MMDET_RTMDET_INS_CONFIGS
from tests.tiny_runs import REPO_ROOT


@pytest.fixture(scope='module')
def config_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('mmdet_configs')
    for sub in ('datasets', 'schedules'):
        shutil.copytree(osp.join(REPO_ROOT, 'configs/_base_', sub), root / '_base_' / sub)
    shutil.copy(osp.join(REPO_ROOT, 'configs/_base_/default_runtime.py'), root / '_base_')
    for rel, text in {**MMDET_RTMDET_CONFIGS, **MMDET_RTMDET_INS_CONFIGS}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    """A tiny COCO of 6 images (96x128) with two polygon-masked objects each (a triangle,
    a quadrilateral), as MMDetection's COCO configs read it (poly2mask=False)."""
    root = tmp_path_factory.mktemp('coco')
    (root / 'train').mkdir()
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(6):
        img = rng.integers(0, 80, (96, 128, 3), dtype=np.uint8)
        x, y = 10 + 4 * i, 8 + 2 * i
        shapes = [[x, y + 40, x + 22, y, x + 44, y + 40],
                  [70, 30 + i, 120, 34, 116, 90 - i, 74, 86]]
        for label, poly in enumerate(shapes):
            pts = np.array(poly, dtype=np.int32).reshape(-1, 2)
            cv2.fillPoly(img, [pts], (0, 60 + 100 * label, 255))
            x1, y1 = pts.min(0)
            x2, y2 = pts.max(0)
            anns.append(dict(id=len(anns) + 1, image_id=i + 1, category_id=label + 1,
                             bbox=[float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                             area=float(cv2.contourArea(pts.astype(np.float32))),
                             segmentation=[[float(v) for v in poly]], iscrowd=0))
        cv2.imwrite(str(root / 'train' / f'{i}.png'), img)
        images.append(dict(id=i + 1, file_name=f'{i}.png', height=96, width=128))
    cats = [dict(id=k + 1, name=n) for k, n in enumerate(SOURCE_CLASSES)]
    (root / 'train.json').write_text(json.dumps(dict(images=images, annotations=anns,
                                                     categories=cats)))
    return str(root)


def load(config_dir, rel, coco=None):
    cfg = Config.fromfile(str(config_dir / rel))
    cfg.default_scope = 'mmft'
    if coco is not None:  # the data paths, the only thing a user edits to run it here
        for loader in (cfg.train_dataloader, cfg.val_dataloader):
            loader.dataset.update(data_root=coco + '/', ann_file='train.json',
                                  data_prefix=dict(img='train/'),
                                  metainfo=dict(classes=SOURCE_CLASSES))
    return cfg


def _masks_follow_boxes(sample):
    inst = sample['data_samples'].gt_instances
    h, w = sample['inputs'].shape[-2:]
    masks = inst.masks.to_ndarray()
    assert masks.shape == (len(inst.bboxes), h, w)
    for mask, box in zip(masks, inst.bboxes.numpy()):
        ys, xs = np.nonzero(mask)
        if len(xs):  # the mask's pixels lie in its box (1 px of rounding)
            assert xs.min() >= box[0] - 1 and xs.max() <= box[2] + 1
            assert ys.min() >= box[1] - 1 and ys.max() <= box[3] + 1


def _items(dataset, n):
    # the caches of CachedMosaic / CachedMixUp fill as items are drawn
    return [dataset[i % len(dataset)] for i in range(n)]


@pytest.mark.parametrize('rel, width', [('rtmdet/rtmdet-ins_tiny_8xb32-300e_coco.py', 96),
                                        ('rtmdet/rtmdet-ins_s_8xb32-300e_coco.py', 128),
                                        ('rtmdet/rtmdet-ins_m_8xb32-300e_coco.py', 192)])
def test_config_builds_model_hooks_and_dataset(config_dir, coco, rel, width):
    np.random.seed(0)
    cfg = load(config_dir, rel, coco)
    with DefaultScope.overwrite_default_scope('mmft'):
        model = MODELS.build(cfg.model)
        hooks = [HOOKS.build({k: v for k, v in hook.items() if k != 'priority'})
                 for hook in cfg.custom_hooks]
        if rel.endswith(('tiny_8xb32-300e_coco.py', 's_8xb32-300e_coco.py')):
            train = DATASETS.build(cfg.train_dataloader.dataset)
            items = _items(train, 8)
            cfg.train_dataloader.dataset.pipeline = cfg.train_pipeline_stage2
            items += _items(DATASETS.build(cfg.train_dataloader.dataset), 2)
            for item in items:
                assert tuple(item['inputs'].shape) == (3, 640, 640)
                _masks_follow_boxes(item)
            assert sum(len(item['data_samples'].gt_instances) for item in items) >= 8
    head = model.bbox_head
    assert type(head).__name__ == 'RTMDetInsSepBNHead' and head.feat_channels == width
    assert head.test_cfg['mask_thr_binary'] == 0.5
    assert [type(h).__name__ for h in hooks] == ['EMAHook', 'PipelineSwitchHook']
    assert cfg.val_evaluator.metric == ['bbox', 'segm']


@pytest.mark.parametrize('rel, width, params', [
    ('rtmdet/rtmdet-ins_l_8xb32-300e_coco.py', 256, 57.4e6),
    ('rtmdet/rtmdet-ins_x_8xb16-300e_coco.py', 320, 102.7e6)])
def test_large_configs_build(config_dir, rel, width, params):
    cfg = load(config_dir, rel)
    with DefaultScope.overwrite_default_scope('mmft'):
        model = MODELS.build(cfg.model)
    assert model.bbox_head.feat_channels == width
    # MMDetection's model zoo: RTMDet-Ins-l 57.37M, -x 102.7M parameters
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(params, rel=0.02)


@pytest.mark.slow
def test_rtmdet_ins_tiny_trains_a_step_and_predicts_masks(config_dir, coco):
    np.random.seed(0)
    torch.manual_seed(0)
    cfg = load(config_dir, 'rtmdet/rtmdet-ins_tiny_8xb32-300e_coco.py', coco)
    cfg.model.backbone.init_cfg = None  # no download in tests: random init
    with DefaultScope.overwrite_default_scope('mmft'):
        model = MODELS.build(cfg.model)
        model.init_weights()
        train = DATASETS.build(cfg.train_dataloader.dataset)
        batch = pseudo_collate(_items(train, 6)[-2:])
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
        model.train()
        losses = model.train_step(batch, optim)
        assert losses['loss'].isfinite() and losses['loss_mask'] > 0
        model.eval()
        val = DATASETS.build(cfg.val_dataloader.dataset)
        with torch.no_grad():
            preds = model.val_step(pseudo_collate([val[0], val[1]]))
    for pred in preds:
        inst = pred.pred_instances
        assert inst.masks.dtype == torch.bool
        assert inst.masks.shape == (len(inst), 96, 128)  # the original image
