# Fine-tune a COCO Mask R-CNN R50-FPN on Cityscapes' 8 instance classes.
#
#   python tools/train.py configs/finetune/cityscapes.py
#
# Data: data/cityscapes/ prepared with tools/dataset_converters/cityscapes.py
# (annotations/instancesonly_filtered_gtFine_{train,val}.json).
_base_ = [
    '../_base_/models/mask_rcnn_r50_fpn.py',
    '../_base_/datasets/cityscapes_instance.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_1x.py',
]

model = dict(
    # the whole detector comes from load_from; no ImageNet backbone init
    backbone=dict(init_cfg=None),
    roi_head=dict(
        # MMDetection's Cityscapes recipe (configs/cityscapes/, the fine-tuning guide): the
        # 8-class box head regresses with SmoothL1Loss rather than the COCO base's L1Loss
        bbox_head=dict(num_classes=8,
                       loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
        mask_head=dict(num_classes=8)))

# COCO weights. This machine cannot download; fetch this MMDetection model-zoo file elsewhere:
#   https://download.openmmlab.com/mmdetection/v2.0/mask_rcnn/mask_rcnn_r50_fpn_1x_coco/
#   mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth
# and put it here (or pass --cfg-options load_from=PATH).
load_from = 'checkpoints/mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth'

# What moves from the COCO checkpoint into the 8-class heads: everything that fits; the rows of
# fc_cls / fc_reg / conv_logits for classes COCO shares by name (car, truck, bus, train,
# motorcycle, bicycle, person, and rider through its synonym person) are copied, not re-initialised.
finetune = dict(checkpoint_type='detection', class_transfer=True)

# lr 0.01 for a total batch of 8 (e.g. 8 GPUs x 1 image, or 4 x 2)
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
