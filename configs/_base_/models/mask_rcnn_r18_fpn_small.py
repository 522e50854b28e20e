# A small Mask R-CNN for CPU demos and tests: ResNet-18 (torchvision's shapes, so its ImageNet
# weights fit), a 32-channel FPN, lighter heads, and anchors and sample counts sized for
# ~100 px images with 10-50 px objects. Same parts and key names as mask_rcnn_r50_fpn.py, only
# narrower. A training iteration of 8 images of 96 px takes ~0.4 s on one CPU core.
_base_ = './mask_rcnn_r50_fpn.py'

width = 32
model = dict(
    backbone=dict(depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=width),
    # anchors of 16..256 px (strides 4..64): scale 8 would start at 32 px, above most objects
    rpn_head=dict(in_channels=width, feat_channels=width, anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, fc_out_channels=256),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(num_convs=2, in_channels=width, conv_out_channels=width)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=300, max_per_img=150),
        # RoIAlign's backward is the costliest op on a CPU: it scales with the sampled RoIs
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(max_per_img=50)))
