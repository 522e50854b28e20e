# Fine-tune torchvision's COCO Mask R-CNN (maskrcnn_resnet50_fpn) on Cityscapes' 8 classes.
#
#   python tools/train.py configs/finetune/cityscapes_torchvision.py
#
# load_from takes torchvision's .pth as it is: the format is detected from its keys, the 91-id
# COCO rows become 80 classes + background last and the COCO names come along, so the rows of
# car, person, ... transfer by name (docs/model_zoo.md). Everything else is ./cityscapes.py.
_base_ = './cityscapes.py'

model = dict(
    # torchvision's input: RGB in [0, 1] normalised with ImageNet mean / std
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    # stride on the 3x3 conv; FrozenBatchNorm2d: statistics and affine fixed
    backbone=dict(style='pytorch', norm_cfg=dict(type='BN', requires_grad=False),
                  norm_eval=True),
    # torchvision rounds its base anchors to whole pixels
    rpn_head=dict(anchor_generator=dict(round_base_anchors=True)),
    # torchvision's MultiScaleRoIAlign: roi_align(sampling_ratio=2, aligned=False)
    roi_head=dict(
        bbox_roi_extractor=dict(
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2, aligned=False)),
        mask_roi_extractor=dict(
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=2, aligned=False))))

# Fetch elsewhere (this machine cannot download) and put it here, or --cfg-options load_from=PATH:
#   https://download.pytorch.org/models/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth
load_from = 'checkpoints/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth'
