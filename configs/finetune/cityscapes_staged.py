# The Cityscapes recipe with the classic staged schedule: the new heads first train on a frozen
# COCO body, then the body thaws, with smaller learning rates for the pretrained layers.
#
#   python tools/train.py configs/finetune/cityscapes_staged.py
#   python tools/analysis_tools/inspect_finetune.py configs/finetune/cityscapes_staged.py
_base_ = './cityscapes.py'

finetune = dict(
    # frozen before the optimizer and DDP see the model; frozen BatchNorm stays in eval mode
    freeze=['backbone', 'neck'],
    # thaw the neck after 500 iterations and the last two ResNet stages from epoch 1 (0-based);
    # the stem, layer1 and layer2 stay frozen for the whole run
    unfreeze=[
        dict(patterns=['neck'], iter=500),
        dict(patterns=['backbone.layer3', 'backbone.layer4'], epoch=1),
    ])

# Per-module learning-rate multipliers (MMEngine's paramwise_cfg): pretrained layers move
# slowly, the re-initialised heads at the full rate. A thawed group keeps its multiplier.
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={
        'backbone': dict(lr_mult=0.1),
        'neck': dict(lr_mult=0.5),
    }))
