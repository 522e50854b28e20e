# The demo's "COCO": pretrain the small Mask R-CNN on the 10-class source domain of the
# synthetic shapes data. The fine-tuning recipe (shapes.py) starts from its checkpoint.
#
#   python tools/misc/generate_shapes.py --out data/shapes
#   python tools/train.py configs/finetune/shapes_pretrain.py --work-dir work_dirs/shapes_pretrain
_base_ = [
    '../_base_/models/mask_rcnn_r18_fpn_small.py',
    '../_base_/datasets/shapes_instance.py',
    '../_base_/default_runtime.py',
]

model = dict(roi_head=dict(bbox_head=dict(num_classes='auto'), mask_head=dict(num_classes='auto')))

max_iters = 1500
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75)], gamma=0.1)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=1),
    visualization=dict(type='DetVisualizationHook'))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
