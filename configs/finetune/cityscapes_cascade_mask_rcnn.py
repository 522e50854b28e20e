# Fine-tune a COCO Cascade Mask R-CNN R50-FPN on Cityscapes' 8 instance classes.
#
#   python tools/train.py configs/finetune/cityscapes_cascade_mask_rcnn.py
#
# Data: data/cityscapes/ prepared with tools/dataset_converters/cityscapes.py
# (annotations/instancesonly_filtered_gtFine_{train,val}.json).
_base_ = [
    '../_base_/models/cascade_mask_rcnn_r50_fpn.py',
    '../_base_/datasets/cityscapes_instance.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_1x.py',
]

# The three box heads are restated whole (a list in the base replaces, it doesn't merge): only
# num_classes changes. Every stage's fc_cls is class-dependent; fc_reg is class-agnostic (4 rows),
# so it loads as it is. The mask head config serves all three stages.
model = dict(
    # the whole detector comes from load_from; no ImageNet backbone init
    backbone=dict(init_cfg=None),
    roi_head=dict(
        bbox_head=[
            dict(
                type='Shared2FCBBoxHead',
                in_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=8,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0., 0., 0., 0.],
                    target_stds=[0.1, 0.1, 0.2, 0.2]),
                reg_class_agnostic=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
            dict(
                type='Shared2FCBBoxHead',
                in_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=8,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0., 0., 0., 0.],
                    target_stds=[0.05, 0.05, 0.1, 0.1]),
                reg_class_agnostic=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
            dict(
                type='Shared2FCBBoxHead',
                in_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=8,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0., 0., 0., 0.],
                    target_stds=[0.033, 0.033, 0.067, 0.067]),
                reg_class_agnostic=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
        ],
        mask_head=dict(num_classes=8)))

# COCO weights. This machine cannot download; fetch this MMDetection model-zoo file elsewhere:
#   https://download.openmmlab.com/mmdetection/v2.0/cascade_rcnn/cascade_mask_rcnn_r50_fpn_1x_coco/
#   cascade_mask_rcnn_r50_fpn_1x_coco_20200203-9d4dcb24.pth
# and put it here (or pass --cfg-options load_from=PATH).
load_from = 'checkpoints/cascade_mask_rcnn_r50_fpn_1x_coco_20200203-9d4dcb24.pth'

# What moves from the COCO checkpoint into the 8-class heads: everything that fits; in each of
# the three stages the fc_cls rows, and in each mask head the conv_logits rows, of the classes
# COCO shares by name (car, truck, bus, train, motorcycle, bicycle, person, and rider through its
# synonym person) are copied, not re-initialised. finetune.exclude=['cascade_rcnn'] would
# re-initialise all of them instead.
finetune = dict(checkpoint_type='detection', class_transfer=True)

# lr 0.01 for a total batch of 8 (e.g. 8 GPUs x 1 image, or 4 x 2), as the Mask R-CNN recipe
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))

max_epochs = 8
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[7], gamma=0.1)
]

default_hooks = dict(logger=dict(type='LoggerHook', interval=100))

auto_scale_lr = dict(enable=False, base_batch_size=8)
