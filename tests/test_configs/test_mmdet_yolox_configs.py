"""MMDetection 3.3.0's YOLOX config files (s, and tiny / m / l / x through their ``_base_``)
with only ``default_scope='mmft'`` set: the model, its batch augment and the custom hooks
build, and yolox_s trains a step (plain and with the L1 loss) and predicts.

The training pipeline needs Mosaic / RandomAffine / MixUp / MultiImageMixDataset, which
come from another branch: here the step runs on a simple pipeline of the config's own
Resize / Pad / FilterAnnotations / PackDetInputs (see _pending_yolox_full_config.py for
the test to add once they exist). The model keys are compared with MMDetection's layout in
tests/test_models/test_detectors/test_yolox.py.
"""
import json
import os.path as osp
import shutil
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from mmft.registry import DATASETS, HOOKS, MODELS, TRANSFORMS
from tests.test_configs.mmdet_yolox_configs import MMDET_YOLOX_CONFIGS
from tests.tiny_runs import REPO_ROOT


@pytest.fixture(scope='module')
def config_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('mmdet_configs')
    shutil.copytree(osp.join(REPO_ROOT, 'configs/_base_/schedules'), root / '_base_/schedules')
    shutil.copy(osp.join(REPO_ROOT, 'configs/_base_/default_runtime.py'), root / '_base_')
    for rel, text in MMDET_YOLOX_CONFIGS.items():
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


def _packed(pipeline_cfg, paths):
    steps = [TRANSFORMS.build(step) for step in pipeline_cfg]
    out = []
    for i, path in enumerate(paths):
        results = dict(img_path=path, img_id=i, instances=[
            dict(bbox=[20., 16., 71., 81.], bbox_label=3, ignore_flag=0),
            dict(bbox=[80., 40., 120., 90.], bbox_label=7, ignore_flag=0)])
        for step in steps:
            results = step(results)
        out.append(results)
    return out


# (config, backbone deepen / widen, neck widths, csp blocks, MMDetection's model-zoo params)
SIZES = [('yolox/yolox_tiny_8xb8-300e_coco.py', 0.33, 0.375, 96, 1, (320, 640), 5.06e6),
         ('yolox/yolox_s_8xb8-300e_coco.py', 0.33, 0.5, 128, 1, (480, 800), 8.97e6),
         ('yolox/yolox_m_8xb8-300e_coco.py', 0.67, 0.75, 192, 2, (480, 800), 25.3e6),
         ('yolox/yolox_l_8xb8-300e_coco.py', 1.0, 1.0, 256, 3, (480, 800), 54.2e6),
         ('yolox/yolox_x_8xb8-300e_coco.py', 1.33, 1.25, 320, 4, (480, 800), 99.1e6)]


@pytest.mark.parametrize('rel, deepen, widen, width, blocks, size_range, params', SIZES)
def test_config_model_and_hooks_build(config_dir, rel, deepen, widen, width, blocks,
                                      size_range, params):
    cfg = load(config_dir, rel)
    with DefaultScope.overwrite_default_scope('mmft'):
        model = MODELS.build(cfg.model)
        hooks = [HOOKS.build({k: v for k, v in hook.items() if k != 'priority'})
                 for hook in cfg.custom_hooks]
    assert type(model).__name__ == 'YOLOX'
    assert (model.backbone.stage1[0].conv.out_channels == int(128 * widen))
    assert model.neck.out_channels == width == model.bbox_head.feat_channels
    assert len(model.neck.top_down_blocks[0].blocks) == blocks
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(params, rel=0.01)
    resize = model.data_preprocessor.batch_augments[0]
    assert type(resize).__name__ == 'BatchSyncRandomResize'
    assert resize._random_size_range == (size_range[0] // 32, size_range[1] // 32)
    assert [type(h).__name__ for h in hooks] == ['YOLOXModeSwitchHook', 'SyncNormHook',
                                                 'EMAHook']
    assert hooks[0].num_last_epochs == 15
    assert not model.bbox_head.use_l1


def test_yolox_schedule_builds_as_written(config_dir):
    """The whole param_scheduler, ``mmdet.QuadraticWarmupLR`` included: 5 epochs of
    quadratic warm-up, cosine to epoch 285, then constant."""
    from mmft.registry import PARAM_SCHEDULERS
    cfg = load(config_dir, 'yolox/yolox_s_8xb8-300e_coco.py')
    with DefaultScope.overwrite_default_scope('mmft'):
        model = MODELS.build(cfg.model)
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
        schedulers = [PARAM_SCHEDULERS.build(s, default_args=dict(optimizer=optim,
                                                                   epoch_length=10))
                      for s in cfg.param_scheduler]
    assert [type(s).__name__ for s in schedulers] == ['QuadraticWarmupLR',
                                                      'CosineAnnealingLR', 'ConstantLR']
    assert (schedulers[0].begin, schedulers[0].end) == (0, 50)
    assert optim.param_groups[0]['lr'] == pytest.approx(0.01 / 50 ** 2)


def test_yolox_s_trains_a_step_with_and_without_l1_and_predicts(config_dir, images):
    np.random.seed(0)
    torch.manual_seed(0)
    cfg = load(config_dir, 'yolox/yolox_s_8xb8-300e_coco.py')
    # the config's own last-epoch transforms, at a small size for CPU speed
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                dict(type='Resize', scale=(128, 128), keep_ratio=True),
                dict(type='Pad', pad_to_square=True, pad_val=dict(img=(114.0, 114.0, 114.0))),
                dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
                dict(type='PackDetInputs')]
    with DefaultScope.overwrite_default_scope('mmft'):
        model = MODELS.build(cfg.model)
        model.init_weights()
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
        batch = pseudo_collate(_packed(pipeline, images))
        model.train()
        losses = model.train_step(batch, optim)
        assert set(losses) == {'loss', 'loss_cls', 'loss_bbox', 'loss_obj'}
        assert losses['loss'].isfinite() and losses['loss'] > 0
        model.bbox_head.use_l1 = True  # what YOLOXModeSwitchHook does for the last epochs
        losses = model.train_step(batch, optim)
        assert 'loss_l1' in losses and losses['loss_l1'] > 0
        model.eval()
        with torch.no_grad():
            preds = model.val_step(pseudo_collate(_packed(cfg.test_pipeline, images[:1])))
    inst = preds[0].pred_instances
    assert inst.bboxes.shape[1] == 4
    assert preds[0].ori_shape == (96, 128)



@pytest.mark.parametrize('rel', ['yolox/yolox_s_8xb8-300e_coco.py',
                                 'yolox/yolox_tiny_8xb8-300e_coco.py'])
def test_full_train_dataset_builds_and_the_mode_switch_turns_mixing_off(config_dir, images,
                                                                        tmp_path, rel):
    np.random.seed(0)
    root = tmp_path / 'coco'
    (root / 'annotations').mkdir(parents=True)
    (root / 'train2017').mkdir()
    anns, imgs = [], []
    for i, path in enumerate(images):
        shutil.copy(path, root / 'train2017' / f'{i}.png')
        imgs.append(dict(id=i, file_name=f'{i}.png', height=96, width=128))
        for j, box in enumerate(([20, 16, 51, 65], [80, 40, 40, 50])):
            anns.append(dict(id=10 * i + j, image_id=i, category_id=1 + j, bbox=box,
                             area=box[2] * box[3], iscrowd=0))
    from mmft.datasets.coco import CocoDataset
    cats = [dict(id=k + 1, name=name) for k, name in enumerate(CocoDataset.METAINFO['classes'])]
    (root / 'annotations/instances_train2017.json').write_text(
        json.dumps(dict(images=imgs, annotations=anns, categories=cats)))
    cfg = load(config_dir, rel)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.dataset.data_root = str(root) + '/'
    with DefaultScope.overwrite_default_scope('mmft'):
        dataset = DATASETS.build(dataset_cfg)
        model = MODELS.build(cfg.model)
        switch = HOOKS.build(dict(type='YOLOXModeSwitchHook', num_last_epochs=15))
    assert type(dataset).__name__ == 'MultiImageMixDataset'
    for i in range(4):
        sample = dataset[i % len(dataset)]
        assert tuple(sample['inputs'].shape) == (3, 640, 640)
        boxes = sample['data_samples'].gt_instances.bboxes
        assert (boxes >= 0).all() and (boxes <= 640).all()
    loader = SimpleNamespace(dataset=dataset, persistent_workers=False)
    runner = SimpleNamespace(epoch=285, max_epochs=300, model=model, train_dataloader=loader,
                             logger=SimpleNamespace(info=lambda m: None))
    switch.before_train_epoch(runner)
    assert model.bbox_head.use_l1
    for i in range(len(dataset)):
        sample = dataset[i]
        # no mosaic / mixup any more: the image's own two boxes, resized to 640
        assert len(sample['data_samples'].gt_instances) == 2
        assert tuple(sample['inputs'].shape) == (3, 640, 640)
