# The classic SSD fine-tune: SSD300 trained on COCO -> PASCAL VOC's 20 classes.
#
#   python tools/train.py configs/finetune/voc_ssd300.py
#
# Data: data/VOCdevkit/VOC2007 and VOC2012 (configs/_base_/datasets/voc0712.py).
_base_ = [
    '../_base_/models/ssd300.py',
    '../_base_/datasets/voc0712.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_2x.py',
]

# COCO anchors are kept (basesize_ratio_range 0.15, not MMDetection's VOC-from-scratch 0.2),
# so that each transferred class row keeps predicting for the anchor it was trained on.
model = dict(
    backbone=dict(init_cfg=None),  # the whole detector comes from load_from
    bbox_head=dict(num_classes=20))

# COCO weights. This machine cannot download; fetch this MMDetection model-zoo file elsewhere:
#   https://download.openmmlab.com/mmdetection/v2.0/ssd/ssd300_coco/
#   ssd300_coco_20210803_015428-d231a06e.pth
# and put it here (or pass --cfg-options load_from=PATH). A torchvision ssd300_vgg16 file
# works too (converted; see docs/model_zoo.md for its input overrides).
load_from = 'checkpoints/ssd300_coco_20210803_015428-d231a06e.pth'

# Every SSDHead cls_convs.{i} row block (one per anchor, background last) takes the rows of the
# COCO classes: all 20 VOC classes are COCO's, four under synonyms (aeroplane -> airplane,
# motorbike -> motorcycle, sofa -> couch, tvmonitor -> tv). Everything else loads as is. finetune.exclude=['ssd'] would re-initialise
# the class convs instead.
finetune = dict(checkpoint_type='detection', class_transfer=True)

input_size = 300
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Expand', mean=[123.675, 116.28, 103.53], to_rgb=True, ratio_range=(1, 4)),
    dict(type='MinIoURandomCrop', min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion', brightness_delta=32, contrast_range=(0.5, 1.5),
         saturation_range=(0.5, 1.5), hue_delta=18),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
voc_train = dict(type='VOCDataset', data_root='data/VOCdevkit/',
                 filter_cfg=dict(filter_empty_gt=True, min_size=32), pipeline=train_pipeline)
train_dataloader = dict(
    batch_size=8,
    batch_sampler=None,
    dataset=dict(times=2, dataset=dict(datasets=[
        dict(voc_train, ann_file='VOC2007/ImageSets/Main/trainval.txt',
             data_prefix=dict(sub_data_root='VOC2007/')),
        dict(voc_train, ann_file='VOC2012/ImageSets/Main/trainval.txt',
             data_prefix=dict(sub_data_root='VOC2012/'))])))
val_dataloader = dict(batch_size=8, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# lr 2e-3 for a total batch of 64 as MMDetection's SSD; a fine-tune starts lower and shorter
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=5e-4))
max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=2)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11],
         gamma=0.1)
]
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='CheckInvalidLossHook', interval=50, priority='VERY_LOW')
]
default_hooks = dict(logger=dict(type='LoggerHook', interval=50))
auto_scale_lr = dict(enable=False, base_batch_size=64)
