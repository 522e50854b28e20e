"""The Cascade Mask R-CNN recipes resolve to the values their comments promise."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmft.registry import MODELS


@pytest.fixture
def recipe(repo_root):
    return Config.fromfile(osp.join(repo_root, 'configs/finetune/cityscapes_cascade_mask_rcnn.py'))


def test_cityscapes_cascade_recipe_values(recipe):
    cfg = recipe
    assert cfg.default_scope == 'mmft' and cfg.model.type == 'CascadeRCNN'
    heads = cfg.model.roi_head.bbox_head
    assert [h.num_classes for h in heads] == [8, 8, 8]
    # only num_classes differs from the base: the stage coders and agnostic regression stay
    assert [h.bbox_coder.target_stds for h in heads] == [
        [0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]
    assert all(h.reg_class_agnostic for h in heads)
    assert cfg.model.roi_head.mask_head.num_classes == 8
    assert [s.assigner.pos_iou_thr for s in cfg.model.train_cfg.rcnn] == [0.5, 0.6, 0.7]
    assert cfg.model.backbone.init_cfg is None
    assert cfg.load_from.endswith('cascade_mask_rcnn_r50_fpn_1x_coco_20200203-9d4dcb24.pth')
    assert cfg.finetune == dict(checkpoint_type='detection', class_transfer=True)
    assert cfg.optim_wrapper.optimizer.lr == 0.01 and cfg.train_cfg.max_epochs == 8
    assert cfg.train_dataloader.dataset.dataset.type == 'CityscapesDataset'


def test_cityscapes_cascade_recipe_builds_8_class_heads_in_every_stage(recipe):
    model = MODELS.build(recipe.model)
    for t in range(3):
        assert model.roi_head.bbox_head[t].fc_cls.out_features == 9
        assert model.roi_head.bbox_head[t].fc_reg.out_features == 4
        assert model.roi_head.mask_head[t].conv_logits.out_channels == 8


def test_detectron2_variant_sets_the_msra_conventions(repo_root):
    cfg = Config.fromfile(osp.join(repo_root,
                                   'configs/finetune/cityscapes_cascade_mask_rcnn_detectron2.py'))
    assert cfg.model.backbone.style == 'caffe' and cfg.model.backbone.norm_eval is True
    assert cfg.model.data_preprocessor.std == [1.0, 1.0, 1.0]
    assert cfg.model.data_preprocessor.bgr_to_rgb is False
    assert cfg.load_from.endswith('model_final_480dd8.pkl')
    assert [h.num_classes for h in cfg.model.roi_head.bbox_head] == [8, 8, 8]
    # Detectron2's cascade box-regression weights, exactly
    assert cfg.model.roi_head.bbox_head[2].bbox_coder.target_stds == pytest.approx(
        [1 / 30, 1 / 30, 1 / 15, 1 / 15])
    assert cfg.model.roi_head.mask_head.num_classes == 8
