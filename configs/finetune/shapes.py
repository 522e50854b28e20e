# Fine-tune the source-pretrained small Mask R-CNN on the 5-class target domain of the shapes
# data: 3 classes shared by name with the source, 'box' (the source's 'square' under another
# name, mapped below) and 'pentagon' (new). `make demo` runs it after the pretraining, next to
# the same schedule from scratch and with plain fine-tuning; by hand:
#
#   python tools/train.py configs/finetune/shapes.py
_base_ = './shapes_pretrain.py'

data_root = 'data/shapes/target/'
classes = ('circle', 'triangle', 'star', 'box', 'pentagon')
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'val.json', classwise=True)
test_evaluator = val_evaluator

# where `make demo` (tools/misc/run_demo.py) caches the pretrained checkpoint
load_from = 'work_dirs/demo/pretrain/iter_600.pth'
finetune = dict(class_transfer=True, class_mapping={'box': 'square'})

# a short schedule on a small target set, evaluated at iterations 25, 50, 100 and 150: often
# early, where the transferred head rows show most
max_iters = 150
train_cfg = dict(max_iters=max_iters, val_interval=25, dynamic_intervals=[(50, 50)])
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75)], gamma=0.1)
]
# log every 25 iterations, so that each evaluation follows a log line of its iteration
default_hooks = dict(logger=dict(interval=25), checkpoint=dict(interval=max_iters))
