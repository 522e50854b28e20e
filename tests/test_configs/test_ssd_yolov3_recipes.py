"""configs/finetune/voc_ssd300.py and cityscapes_yolov3.py: values, model, pipeline, and
the class-aware load of a COCO checkpoint into the VOC SSD300."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmft.checkpoint.converters import COCO_CLASSES
from mmft.datasets.voc import VOCDataset
from mmft.finetune.config import FinetuneConfig
from mmft.finetune.load import load_pretrained
from mmft.registry import MODELS, TRANSFORMS


def _cfg(repo_root, name):
    return Config.fromfile(osp.join(repo_root, f'configs/finetune/{name}.py'))


def test_voc_ssd300_recipe(repo_root, tmp_path):
    cfg = _cfg(repo_root, 'voc_ssd300')
    assert cfg.default_scope == 'mmft' and cfg.model.type == 'SingleStageDetector'
    assert cfg.model.bbox_head.num_classes == 20
    assert cfg.model.bbox_head.anchor_generator.basesize_ratio_range == (0.15, 0.9)
    assert cfg.load_from.endswith('ssd300_coco_20210803_015428-d231a06e.pth')
    datasets = cfg.train_dataloader.dataset.dataset.datasets
    assert [d.ann_file for d in datasets] == ['VOC2007/ImageSets/Main/trainval.txt',
                                              'VOC2012/ImageSets/Main/trainval.txt']
    assert all(d.type == 'VOCDataset' and d.pipeline[2].type == 'Expand' for d in datasets)
    with DefaultScope.overwrite_default_scope('mmft'):
        for step in cfg.train_pipeline:
            TRANSFORMS.build(step)
        coco = MODELS.build(dict(cfg.model, bbox_head=dict(cfg.model.bbox_head, num_classes=80)))
        voc = MODELS.build(cfg.model)
    path = tmp_path / 'coco_ssd300.pth'
    torch.save({'state_dict': coco.state_dict(),
                'meta': {'dataset_meta': {'classes': COCO_CLASSES}}}, path)
    voc_classes = VOCDataset.METAINFO['classes']
    report = load_pretrained(voc, str(path), FinetuneConfig(**cfg.finetune), voc_classes)
    # all 20 VOC classes are COCO's (aeroplane, motorbike, sofa, tvmonitor by synonym)
    assert all(m.how in ('name', 'synonym') for m in report.class_matches)
    assert [m.new_name for m in report.class_matches if m.how == 'synonym'] == \
        ['aeroplane', 'motorbike', 'sofa', 'tvmonitor']
    src, out = coco.state_dict(), voc.state_dict()
    cat_new, cat_old = voc_classes.index('cat'), COCO_CLASSES.index('cat')
    for level, anchors in enumerate([4, 6, 6, 6, 4, 4]):
        key = f'bbox_head.cls_convs.{level}.0.weight'
        for a in range(anchors):
            assert torch.equal(out[key][a * 21 + cat_new], src[key][a * 81 + cat_old])
            assert torch.equal(out[key][a * 21 + 20], src[key][a * 81 + 80])  # background
    assert len(report.transferred) == 12 and report.skipped_suspicious == []


@pytest.mark.slow
def test_cityscapes_yolov3_recipe(repo_root):
    cfg = _cfg(repo_root, 'cityscapes_yolov3')
    assert cfg.model.type == 'YOLOV3' and cfg.model.bbox_head.num_classes == 8
    assert cfg.load_from.endswith('yolov3_d53_mstrain-608_273e_coco_20210518_115020-a2c3acb8.pth')
    assert cfg.train_dataloader.dataset.dataset.pipeline[3].type == 'MinIoURandomCrop'
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=35, norm_type=2)
    with DefaultScope.overwrite_default_scope('mmft'):
        model = MODELS.build(cfg.model)
    assert [c.out_channels for c in model.bbox_head.convs_pred] == [39, 39, 39]  # 3 * (5 + 8)


@pytest.mark.parametrize('name, head, num', [('voc_ssd300', 'SSDHead', 20),
                                             ('cityscapes_yolov3', 'YOLOV3Head', 8)])
def test_num_classes_auto_follows_the_dataset(repo_root, name, head, num):
    from mmft.finetune.config import resolve_num_classes
    cfg = _cfg(repo_root, name)
    cfg.model.bbox_head.num_classes = 'auto'
    classes = resolve_num_classes(cfg)
    assert cfg.model.bbox_head.type == head and cfg.model.bbox_head.num_classes == num
    assert len(classes) == num
    cfg.model.bbox_head.num_classes = num + 1
    with pytest.raises(ValueError, match=f'model.bbox_head.num_classes={num + 1}'):
        resolve_num_classes(cfg)
