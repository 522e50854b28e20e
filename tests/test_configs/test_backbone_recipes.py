"""The Swin-T and ResNeXt Cityscapes recipes resolve to what their comments promise."""
import os.path as osp

from mmengine.config import Config

from mmft.registry import MODELS


def _recipe(repo_root, name):
    return Config.fromfile(osp.join(repo_root, 'configs/finetune', name))


def test_swin_t_recipe(repo_root):
    cfg = _recipe(repo_root, 'cityscapes_mask_rcnn_swin-t.py')
    assert cfg.model.backbone.type == 'SwinTransformer' and cfg.model.backbone.init_cfg is None
    assert 'depth' not in cfg.model.backbone  # ResNet's keys were deleted
    assert cfg.model.neck.in_channels == [96, 192, 384, 768]
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=0.00005, betas=(0.9, 0.999),
                                               weight_decay=0.05)
    assert set(cfg.optim_wrapper.paramwise_cfg.custom_keys) == {
        'absolute_pos_embed', 'relative_position_bias_table', 'norm'}
    assert cfg.load_from.endswith('mask_rcnn_swin-t-p4-w7_fpn_1x_coco_20210902_120937-9d6b7cfa.pth')
    assert cfg.finetune.class_transfer and cfg.train_cfg.max_epochs == 8


def test_swin_t_recipe_builds_an_8_class_model(repo_root):
    model = MODELS.build(_recipe(repo_root, 'cityscapes_mask_rcnn_swin-t.py').model)
    assert model.roi_head.bbox_head.fc_cls.out_features == 9
    assert not any(p.requires_grad for p in model.backbone.stages[0].parameters())


def test_resnext_recipe(repo_root):
    cfg = _recipe(repo_root, 'cityscapes_mask_rcnn_x101-32x4d.py')
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.depth, backbone.groups, backbone.base_width) == \
        ('ResNeXt', 101, 32, 4)
    assert backbone.init_cfg is None and cfg.model.roi_head.mask_head.num_classes == 8
    assert cfg.load_from.endswith('mask_rcnn_x101_32x4d_fpn_1x_coco_20200205-478d0b67.pth')
