# Fine-tune MMDetection's COCO Mask R-CNN ResNeXt-101-32x4d-FPN on Cityscapes' 8 classes.
#
#   python tools/train.py configs/finetune/cityscapes_mask_rcnn_x101-32x4d.py
#
# Everything but the backbone is ./cityscapes.py (SGD, 8 epochs, class transfer by name).
_base_ = './cityscapes.py'

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
        norm_eval=True,
        style='pytorch',
        init_cfg=None))

# COCO weights (fetch elsewhere, this machine cannot download; or --cfg-options load_from=PATH):
#   https://download.openmmlab.com/mmdetection/v2.0/mask_rcnn/mask_rcnn_x101_32x4d_fpn_1x_coco/
#   mask_rcnn_x101_32x4d_fpn_1x_coco_20200205-478d0b67.pth
load_from = 'checkpoints/mask_rcnn_x101_32x4d_fpn_1x_coco_20200205-478d0b67.pth'
