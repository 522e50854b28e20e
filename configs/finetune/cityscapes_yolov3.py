# Fine-tune a COCO YOLOv3 (Darknet-53, 608 px) on Cityscapes' 8 instance classes (boxes).
#
#   python tools/train.py configs/finetune/cityscapes_yolov3.py
#
# Data: data/cityscapes/ prepared with tools/dataset_converters/cityscapes.py
# (annotations/instancesonly_filtered_gtFine_{train,val}.json).
_base_ = [
    '../_base_/models/yolov3_d53.py',
    '../_base_/datasets/cityscapes_detection.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_1x.py',
]

model = dict(
    backbone=dict(init_cfg=None),  # the whole detector comes from load_from
    bbox_head=dict(num_classes=8))

# COCO weights. This machine cannot download; fetch this MMDetection model-zoo file elsewhere:
#   https://download.openmmlab.com/mmdetection/v2.0/yolo/
#   yolov3_d53_mstrain-608_273e_coco/yolov3_d53_mstrain-608_273e_coco_20210518_115020-a2c3acb8.pth
# and put it here (or pass --cfg-options load_from=PATH).
load_from = 'checkpoints/yolov3_d53_mstrain-608_273e_coco_20210518_115020-a2c3acb8.pth'

# convs_pred.{0,1,2}: per anchor 4 box rows + objectness (copied for every anchor) and then the
# class rows; car, truck, bus, train, motorcycle, bicycle, person come from COCO by name, rider
# through its synonym person. finetune.exclude=['yolov3'] would re-initialise them instead.
finetune = dict(checkpoint_type='detection', class_transfer=True)

# Cityscapes' 2048x1024 frames at YOLOv3's 608 px (long side), multi-scale in training
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Expand', mean=[0, 0, 0], to_rgb=True, ratio_range=(1, 2)),
    dict(type='MinIoURandomCrop', min_ious=(0.4, 0.5, 0.6, 0.7, 0.8, 0.9), min_crop_size=0.3),
    dict(type='RandomResize', scale=[(608, 320), (1216, 608)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1216, 608), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(batch_size=8, dataset=dict(dataset=dict(pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# lr 1e-3 for a total batch of 64 as MMDetection's YOLOv3; clip as it does
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=5e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=2)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[9, 11],
         gamma=0.1)
]
default_hooks = dict(logger=dict(type='LoggerHook', interval=50))
auto_scale_lr = dict(enable=False, base_batch_size=64)
