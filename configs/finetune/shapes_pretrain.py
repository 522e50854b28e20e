# The demo's "COCO": pretrain the small Mask R-CNN on the 10-class source domain of the
# synthetic shapes data. The fine-tuning recipe (shapes.py) starts from its checkpoint.
# `make demo` (tools/misc/run_demo.py) runs both; by hand:
#
#   python tools/misc/generate_shapes.py --out data/shapes --num-train 800 --num-val 100 \
#       --target-num-train 100 --image-size 96
#   python tools/train.py configs/finetune/shapes_pretrain.py --work-dir work_dirs/demo/pretrain
_base_ = [
    '../_base_/models/mask_rcnn_r18_fpn_small.py',
    '../_base_/datasets/shapes_instance.py',
    '../_base_/default_runtime.py',
]

# a half-width ResNet-18 (32..256 channels): 0.27 s instead of 0.4 s a training iteration on
# one core, and as good on these shapes. It starts from random init (no ImageNet offline):
# this run IS the pretraining.
model = dict(
    backbone=dict(base_channels=32),
    neck=dict(in_channels=[32, 64, 128, 256]),
    roi_head=dict(bbox_head=dict(num_classes='auto'), mask_head=dict(num_classes='auto')))

max_iters = 600
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.8)], gamma=0.1)
]
default_hooks = dict(
    # log_metric_by_epoch=False: val metrics are logged at their iteration (step), not epoch 0
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
    visualization=dict(type='DetVisualizationHook'))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
