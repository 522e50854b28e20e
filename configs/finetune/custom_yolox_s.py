# Fine-tune COCO YOLOX-s on your own COCO-format dataset (as MMDetection's balloon tutorial
# does for other detectors), with YOLOX's mosaic / mixup, HSV and multi-scale training, EMA
# and its last-epochs switch (no mixing, L1 loss on).
#
#   python tools/train.py configs/finetune/custom_yolox_s.py \
#       --cfg-options data_root=data/balloon/ "metainfo.classes=('balloon',)"
#
# Data: {data_root}/train/*.jpg + train/annotation_coco.json, val/ likewise (edit below).
_base_ = [
    '../_base_/models/yolox_s.py',
    '../_base_/default_runtime.py',
]

data_root = 'data/balloon/'
metainfo = dict(classes=('balloon', ))

# the head's class count follows metainfo.classes
model = dict(bbox_head=dict(num_classes='auto'))

# COCO weights. This machine cannot download; fetch this MMDetection model-zoo file elsewhere:
#   https://download.openmmlab.com/mmdetection/v2.0/yolox/yolox_s_8x8_300e_coco/
#   yolox_s_8x8_300e_coco_20211121_095711-4592a793.pth
# and put it here (or pass --cfg-options load_from=PATH).
load_from = 'checkpoints/yolox_s_8x8_300e_coco_20211121_095711-4592a793.pth'

# multi_level_conv_cls has one sigmoid row per class on each level: the rows of classes
# COCO shares by name are copied, the others start at the focal-loss prior; objectness and
# everything else load as they are.
finetune = dict(checkpoint_type='detection', class_transfer=True)

# Mosaic and MixUp as the cached transforms (one dataset, no MultiImageMixDataset wrapper);
# YOLOXModeSwitchHook drops both for the last epochs. MMDetection's own YOLOX pipeline
# (Mosaic + RandomAffine + MixUp in a MultiImageMixDataset) works here too once those
# transforms are available.
img_scale = (640, 640)  # width, height
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='CachedMosaic', img_scale=img_scale, pad_val=114.0, max_cached_images=20,
         random_pop=False),
    dict(type='CachedMixUp', img_scale=img_scale, ratio_range=(0.8, 1.6), max_cached_images=10,
         random_pop=False, pad_val=(114, 114, 114), prob=0.5),
    dict(type='YOLOXHSVRandomAug'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', pad_to_square=True, pad_val=dict(img=(114.0, 114.0, 114.0))),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', pad_to_square=True, pad_val=dict(img=(114.0, 114.0, 114.0))),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]

train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CocoDataset', data_root=data_root, metainfo=metainfo,
                 ann_file='train/annotation_coco.json', data_prefix=dict(img='train/'),
                 filter_cfg=dict(filter_empty_gt=False, min_size=32),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CocoDataset', data_root=data_root, metainfo=metainfo,
                 ann_file='val/annotation_coco.json', data_prefix=dict(img='val/'),
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric', ann_file=data_root + 'val/annotation_coco.json',
                     metric='bbox')
test_evaluator = val_evaluator

# YOLOX's optimiser (SGD, nesterov, no decay on norms and biases), its lr scaled from 64
# images to 8; a short schedule: warm-up, cosine, then the last epochs at a constant lr
# without mixing and with the L1 loss. Warm-up is YOLOX's quadratic one.
base_lr = 0.01 * 8 / 64
max_epochs = 40
num_last_epochs = 5
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5,
                 dynamic_intervals=[(max_epochs - num_last_epochs, 1)])
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=base_lr, momentum=0.9, weight_decay=5e-4, nesterov=True),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
param_scheduler = [
    dict(type='QuadraticWarmupLR', by_epoch=True, begin=0, end=3, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=base_lr * 0.05, begin=3,
         T_max=max_epochs - num_last_epochs - 3, end=max_epochs - num_last_epochs,
         by_epoch=True, convert_to_iter_based=True),
    dict(type='ConstantLR', by_epoch=True, factor=1, begin=max_epochs - num_last_epochs,
         end=max_epochs),
]
default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=2, save_best='auto'),
                     logger=dict(type='LoggerHook', interval=5))
custom_hooks = [
    dict(type='YOLOXModeSwitchHook', num_last_epochs=num_last_epochs,
         skip_type_keys=('CachedMosaic', 'CachedMixUp'), priority=48),
    dict(type='SyncNormHook', priority=48),
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0001, update_buffers=True,
         priority=49)
]
