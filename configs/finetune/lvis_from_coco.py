# Fine-tune a COCO Mask R-CNN R50-FPN on LVIS v1's 1203 classes, with class-aware transfer.
#
#   python tools/train.py configs/finetune/lvis_from_coco.py
#   python tools/analysis_tools/inspect_finetune.py configs/finetune/lvis_from_coco.py
#
# Data: data/lvis_v1/ with annotations/lvis_v1_{train,val}.json and COCO 2017's train2017/,
# val2017/ (see docs/dataset_prepare.md). Evaluation needs the lvis extra
# (pip install -r requirements/lvis.txt).
_base_ = [
    '../_base_/models/mask_rcnn_r50_fpn.py',
    '../_base_/datasets/lvis_v1_instance.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_1x.py',
]

model = dict(
    backbone=dict(init_cfg=None),  # the whole detector comes from load_from
    roi_head=dict(
        bbox_head=dict(num_classes=1203),
        mask_head=dict(num_classes=1203)),
    # LVIS images hold many small objects of many classes: keep more, lower-scored detections
    test_cfg=dict(rcnn=dict(score_thr=0.0001, max_per_img=300)))

# COCO weights (MMDetection model zoo; this machine cannot download, fetch it elsewhere):
#   https://download.openmmlab.com/mmdetection/v2.0/mask_rcnn/mask_rcnn_r50_fpn_1x_coco/
#   mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth
load_from = 'checkpoints/mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth'

# Class-aware transfer: 79 of COCO's 80 classes move into LVIS's heads. 60 have the same name
# (case, spaces and underscores ignored), 'sofa' is COCO's 'couch' through the built-in
# synonyms, and these 18 are LVIS's names for COCO classes; 'hot dog' has no LVIS counterpart.
# The other 1124 LVIS classes start from the head's initialisation (docs/finetune.md).
finetune = dict(
    checkpoint_type='detection',
    class_transfer=True,
    class_mapping={
        'bus_(vehicle)': 'bus',
        'car_(automobile)': 'car',
        'cellular_telephone': 'cell phone',
        'doughnut': 'donut',
        'fireplug': 'fire hydrant',
        'hair_dryer': 'hair drier',
        'computer_keyboard': 'keyboard',
        'laptop_computer': 'laptop',
        'microwave_oven': 'microwave',
        'mouse_(computer_equipment)': 'mouse',
        'orange_(fruit)': 'orange',
        'flowerpot': 'potted plant',
        'remote_control': 'remote',
        'ski': 'skis',
        'ball': 'sports ball',
        'necktie': 'tie',
        'train_(railroad_vehicle)': 'train',
        'television_set': 'tv',
    })

# schedule_1x: SGD lr 0.02 for a total batch of 16, 12 epochs; LVIS evaluation is slow, so
# evaluate once at the end
train_cfg = dict(val_interval=12)
default_hooks = dict(logger=dict(type='LoggerHook', interval=100))
