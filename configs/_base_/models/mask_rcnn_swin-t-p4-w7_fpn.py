# Mask R-CNN Swin-T-FPN with MMDetection 3.x's values
# (configs/swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py). Train it with AdamW and no weight decay
# on norms and position tables: see optim_wrapper in configs/finetune/cityscapes_mask_rcnn_swin-t.py.
_base_ = './mask_rcnn_r50_fpn.py'

pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny_patch4_window7_224.pth'  # noqa
model = dict(
    type='MaskRCNN',
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        embed_dims=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.2,
        patch_norm=True,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        convert_weights=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[96, 192, 384, 768]))
