"""NOT COLLECTED (no ``test_`` prefix): the full-config YOLOX test to add after the
``mixaug`` branch (Mosaic, RandomAffine, MixUp, MultiImageMixDataset) is merged.

To enable: append the function below to tests/test_configs/test_mmdet_yolox_configs.py
(it uses that module's ``config_dir``, ``images`` and ``load``; add the ``json``,
``SimpleNamespace`` and ``DATASETS`` imports) and delete this file.

It builds yolox_s's (and yolox_tiny's) whole train dataset as the config writes it
(MultiImageMixDataset over a CocoDataset, its pipeline with Mosaic / RandomAffine / MixUp /
YOLOXHSVRandomAug / RandomFlip / Resize / Pad / FilterAnnotations), draws samples, checks
the boxes stay inside the 640x640 output, then lets YOLOXModeSwitchHook switch the mixing
transforms off and checks the next samples no longer mix (2 gt boxes per image, as the
source annotation) and that the head's L1 loss is on.
"""
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from mmengine.registry import DefaultScope

from mmft.registry import DATASETS, HOOKS, MODELS
from tests.test_configs.test_mmdet_yolox_configs import config_dir, images, load  # noqa: F401


# --- paste from here (add the json / SimpleNamespace / DATASETS imports above it) --------


@pytest.mark.parametrize('rel', ['yolox/yolox_s_8xb8-300e_coco.py',
                                 'yolox/yolox_tiny_8xb8-300e_coco.py'])
def test_full_train_dataset_builds_and_the_mode_switch_turns_mixing_off(config_dir, images,
                                                                        tmp_path, rel):
    np.random.seed(0)
    root = tmp_path / 'coco'
    (root / 'annotations').mkdir(parents=True)
    (root / 'train2017').mkdir()
    anns, imgs = [], []
    for i, path in enumerate(images):
        shutil.copy(path, root / 'train2017' / f'{i}.png')
        imgs.append(dict(id=i, file_name=f'{i}.png', height=96, width=128))
        for j, box in enumerate(([20, 16, 51, 65], [80, 40, 40, 50])):
            anns.append(dict(id=10 * i + j, image_id=i, category_id=1 + j, bbox=box,
                             area=box[2] * box[3], iscrowd=0))
    cats = [dict(id=k, name=f'c{k}') for k in range(1, 81)]
    (root / 'annotations/instances_train2017.json').write_text(
        json.dumps(dict(images=imgs, annotations=anns, categories=cats)))
    cfg = load(config_dir, rel)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.dataset.data_root = str(root) + '/'
    with DefaultScope.overwrite_default_scope('mmft'):
        dataset = DATASETS.build(dataset_cfg)
        model = MODELS.build(cfg.model)
        switch = HOOKS.build(dict(type='YOLOXModeSwitchHook', num_last_epochs=15))
    assert type(dataset).__name__ == 'MultiImageMixDataset'
    for i in range(4):
        sample = dataset[i % len(dataset)]
        assert tuple(sample['inputs'].shape) == (3, 640, 640)
        boxes = sample['data_samples'].gt_instances.bboxes
        assert (boxes >= 0).all() and (boxes <= 640).all()
    loader = SimpleNamespace(dataset=dataset, persistent_workers=False)
    runner = SimpleNamespace(epoch=285, max_epochs=300, model=model, train_dataloader=loader,
                             logger=SimpleNamespace(info=lambda m: None))
    switch.before_train_epoch(runner)
    assert model.bbox_head.use_l1
    for i in range(len(dataset)):
        sample = dataset[i]
        # no mosaic / mixup any more: the image's own two boxes, resized to 640
        assert len(sample['data_samples'].gt_instances) == 2
        assert tuple(sample['inputs'].shape) == (3, 640, 640)
