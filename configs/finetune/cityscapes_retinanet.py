# Fine-tune a COCO RetinaNet R50-FPN on Cityscapes' 8 classes (boxes).
#
#   python tools/train.py configs/finetune/cityscapes_retinanet.py
#
# Data: data/cityscapes/ prepared with tools/dataset_converters/cityscapes.py
# (annotations/instancesonly_filtered_gtFine_{train,val}.json).
_base_ = [
    '../_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/cityscapes_detection.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_1x.py',
]

model = dict(
    # the whole detector comes from load_from; no ImageNet backbone init
    backbone=dict(init_cfg=None),
    bbox_head=dict(num_classes=8))

# COCO weights. This machine cannot download; fetch this MMDetection model-zoo file elsewhere:
#   https://download.openmmlab.com/mmdetection/v2.0/retinanet/retinanet_r50_fpn_1x_coco/
#   retinanet_r50_fpn_1x_coco_20200130-c2398f9e.pth
# and put it here (or pass --cfg-options load_from=PATH). torchvision's
# retinanet_resnet50_fpn_coco-eeacb38b.pth loads too, with the overrides of docs/model_zoo.md.
load_from = 'checkpoints/retinanet_r50_fpn_1x_coco_20200130-c2398f9e.pth'

# What moves from the COCO checkpoint into the 8-class head: everything that fits; retina_cls
# is sigmoid with 9 anchors x 80 classes, so for every anchor the rows of the classes COCO
# shares by name (car, truck, bus, train, motorcycle, bicycle, person, and rider through its
# synonym person) are copied; a class COCO lacked would keep the focal-loss prior bias.
finetune = dict(checkpoint_type='detection', class_transfer=True)

# MMDetection's Cityscapes schedule: lr 0.01 for a total batch of 8, 8 epochs (of 8 passes over
# the ~3k training images), step at epoch 7
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))

max_epochs = 8
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[7], gamma=0.1)
]

default_hooks = dict(logger=dict(type='LoggerHook', interval=100))

auto_scale_lr = dict(enable=False, base_batch_size=8)
