"""Tiny real training runs for tests: generated shapes data and a narrow Mask R-CNN.

Imported by tests as ``tests.tiny_runs`` (the repo root is on sys.path, see conftest.py).
A run of a few iterations on 64 px images takes a second or two on a CPU core.
"""
import os.path as osp
from typing import Dict, Optional, Sequence

from mmengine.config import Config

from mmft.datasets.synthetic import SOURCE_CLASSES, TARGET_CLASSES, generate_shapes_dataset

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
IMAGE_SIZE = 64


def make_shapes_data(root: str, num_train: int = 8, num_val: int = 4) -> Dict[str, str]:
    """Source and target domains under ``root``: ``{'source': dir, 'target': dir}``."""
    out = {}
    for domain, classes in (('source', SOURCE_CLASSES), ('target', TARGET_CLASSES)):
        folder = osp.join(root, domain)
        for split, num in (('train', num_train), ('val', num_val)):
            generate_shapes_dataset(folder, classes=classes, num_images=num,
                                    image_size=IMAGE_SIZE, seed=0, domain=domain,
                                    split_name=split, progress=False)
        out[domain] = folder
    return out


def _dataset(data_root: str, split: str, classes: Sequence[str], pipeline: list) -> dict:
    return dict(type='CocoDataset', data_root=data_root + '/', ann_file=f'{split}.json',
                data_prefix=dict(img=f'{split}/'), metainfo=dict(classes=tuple(classes)),
                test_mode=split == 'val', pipeline=pipeline)


def tiny_config(data_root: str, work_dir: str, classes: Sequence[str] = SOURCE_CLASSES,
                max_iters: int = 4, checkpoint_interval: Optional[int] = None,
                batch_size: int = 2, **overrides) -> Config:
    """A complete training config: small Mask R-CNN, IterBasedTrainLoop, no validation.

    ``overrides`` are merged last (e.g. ``finetune=dict(...)``, ``load_from=...``).
    """
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/_base_/models/mask_rcnn_r18_fpn_small.py'))
    runtime = Config.fromfile(osp.join(REPO_ROOT, 'configs/_base_/default_runtime.py'))
    cfg.merge_from_dict(runtime.to_dict())
    train_pipeline = [dict(type='LoadImageFromFile'),
                      dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                      dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                            'img_shape', 'scale_factor'))]
    width = 16  # narrower than the demo model: these runs test plumbing, not accuracy
    cfg.merge_from_dict(dict(
        model=dict(
            neck=dict(out_channels=width),
            rpn_head=dict(in_channels=width, feat_channels=width),
            roi_head=dict(bbox_roi_extractor=dict(out_channels=width),
                          bbox_head=dict(in_channels=width, fc_out_channels=32,
                                         num_classes='auto'),
                          mask_roi_extractor=dict(out_channels=width),
                          mask_head=dict(in_channels=width, conv_out_channels=width,
                                         num_classes='auto'))),
        work_dir=work_dir,
        train_dataloader=dict(
            batch_size=batch_size, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            dataset=_dataset(data_root, 'train', classes, train_pipeline)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10 ** 6),
        optim_wrapper=dict(type='OptimWrapper',
                           optimizer=dict(type='SGD', lr=0.01, momentum=0.9,
                                          weight_decay=0.0001)),
        param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                              end=max_iters)],
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=checkpoint_interval or max_iters),
            visualization=dict(type='DetVisualizationHook', draw=False)),
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=0),
        log_level='WARNING',
    ))
    cfg.merge_from_dict(overrides)
    return cfg


__all__ = ['make_shapes_data', 'tiny_config', 'SOURCE_CLASSES', 'TARGET_CLASSES', 'REPO_ROOT']
