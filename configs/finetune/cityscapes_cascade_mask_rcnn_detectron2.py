# Fine-tune Detectron2's COCO Cascade Mask R-CNN R50-FPN (model zoo
# Misc/cascade_mask_rcnn_R_50_FPN_3x) on Cityscapes' 8 classes.
#
#   python tools/train.py configs/finetune/cityscapes_cascade_mask_rcnn_detectron2.py
#
# load_from takes Detectron2's .pkl as it is (docs/model_zoo.md): the three stages' box heads go
# to roi_head.bbox_head.{0,1,2}, and Detectron2's single mask head to each of mmft's three
# (MMDetection's cascade averages its per-stage mask heads; equal heads average to the one head).
# Detectron2 averages the stages' class probabilities at test time where MMDetection averages
# logits, so scores before fine-tuning differ slightly from Detectron2's own. The MSRA backbone
# conventions are set below; the rest is ./cityscapes_cascade_mask_rcnn.py.
_base_ = './cityscapes_cascade_mask_rcnn.py'

model = dict(
    # MODEL.PIXEL_MEAN / PIXEL_STD, INPUT.FORMAT='BGR': BGR in 0..255, mean subtraction only
    data_preprocessor=dict(
        mean=[103.530, 116.280, 123.675], std=[1.0, 1.0, 1.0], bgr_to_rgb=False),
    # RESNETS.STRIDE_IN_1X1=True: stride on the first 1x1 conv; RESNETS.NORM='FrozenBN'
    backbone=dict(style='caffe', norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True),
    # ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS (10, 10, 5, 5), (20, 20, 10, 10), (30, 30, 15, 15):
    # the stds are their inverses; MMDetection rounds the last stage's to 0.033 / 0.067
    roi_head=dict(bbox_head=[
        dict(
            type='Shared2FCBBoxHead',
            in_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=8,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[1 / w for w in (10., 10., 5., 5.)]),
            reg_class_agnostic=True,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
        dict(
            type='Shared2FCBBoxHead',
            in_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=8,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[1 / w for w in (20., 20., 10., 10.)]),
            reg_class_agnostic=True,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
        dict(
            type='Shared2FCBBoxHead',
            in_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=8,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[1 / w for w in (30., 30., 15., 15.)]),
            reg_class_agnostic=True,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
    ]))

# Fetch elsewhere (this machine cannot download) and put it here, or --cfg-options load_from=PATH:
#   https://dl.fbaipublicfiles.com/detectron2/Misc/cascade_mask_rcnn_R_50_FPN_3x/144998488/
#   model_final_480dd8.pkl
load_from = 'checkpoints/model_final_480dd8.pkl'
