# Mask R-CNN R50-FPN with deformable convs in stages 2-4 (MMDetection 3.x's
# configs/dcn/mask-rcnn_r50-dconv-c3-c5_fpn_1x_coco.py); DCNv2: type='DCNv2'.
_base_ = './mask_rcnn_r50_fpn.py'

model = dict(
    backbone=dict(
        dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)))
