"""Tiny real training runs for tests: generated shapes data and a narrow Mask R-CNN.

Imported by tests as ``tests.tiny_runs`` (the repo root is on sys.path, see conftest.py).
A run of a few iterations on 64 px images takes a second or two on a CPU core.
"""
import os.path as osp
from typing import Dict, Optional, Sequence

from mmengine.config import Config, ConfigDict

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


def evaluate_on_train(cfg: Config, data_root: str, classes: Sequence[str],
                      with_mask: bool = False) -> Config:
    """Validate ``cfg`` once, at its last iteration, on its own training images.

    A short run's test checks that the model learns, not that it generalises: CocoMetric
    (bbox, and segm ``with_mask``) over ``train.json``, batch 4, images unchanged.
    """
    load = [dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=with_mask)]
    pipeline = load + [dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                             'img_shape', 'scale_factor'))]
    cfg.val_dataloader = dict(
        batch_size=4, num_workers=0, drop_last=False,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(_dataset(data_root, 'train', classes, pipeline), test_mode=True))
    cfg.val_evaluator = dict(type='CocoMetric', ann_file=osp.join(data_root, 'train.json'),
                             metric=['bbox', 'segm'] if with_mask else 'bbox')
    cfg.val_cfg = dict(type='ValLoop')
    cfg.train_cfg.val_interval = cfg.train_cfg.max_iters
    return cfg


def short_run_config(data_root: str, work_dir: str, model: dict, max_iters: int,
                     optim_wrapper: dict, transforms: Sequence[dict] = (),
                     classes: Sequence[str] = SOURCE_CLASSES, with_mask: bool = False,
                     batch_size: int = 4) -> Config:
    """A short run of ``model`` that learns on the shapes data and is evaluated at its end.

    The training pipeline loads the annotations, applies ``transforms`` and packs; the
    learning rate warms up over 10 iterations and stays; validation is
    :func:`evaluate_on_train`.
    """
    cfg = tiny_config(data_root, work_dir, classes, max_iters=max_iters, batch_size=batch_size)
    cfg.model = ConfigDict(model)
    cfg.optim_wrapper = ConfigDict(optim_wrapper)  # replaced, not merged into the SGD
    cfg.train_dataloader.dataset.pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=with_mask),
        *transforms, dict(type='PackDetInputs')]
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                                end=10)]
    return evaluate_on_train(cfg, data_root, classes, with_mask)


__all__ = ['make_shapes_data', 'tiny_config', 'evaluate_on_train', 'short_run_config',
           'SOURCE_CLASSES', 'TARGET_CLASSES', 'REPO_ROOT']
