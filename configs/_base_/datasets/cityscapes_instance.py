# Cityscapes instance segmentation, 8 classes (MMDetection 3.x's cityscapes_instance.py):
# cityscapes_detection.py with masks, evaluated by CocoMetric and cityscapesScripts
# (CityScapesMetric reads gtFine/val/).
_base_ = './cityscapes_detection.py'
data_root = 'data/cityscapes/'  # the same; needed below in expressions

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=[(2048, 800), (2048, 1024)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    # after Resize, so that boxes and masks stay in original-image pixels for the metric
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = [
    dict(
        type='CocoMetric',
        ann_file=data_root + 'annotations/instancesonly_filtered_gtFine_val.json',
        metric=['bbox', 'segm'],
        backend_args={{_base_.backend_args}}),
    dict(
        type='CityScapesMetric',
        seg_prefix=data_root + 'gtFine/val',
        outfile_prefix='./work_dirs/cityscapes_metric/instance',
        backend_args={{_base_.backend_args}})
]
test_evaluator = val_evaluator
