# Fine-tune the source-pretrained RTMDet-tiny on the 5-class target domain of the shapes data
# (the same comparison as shapes.py for Mask R-CNN): 3 classes shared by name, 'box' mapped
# to the source's 'square', 'pentagon' new. `run_demo.py --model rtmdet-tiny` runs it after
# the pretraining, beside scratch and plain fine-tuning; by hand:
#
#   python tools/train.py configs/finetune/shapes_rtmdet_tiny.py
_base_ = './shapes_pretrain_rtmdet_tiny.py'

data_root = 'data/shapes/target/'
classes = ('circle', 'triangle', 'star', 'box', 'pentagon')
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'val.json', classwise=True)
test_evaluator = val_evaluator

# where `run_demo.py --model rtmdet-tiny` caches the pretrained checkpoint
load_from = 'work_dirs/demo_rtmdet-tiny/pretrain/iter_600.pth'
# rtm_cls's rows (one per class on each level) of shared classes are copied; 'pentagon'
# starts at the focal-loss prior
finetune = dict(class_transfer=True, class_mapping={'box': 'square'})

# the same short schedule as shapes.py: evaluated at iterations 25, 50, 100 and 150
max_iters = 150
train_cfg = dict(max_iters=max_iters, val_interval=25, dynamic_intervals=[(50, 50)])
# a quarter of the pretraining's AdamW lr: Adam moves every weight by about lr per step,
# whatever its gradient, and at 1e-3 the first 25 steps undid most of what was transferred
# (measured: bbox mAP 0.019 at iteration 25, against 0.114 at 5e-4)
optim_wrapper = dict(optimizer=dict(lr=0.0005))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75)], gamma=0.1)
]
default_hooks = dict(logger=dict(interval=25), checkpoint=dict(interval=max_iters))
