# Fine-tune a COCO RTMDet-Ins-tiny on Cityscapes' 8 instance classes (boxes and masks).
#
#   python tools/train.py configs/finetune/cityscapes_rtmdet-ins_tiny.py
#
# Data: data/cityscapes/ prepared with tools/dataset_converters/cityscapes.py
# (annotations/instancesonly_filtered_gtFine_{train,val}.json).
_base_ = [
    '../_base_/models/rtmdet-ins_tiny.py',
    '../_base_/datasets/cityscapes_instance.py',
    '../_base_/default_runtime.py',
]

model = dict(
    # the whole detector comes from load_from; no ImageNet backbone init
    backbone=dict(init_cfg=None),
    bbox_head=dict(num_classes=8))

# COCO weights. This machine cannot download; fetch this MMDetection model-zoo file elsewhere:
#   https://download.openmmlab.com/mmdetection/v3.0/rtmdet/rtmdet-ins_tiny_8xb32-300e_coco/
#   rtmdet-ins_tiny_8xb32-300e_coco_20221130_151727-ec670f7e.pth
# and put it here (or pass --cfg-options load_from=PATH).
load_from = 'checkpoints/rtmdet-ins_tiny_8xb32-300e_coco_20221130_151727-ec670f7e.pth'

# rtm_cls has one sigmoid row per class on each level: the rows of the classes COCO shares by
# name (and rider <- person) are copied, the others start at the focal-loss prior; the towers,
# rtm_reg, the kernel branch and the mask feature module are class-agnostic and load as they are.
finetune = dict(checkpoint_type='detection', class_transfer=True)

# RTMDet trains at 640 px; Cityscapes frames are 2048x1024 with many small objects, so the
# frames are scaled to 0.5-1.0 of full size and 640 px crops are taken from them; the test
# runs on whole full-size frames. No Mosaic / MixUp: a short fine-tune from converged COCO
# weights, as RTMDet's own last epochs (its stage-2 pipeline) train without them.
crop = (640, 640)
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=False),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 1.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop, recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1)),
    dict(type='YOLOXHSVRandomAug'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size=crop, pad_val=dict(img=(114, 114, 114))),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='Pad', size_divisor=32, pad_val=dict(img=(114, 114, 114))),
    # after Resize, so that boxes and masks stay in original-image pixels for the metric
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    dataset=dict(dataset=dict(pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# MMDetection-style fine-tune schedule. RTMDet-Ins trains COCO from ImageNet weights for 300
# epochs at AdamW lr 0.004 for a total batch of 256; starting from its COCO weights, this
# recipe uses the Cityscapes schedule of the other recipes (8 epochs of the 8x repeated train
# set, so the families compare at one schedule) and half of RTMDet's per-image rate:
# lr 0.004 * 16 / 256 / 2 = 1.25e-4 for a total batch of 16 (e.g. 2 GPUs x 8), so the COCO
# features are adjusted rather than relearnt. A short warm-up (the COCO run's 1000 iterations
# warm up randomly initialised heads), flat, then cosine to 5% over the second half, as RTMDet.
base_lr = 0.004 * 16 / 256 / 2
max_epochs = 8
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0, bypass_duplicate=True))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0e-3, by_epoch=False, begin=0, end=300),
    dict(type='CosineAnnealingLR', eta_min=base_lr * 0.05, begin=max_epochs // 2,
         end=max_epochs, T_max=max_epochs // 2, by_epoch=True, convert_to_iter_based=True),
]

# the EMA model (RTMDet's) is what is evaluated and saved as state_dict
custom_hooks = [
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002, update_buffers=True,
         priority=49)
]
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2, save_best='auto'),
                     logger=dict(type='LoggerHook', interval=50))

auto_scale_lr = dict(enable=False, base_batch_size=16)
