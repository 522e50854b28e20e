# Fine-tune a COCO FCOS R50-caffe FPN (GN head) on Cityscapes' 8 classes (boxes).
#
#   python tools/train.py configs/finetune/cityscapes_fcos.py
#
# Data: data/cityscapes/ prepared with tools/dataset_converters/cityscapes.py
# (annotations/instancesonly_filtered_gtFine_{train,val}.json).
_base_ = [
    '../_base_/models/fcos_r50-caffe_fpn_gn-head.py',
    '../_base_/datasets/cityscapes_detection.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_1x.py',
]

model = dict(
    # the whole detector comes from load_from; no ImageNet backbone init
    backbone=dict(init_cfg=None),
    bbox_head=dict(num_classes=8))

# COCO weights. This machine cannot download; fetch this MMDetection model-zoo file elsewhere:
#   https://download.openmmlab.com/mmdetection/v2.0/fcos/fcos_r50_caffe_fpn_gn-head_1x_coco/
#   fcos_r50_caffe_fpn_gn-head_1x_coco-821213aa.pth
# and put it here (or pass --cfg-options load_from=PATH).
load_from = 'checkpoints/fcos_r50_caffe_fpn_gn-head_1x_coco-821213aa.pth'

# conv_cls has one sigmoid row per class: the rows of the classes COCO shares by name (and
# rider <- person) are copied; the towers, centerness and the per-level scales load as they are.
finetune = dict(checkpoint_type='detection', class_transfer=True)

# MMDetection's FCOS optimiser (bias lr x2, no bias decay, clipped gradients) at the Cityscapes
# schedule: lr 0.01 for a total batch of 8, 8 epochs, step at epoch 7; FCOS' constant warm-up
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.),
    clip_grad=dict(max_norm=35, norm_type=2))

max_epochs = 8
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='ConstantLR', factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[7], gamma=0.1)
]

default_hooks = dict(logger=dict(type='LoggerHook', interval=100))

auto_scale_lr = dict(enable=False, base_batch_size=8)
