# RTMDet-Ins-tiny with MMDetection 3.3's values (model settings of configs/rtmdet/
# rtmdet-ins_tiny_8xb32-300e_coco.py with its _base_ chain merged: rtmdet_l's detector,
# rtmdet-ins_l's head and test_cfg, tiny's widths), so MMDetection's checkpoints load key for
# key. The detector, backbone, neck and train_cfg are RTMDet-tiny's; the head and test_cfg
# are replaced whole. SyncBN is plain BN in a single-process run.
_base_ = './rtmdet_tiny.py'

model = dict(
    bbox_head=dict(
        _delete_=True,
        type='RTMDetInsSepBNHead',
        num_classes=80,
        in_channels=96,
        stacked_convs=2,
        share_conv=True,
        pred_kernel_size=1,
        feat_channels=96,
        act_cfg=dict(type='SiLU', inplace=True),
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        anchor_generator=dict(type='MlvlPointGenerator', offset=0, strides=[8, 16, 32]),
        bbox_coder=dict(type='DistancePointBBoxCoder'),
        loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
        loss_mask=dict(type='DiceLoss', loss_weight=2.0, eps=5e-6, reduction='mean')),
    test_cfg=dict(
        _delete_=True,
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=100,
        mask_thr_binary=0.5))
