"""configs/finetune/lvis_from_coco.py: 1203-class heads, and the class-aware transfer it
configures moves 79 of COCO's 80 classes' rows into LVIS's (the table in docs/finetune.md)."""
import os.path as osp

import torch
from mmengine.config import Config

from mmft.datasets.class_names import LVIS_V1_CLASSES
from mmft.datasets.coco import COCO_CLASSES
from mmft.finetune.class_transfer import match_classes
from mmft.finetune.config import FinetuneConfig, resolve_num_classes
from mmft.finetune.load import load_checkpoint
from mmft.registry import MODELS


def _recipe(repo_root):
    return Config.fromfile(osp.join(repo_root, 'configs/finetune/lvis_from_coco.py'))


def test_recipe_values(repo_root):
    cfg = _recipe(repo_root)
    assert cfg.model.roi_head.bbox_head.num_classes == 1203
    assert cfg.model.roi_head.mask_head.num_classes == 1203
    assert cfg.val_evaluator.type == 'LVISMetric'
    assert cfg.train_dataloader.dataset.type == 'ClassBalancedDataset'
    assert cfg.train_dataloader.dataset.dataset.type == 'LVISV1Dataset'
    assert resolve_num_classes(cfg) == LVIS_V1_CLASSES


def test_class_match_table(repo_root):
    ft = FinetuneConfig.from_cfg(_recipe(repo_root).finetune)
    assert set(ft.class_mapping) <= set(LVIS_V1_CLASSES)
    assert set(ft.class_mapping.values()) <= set(COCO_CLASSES)
    matches = match_classes(LVIS_V1_CLASSES, COCO_CLASSES, ft.class_mapping, ft.synonyms)
    how = [m.how for m in matches]
    assert (how.count('name'), how.count('synonym'), how.count('mapping'),
            how.count('new')) == (60, 1, 18, 1124)
    used = {m.old_name for m in matches if m.old_name}
    assert set(COCO_CLASSES) - used == {'hot dog'}
    by_new = {m.new_name: m.old_name for m in matches}
    assert by_new['car_(automobile)'] == 'car' and by_new['sofa'] == 'couch'
    assert by_new['person'] == 'person' and by_new['aerosol_can'] is None


def test_rows_move_from_a_coco_checkpoint(repo_root, tmp_path):
    """A small 80-class Mask R-CNN's rows land in a 1203-class one as the table says."""
    small = Config.fromfile(osp.join(repo_root, 'configs/_base_/models/mask_rcnn_r18_fpn_small.py'))
    small.model.backbone.init_cfg = None

    def build(n):
        small.model.roi_head.bbox_head.num_classes = n
        small.model.roi_head.mask_head.num_classes = n
        model = MODELS.build(small.model)
        model.init_weights()
        return model
    torch.manual_seed(0)
    coco = build(80)
    path = str(tmp_path / 'coco.pth')
    torch.save(dict(state_dict=coco.state_dict(),
                    meta=dict(dataset_meta=dict(classes=COCO_CLASSES))), path)
    lvis = build(1203)
    ft = FinetuneConfig.from_cfg(_recipe(repo_root).finetune)
    load_checkpoint(lvis, path, 'finetune', cfg=ft, classes=LVIS_V1_CLASSES)
    new_w = lvis.roi_head.bbox_head.fc_cls.weight
    old_w = coco.roi_head.bbox_head.fc_cls.weight
    for new, old in (('car_(automobile)', 'car'), ('sofa', 'couch'), ('person', 'person')):
        i, j = LVIS_V1_CLASSES.index(new), COCO_CLASSES.index(old)
        torch.testing.assert_close(new_w[i], old_w[j])
        torch.testing.assert_close(lvis.roi_head.mask_head.conv_logits.weight[i],
                                   coco.roi_head.mask_head.conv_logits.weight[j])
    torch.testing.assert_close(new_w[-1], old_w[-1])  # background row, last in both
