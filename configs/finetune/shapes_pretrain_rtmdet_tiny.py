# The demo's "COCO" for RTMDet-tiny: pretrain it on the 10-class source domain of the
# synthetic shapes data (`run_demo.py --model rtmdet-tiny` runs it, then fine-tunes with
# shapes_rtmdet_tiny.py three ways). By hand:
#
#   python tools/train.py configs/finetune/shapes_pretrain_rtmdet_tiny.py \
#       --work-dir work_dirs/demo_rtmdet-tiny/pretrain
_base_ = [
    '../_base_/models/rtmdet_tiny.py',
    '../_base_/datasets/shapes_instance.py',
    '../_base_/default_runtime.py',
]

# MMDetection's RTMDet-tiny, unchanged but for the class count and no ImageNet init (offline:
# this run IS the pretraining). Strides 8..32 suit the 10-50 px shapes of 96 px images.
model = dict(
    backbone=dict(init_cfg=None),
    bbox_head=dict(num_classes='auto'),
    test_cfg=dict(nms_pre=1000, max_per_img=100))

# boxes only: RTMDet is a box detector, and masks cost loading time
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(metric='bbox')
test_evaluator = val_evaluator

max_iters = 600
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# RTMDet's AdamW with weight decay 0.05 and no decay on norms and biases; a higher lr than
# MMDetection's 0.004 per 256 images, because this short run starts from random weights
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.002, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0, bypass_duplicate=True))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.8)], gamma=0.1)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
    visualization=dict(type='DetVisualizationHook'))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
