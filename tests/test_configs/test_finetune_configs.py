"""The shipped recipes resolve to the values their docs promise."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmft.registry import DATASETS, MODELS

CITYSCAPES_CLASSES = ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')


@pytest.fixture
def cityscapes_cfg(repo_root):
    return Config.fromfile(osp.join(repo_root, 'configs/finetune/cityscapes.py'))


def test_cityscapes_recipe_values(cityscapes_cfg):
    """The values of MMDetection's mask-rcnn_r50_fpn_1x_cityscapes.py and its fine-tuning
    guide (docs/en/user_guides/finetune.md)."""
    cfg = cityscapes_cfg
    assert cfg.default_scope == 'mmft'
    assert cfg.model.type == 'MaskRCNN'
    assert cfg.model.roi_head.bbox_head.num_classes == 8
    assert cfg.model.roi_head.mask_head.num_classes == 8
    assert cfg.model.roi_head.bbox_head.loss_bbox == dict(type='SmoothL1Loss', beta=1.0,
                                                          loss_weight=1.0)
    assert cfg.model.roi_head.bbox_head.loss_cls == dict(type='CrossEntropyLoss',
                                                         use_sigmoid=False, loss_weight=1.0)
    assert cfg.model.rpn_head.loss_bbox == dict(type='L1Loss', loss_weight=1.0)  # unchanged
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=0.01, momentum=0.9,
                                               weight_decay=0.0001)
    assert cfg.train_cfg.max_epochs == 8
    warmup, steps = cfg.param_scheduler
    assert warmup == dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500)
    assert steps == dict(type='MultiStepLR', begin=0, end=8, by_epoch=True, milestones=[7],
                         gamma=0.1)
    assert cfg.default_hooks.logger.interval == 100
    assert cfg.load_from.endswith('mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth')
    # 8 epochs of the training set repeated 8 times (MMDetection's "actual epoch = 8 * 8")
    train = cfg.train_dataloader.dataset
    assert train.type == 'RepeatDataset' and train.times == 8
    # the classes come from the dataset type: no metainfo override anywhere
    assert 'metainfo' not in train.dataset and 'metainfo' not in cfg.val_dataloader.dataset
    for dataset in (train.dataset, cfg.val_dataloader.dataset):
        assert DATASETS.get(dataset.type).METAINFO['classes'] == CITYSCAPES_CLASSES


def test_cityscapes_recipe_builds_an_8_class_model(cityscapes_cfg):
    model = MODELS.build(cityscapes_cfg.model)
    assert model.roi_head.bbox_head.fc_cls.out_features == 9  # 8 + background
    assert model.roi_head.bbox_head.fc_reg.out_features == 32
    assert model.roi_head.mask_head.conv_logits.out_channels == 8
    loss = model.roi_head.bbox_head.loss_bbox
    assert type(loss).__name__ == 'SmoothL1Loss' and loss.beta == 1.0


@pytest.mark.parametrize('name', ['faster_rcnn_r50_fpn', 'mask_rcnn_r50_fpn'])
def test_base_models_keep_mmdetection_type_names(repo_root, name):
    cfg = Config.fromfile(osp.join(repo_root, f'configs/_base_/models/{name}.py'))
    assert cfg.model.backbone.type == 'ResNet'
    assert cfg.model.neck.type == 'FPN'
    assert cfg.model.rpn_head.type == 'RPNHead'
    assert cfg.model.roi_head.type == 'StandardRoIHead'
    assert cfg.model.roi_head.bbox_head.type == 'Shared2FCBBoxHead'
    assert cfg.model.roi_head.bbox_head.num_classes == 80


def test_schedules(repo_root):
    one = Config.fromfile(osp.join(repo_root, 'configs/_base_/schedules/schedule_1x.py'))
    two = Config.fromfile(osp.join(repo_root, 'configs/_base_/schedules/schedule_2x.py'))
    assert one.optim_wrapper.optimizer.lr == 0.02
    assert one.param_scheduler[0].end == 500 and one.param_scheduler[0].start_factor == 0.001
    assert one.param_scheduler[1].milestones == [8, 11] and one.train_cfg.max_epochs == 12
    assert two.param_scheduler[1].milestones == [16, 22] and two.train_cfg.max_epochs == 24
