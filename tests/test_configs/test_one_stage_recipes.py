"""The RetinaNet and FCOS Cityscapes recipes: values, 8-class heads, and the COCO transfer."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmft.checkpoint.converters import COCO_CLASSES
from mmft.finetune.config import FinetuneConfig
from mmft.finetune.load import load_pretrained
from mmft.registry import MODELS

CITYSCAPES = ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')
CLS = dict(cityscapes_retinanet=('retina_cls', 9), cityscapes_fcos=('conv_cls', 1))


@pytest.mark.parametrize('name', list(CLS))
def test_recipe_values(repo_root, name):
    cfg = Config.fromfile(osp.join(repo_root, f'configs/finetune/{name}.py'))
    assert cfg.default_scope == 'mmft'
    assert cfg.model.type == ('RetinaNet' if 'retina' in name else 'FCOS')
    assert cfg.model.bbox_head.num_classes == 8 and cfg.model.backbone.init_cfg is None
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=0.01, momentum=0.9,
                                               weight_decay=0.0001)
    assert cfg.train_cfg.max_epochs == 8 and cfg.param_scheduler[1].milestones == [7]
    assert cfg.finetune == dict(checkpoint_type='detection', class_transfer=True)
    assert cfg.load_from.endswith(('retinanet_r50_fpn_1x_coco_20200130-c2398f9e.pth',
                                   'fcos_r50_caffe_fpn_gn-head_1x_coco-821213aa.pth'))
    if 'fcos' in name:
        assert cfg.optim_wrapper.paramwise_cfg == dict(bias_lr_mult=2., bias_decay_mult=0.)


@pytest.mark.parametrize('name', list(CLS))
def test_coco_checkpoint_rows_move_into_the_8_class_head(repo_root, name, tmp_path):
    cfg = Config.fromfile(osp.join(repo_root, f'configs/finetune/{name}.py'))
    layer, anchors = CLS[name]
    torch.manual_seed(0)
    coco = MODELS.build(dict(cfg.model, bbox_head=dict(cfg.model.bbox_head, num_classes=80)))
    path = tmp_path / 'coco.pth'
    torch.save({'state_dict': coco.state_dict(),
                'meta': {'dataset_meta': {'classes': COCO_CLASSES}}}, path)
    model = MODELS.build(cfg.model)
    model.init_weights()
    report = load_pretrained(model, str(path), FinetuneConfig.from_cfg(cfg.finetune), CITYSCAPES)
    src, out = coco.state_dict(), model.state_dict()
    key = f'bbox_head.{layer}.weight'
    assert out[key].shape[0] == anchors * 8
    for i, name_ in enumerate(CITYSCAPES):
        j = COCO_CLASSES.index('person' if name_ == 'rider' else name_)
        for a in range(anchors):
            assert torch.equal(out[key][a * 8 + i], src[key][a * 80 + j])
    assert sorted(report.transferred) == sorted([key, key.replace('weight', 'bias')])
    assert not report.skipped_suspicious and not report.missing
