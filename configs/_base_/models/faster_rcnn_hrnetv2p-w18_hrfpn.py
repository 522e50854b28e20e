# Faster R-CNN HRNetV2p-W18 with HRFPN, MMDetection 3.x's values
# (configs/hrnet/faster-rcnn_hrnetv2p-w18-1x_coco.py on faster-rcnn_hrnetv2p-w32-1x_coco.py).
_base_ = './faster_rcnn_r50_fpn.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='HRNet',
        extra=dict(
            stage1=dict(
                num_modules=1,
                num_branches=1,
                block='BOTTLENECK',
                num_blocks=(4, ),
                num_channels=(64, )),
            stage2=dict(
                num_modules=1,
                num_branches=2,
                block='BASIC',
                num_blocks=(4, 4),
                num_channels=(18, 36)),
            stage3=dict(
                num_modules=4,
                num_branches=3,
                block='BASIC',
                num_blocks=(4, 4, 4),
                num_channels=(18, 36, 72)),
            stage4=dict(
                num_modules=3,
                num_branches=4,
                block='BASIC',
                num_blocks=(4, 4, 4, 4),
                num_channels=(18, 36, 72, 144))),
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://msra/hrnetv2_w18')),
    neck=dict(
        _delete_=True,
        type='HRFPN',
        in_channels=[18, 36, 72, 144],
        out_channels=256))
