# Mask R-CNN ResNeXt-101-32x4d-FPN with MMDetection 3.x's values
# (configs/mask_rcnn/mask-rcnn_x101-32x4d_fpn_1x_coco.py); ImageNet weights: MMDetection's
# open-mmlab://resnext101_32x4d (torchvision has resnext101_32x8d / 64x4d, see docs/model_zoo.md).
_base_ = './mask_rcnn_r50_fpn.py'

model = dict(
    backbone=dict(
        type='ResNeXt',
        depth=101,
        groups=32,
        base_width=4,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnext101_32x4d')))
