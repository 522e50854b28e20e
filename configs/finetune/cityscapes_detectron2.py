# Fine-tune Detectron2's COCO Mask R-CNN R50-FPN (model zoo mask_rcnn_R_50_FPN_3x) on
# Cityscapes' 8 classes.
#
#   python tools/train.py configs/finetune/cityscapes_detectron2.py
#
# load_from takes Detectron2's .pkl as it is: unpickled with an allow-list of numpy arrays,
# keys converted, COCO names attached, so the rows of car, person, ... transfer by name
# (docs/model_zoo.md). Detectron2's RoIAlign (ROIAlignV2), box coders and test thresholds are
# mmft's defaults already; only the MSRA backbone's conventions differ. The rest is ./cityscapes.py.
_base_ = './cityscapes.py'

model = dict(
    # MODEL.PIXEL_MEAN / PIXEL_STD, INPUT.FORMAT='BGR': BGR in 0..255, mean subtraction only
    data_preprocessor=dict(
        mean=[103.530, 116.280, 123.675], std=[1.0, 1.0, 1.0], bgr_to_rgb=False),
    # RESNETS.STRIDE_IN_1X1=True: stride on the first 1x1 conv; RESNETS.NORM='FrozenBN'
    backbone=dict(style='caffe', norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True))

# Fetch elsewhere (this machine cannot download) and put it here, or --cfg-options load_from=PATH:
#   https://dl.fbaipublicfiles.com/detectron2/COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x/
#   137849600/model_final_f10217.pkl
load_from = 'checkpoints/model_final_f10217.pkl'
