"""The YOLOX-s base model file and the custom-data YOLOX-s recipe: MMDetection's values,
``num_classes='auto'`` from the recipe's classes, the COCO rows moved into the new head on
every level, the pipelines / hooks building, and the mode switch dropping the recipe's
cached Mosaic / MixUp."""
import os.path as osp
from types import SimpleNamespace

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope

from mmft.checkpoint.converters import COCO_CLASSES
from mmft.finetune.config import FinetuneConfig, resolve_num_classes
from mmft.finetune.load import load_pretrained
from mmft.registry import HOOKS, MODELS


def test_base_model_file_is_mmdetection_yolox_s(repo_root):
    from tests.test_models.test_detectors.test_yolox import yolox_cfg
    cfg = Config.fromfile(osp.join(repo_root, 'configs/_base_/models/yolox_s.py'))
    model = cfg.model.to_dict()
    augments = model['data_preprocessor'].pop('batch_augments')
    assert augments == [dict(type='BatchSyncRandomResize', random_size_range=(480, 800),
                             size_divisor=32, interval=10)]
    assert model == yolox_cfg()


def test_custom_recipe_resolves_classes_and_transfers_coco_rows(repo_root, tmp_path):
    cfg = Config.fromfile(osp.join(repo_root, 'configs/finetune/custom_yolox_s.py'))
    cfg.merge_from_dict({'train_dataloader.dataset.metainfo.classes': ('person', 'balloon')})
    assert cfg.default_scope == 'mmft'
    assert resolve_num_classes(cfg) == ('person', 'balloon')
    assert cfg.model.bbox_head.num_classes == 2
    assert [h.type for h in cfg.custom_hooks] == ['YOLOXModeSwitchHook', 'SyncNormHook',
                                                  'EMAHook']
    with DefaultScope.overwrite_default_scope('mmft'):
        hooks = [HOOKS.build({k: v for k, v in hook.items() if k != 'priority'})
                 for hook in cfg.custom_hooks]
        train = Compose(cfg.train_pipeline)
        Compose(cfg.test_pipeline)
        torch.manual_seed(0)
        coco = MODELS.build(dict(cfg.model, bbox_head=dict(cfg.model.bbox_head,
                                                           num_classes=80)))
        model = MODELS.build(cfg.model)
    path = tmp_path / 'coco.pth'
    torch.save({'state_dict': coco.state_dict(),
                'meta': {'dataset_meta': {'classes': COCO_CLASSES}}}, path)
    model.init_weights()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    report = load_pretrained(model, str(path), FinetuneConfig.from_cfg(cfg.finetune),
                             ('person', 'balloon'))
    src, out = coco.state_dict(), model.state_dict()
    for lvl in range(3):
        key = f'bbox_head.multi_level_conv_cls.{lvl}.weight'
        assert torch.equal(out[key][0], src[key][COCO_CLASSES.index('person')])
        assert torch.equal(out[key][1], init[key][1])  # balloon: not a COCO class
        obj = f'bbox_head.multi_level_conv_obj.{lvl}.weight'
        assert torch.equal(out[obj], src[obj])  # objectness is class-free: loaded as is
    assert len(report.transferred) == 6 and not report.missing

    # the last epochs: the cached mixing transforms are dropped, the L1 loss is on
    dataset = SimpleNamespace(pipeline=train)
    runner = SimpleNamespace(epoch=cfg.max_epochs - cfg.num_last_epochs - 1,
                             max_epochs=cfg.max_epochs, model=model,
                             train_dataloader=SimpleNamespace(dataset=dataset),
                             logger=SimpleNamespace(info=lambda m: None))
    hooks[0].before_train_epoch(runner)
    names = [type(t).__name__ for t in dataset.pipeline.transforms]
    assert 'CachedMosaic' not in names and 'CachedMixUp' not in names
    assert names[:2] == ['LoadImageFromFile', 'LoadAnnotations'] and len(names) == 8
    assert model.bbox_head.use_l1


def test_custom_recipe_train_pipeline_runs(repo_root, tmp_path):
    cfg = Config.fromfile(osp.join(repo_root, 'configs/finetune/custom_yolox_s.py'))
    rng = np.random.default_rng(0)
    with DefaultScope.overwrite_default_scope('mmft'):
        train = Compose(cfg.train_pipeline)
    for i in range(4):
        img = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / f'{i}.png'), img)
        out = train(dict(img_path=str(tmp_path / f'{i}.png'), img_id=i, instances=[
            dict(bbox=[20., 16., 71., 81.], bbox_label=0, ignore_flag=0)]))
        assert tuple(out['inputs'].shape) == (3, 640, 640)
        boxes = out['data_samples'].gt_instances.bboxes
        assert len(boxes) >= 1 and (boxes >= 0).all() and (boxes <= 640).all()
