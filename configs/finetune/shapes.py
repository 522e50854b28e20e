# Fine-tune the source-pretrained small Mask R-CNN on the 5-class target domain of the shapes
# data: 3 classes shared by name with the source, 'box' (the source's 'square' under another
# name, mapped below), and 'pentagon' (new).
#
#   python tools/train.py configs/finetune/shapes.py
_base_ = './shapes_pretrain.py'

data_root = 'data/shapes/target/'
classes = ('circle', 'triangle', 'star', 'box', 'pentagon')
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'val.json')
test_evaluator = val_evaluator

load_from = 'work_dirs/shapes_pretrain/iter_1500.pth'
finetune = dict(class_transfer=True, class_mapping={'box': 'square'})

# the fine-tuning schedule: a tenth of the pretraining, at half the learning rate
max_iters = 300
train_cfg = dict(max_iters=max_iters, val_interval=100)
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75)], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=100))
