"""The RTMDet base model file and the custom-data RTMDet-tiny recipe: MMDetection's values,
``num_classes='auto'`` from the recipe's classes, the COCO rows moved into the new head,
and the pipelines / hooks building."""
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmft.checkpoint.converters import COCO_CLASSES
from mmft.finetune.config import FinetuneConfig, resolve_num_classes
from mmft.finetune.load import load_pretrained
from mmft.registry import HOOKS, MODELS, TRANSFORMS


def test_base_model_file_is_mmdetection_rtmdet_tiny(repo_root):
    from tests.test_models.test_detectors.test_rtmdet import rtmdet_cfg
    cfg = Config.fromfile(osp.join(repo_root, 'configs/_base_/models/rtmdet_tiny.py'))
    model = cfg.model.to_dict()
    init = model['backbone'].pop('init_cfg')
    assert init['checkpoint'].endswith('cspnext-tiny_imagenet_600e.pth')
    assert model == rtmdet_cfg()


def test_custom_recipe_resolves_classes_and_transfers_coco_rows(repo_root, tmp_path):
    cfg = Config.fromfile(osp.join(repo_root, 'configs/finetune/custom_rtmdet_tiny.py'))
    cfg.merge_from_dict({'train_dataloader.dataset.metainfo.classes': ('person', 'balloon')})
    assert cfg.default_scope == 'mmft'
    assert resolve_num_classes(cfg) == ('person', 'balloon')
    assert cfg.model.bbox_head.num_classes == 2
    assert [h.type for h in cfg.custom_hooks] == ['EMAHook', 'PipelineSwitchHook']
    with DefaultScope.overwrite_default_scope('mmft'):
        for hook in cfg.custom_hooks:
            HOOKS.build({k: v for k, v in hook.items() if k != 'priority'})
        for step in cfg.train_pipeline + cfg.train_pipeline_stage2 + cfg.test_pipeline:
            TRANSFORMS.build(step)
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
        key = f'bbox_head.rtm_cls.{lvl}.weight'
        assert torch.equal(out[key][0], src[key][COCO_CLASSES.index('person')])
        assert torch.equal(out[key][1], init[key][1])  # balloon: not a COCO class
    assert len(report.transferred) == 6 and not report.missing
