# Fine-tune MMDetection's COCO Mask R-CNN Swin-T-FPN on Cityscapes' 8 instance classes.
#
#   python tools/train.py configs/finetune/cityscapes_mask_rcnn_swin-t.py
#
# Same data, schedule length and class transfer as ./cityscapes.py; the model is
# configs/_base_/models/mask_rcnn_swin-t-p4-w7_fpn.py and the optimizer is MMDetection's Swin
# one: AdamW, no weight decay on LayerNorms, position bias tables and position embeddings.
_base_ = './cityscapes.py'

model = dict(
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
        # the whole detector comes from load_from; frozen_stages=1 keeps the patch
        # embedding and the first stage at their COCO values (the small-data default)
        frozen_stages=1,
        init_cfg=None),
    neck=dict(in_channels=[96, 192, 384, 768]))

# COCO weights (fetch elsewhere, this machine cannot download; or --cfg-options load_from=PATH):
#   https://download.openmmlab.com/mmdetection/v2.0/swin/mask_rcnn_swin-t-p4-w7_fpn_1x_coco/
#   mask_rcnn_swin-t-p4-w7_fpn_1x_coco_20210902_120937-9d6b7cfa.pth
load_from = 'checkpoints/mask_rcnn_swin-t-p4-w7_fpn_1x_coco_20210902_120937-9d6b7cfa.pth'

# MMDetection trains Swin at lr 1e-4 for a batch of 16; fine-tuning with a batch of 8 halves it
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=0.00005, betas=(0.9, 0.999),
                   weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }))
