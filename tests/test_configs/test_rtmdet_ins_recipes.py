"""The RTMDet-Ins base model file and the Cityscapes RTMDet-Ins-tiny recipe: MMDetection's
values, the schedule's numbers, the pipelines / hooks / dataset wrapper building, and the
COCO rows moved into the 8-class head (rider from person)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmft.checkpoint.converters import COCO_CLASSES
from mmft.finetune.config import FinetuneConfig
from mmft.finetune.load import load_pretrained
from mmft.registry import HOOKS, MODELS, TRANSFORMS

CITYSCAPES = ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')
RECIPE = 'configs/finetune/cityscapes_rtmdet-ins_tiny.py'


def test_base_model_file_is_mmdetection_rtmdet_ins_tiny(repo_root):
    from tests.test_models.test_detectors.test_rtmdet_ins import rtmdet_ins_cfg
    cfg = Config.fromfile(osp.join(repo_root, 'configs/_base_/models/rtmdet-ins_tiny.py'))
    model = cfg.model.to_dict()
    init = model['backbone'].pop('init_cfg')
    assert init['checkpoint'].endswith('cspnext-tiny_imagenet_600e.pth')
    assert model == rtmdet_ins_cfg()


def test_cityscapes_recipe_values(repo_root):
    cfg = Config.fromfile(osp.join(repo_root, RECIPE))
    assert cfg.default_scope == 'mmft'
    assert cfg.model.bbox_head.type == 'RTMDetInsSepBNHead'
    assert cfg.model.bbox_head.num_classes == 8 and cfg.model.backbone.init_cfg is None
    assert cfg.load_from.endswith('rtmdet-ins_tiny_8xb32-300e_coco_20221130_151727-ec670f7e.pth')
    assert cfg.finetune == dict(checkpoint_type='detection', class_transfer=True)
    # half of RTMDet's per-image rate (0.004 for 256 images) at a total batch of 16
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(1.25e-4)
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.train_cfg.max_epochs == 8 and cfg.train_dataloader.dataset.times == 8
    warmup, cosine = cfg.param_scheduler
    assert warmup.end == 300 and (cosine.begin, cosine.end) == (4, 8)
    assert cosine.eta_min == pytest.approx(1.25e-4 * 0.05)
    assert cfg.train_dataloader.batch_size == 8
    assert cfg.auto_scale_lr.base_batch_size == 16
    inner = cfg.train_dataloader.dataset.dataset
    assert inner.type == 'CityscapesDataset' and inner.pipeline == cfg.train_pipeline
    assert [m.type for m in cfg.val_evaluator] == ['CocoMetric', 'CityScapesMetric']
    assert cfg.val_evaluator[0].metric == ['bbox', 'segm']
    assert cfg.model.test_cfg.mask_thr_binary == 0.5
    with DefaultScope.overwrite_default_scope('mmft'):
        for step in cfg.train_pipeline + cfg.test_pipeline:
            TRANSFORMS.build(step)
        hooks = [HOOKS.build({k: v for k, v in h.items() if k != 'priority'})
                 for h in cfg.custom_hooks]
    assert [type(h).__name__ for h in hooks] == ['EMAHook']


def test_coco_checkpoint_rows_move_into_the_8_class_head(repo_root, tmp_path):
    cfg = Config.fromfile(osp.join(repo_root, RECIPE))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmft'):
        coco = MODELS.build(dict(cfg.model, bbox_head=dict(cfg.model.bbox_head,
                                                           num_classes=80)))
        model = MODELS.build(cfg.model)
    path = tmp_path / 'coco.pth'
    torch.save({'state_dict': coco.state_dict(),
                'meta': {'dataset_meta': {'classes': COCO_CLASSES}}}, path)
    model.init_weights()
    report = load_pretrained(model, str(path), FinetuneConfig.from_cfg(cfg.finetune), CITYSCAPES)
    src, out = coco.state_dict(), model.state_dict()
    for lvl in range(3):
        key = f'bbox_head.rtm_cls.{lvl}.weight'
        assert out[key].shape[0] == 8
        for i, name in enumerate(CITYSCAPES):
            j = COCO_CLASSES.index('person' if name == 'rider' else name)
            assert torch.equal(out[key][i], src[key][j])
    assert len(report.transferred) == 6
    assert not report.skipped_suspicious and not report.missing
    for key in ('bbox_head.rtm_kernel.0.weight', 'bbox_head.mask_head.projection.weight'):
        assert torch.equal(out[key], src[key])


def test_num_classes_auto_follows_the_dataset(repo_root):
    from mmft.finetune.config import resolve_num_classes
    cfg = Config.fromfile(osp.join(repo_root, RECIPE))
    cfg.model.bbox_head.num_classes = 'auto'
    cfg.train_dataloader.dataset.dataset.metainfo = dict(classes=CITYSCAPES[:3])
    assert resolve_num_classes(cfg) == CITYSCAPES[:3]
    assert cfg.model.bbox_head.num_classes == 3
