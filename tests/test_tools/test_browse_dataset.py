"""browse_dataset draws the ground truth on the train pipeline's output, one file per image."""
import os

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from mmft.registry import DATASETS
from tools.analysis_tools import browse_dataset

SIZE, RESIZED = 64, 96


def _config(tmp_path) -> str:
    from mmft.datasets.synthetic import SOURCE_CLASSES, generate_shapes_dataset
    generate_shapes_dataset(str(tmp_path / 'data'), num_images=3, image_size=SIZE,
                            max_objects=1, progress=False)
    cfg = Config(dict(
        default_scope='mmft',
        train_dataloader=dict(batch_size=1, dataset=dict(
            type='CocoDataset', data_root=str(tmp_path / 'data'), ann_file='train.json',
            data_prefix=dict(img='train/'), metainfo=dict(classes=tuple(SOURCE_CLASSES)),
            pipeline=[dict(type='LoadImageFromFile'),
                      dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                      dict(type='Resize', scale=(RESIZED, RESIZED), keep_ratio=True),
                      dict(type='RandomFlip', prob=0.0),
                      dict(type='PackDetInputs')])),
        visualizer=dict(type='DetLocalVisualizer', name='visualizer',
                        vis_backends=[dict(type='LocalVisBackend')])))
    path = str(tmp_path / 'browse.py')
    cfg.dump(path)
    return path


def test_one_drawing_per_image_on_the_transformed_image(tmp_path):
    config = _config(tmp_path)
    out_dir = tmp_path / 'browse'
    browse_dataset.main([config, '--output-dir', str(out_dir), '--not-show'])
    assert sorted(os.listdir(out_dir)) == ['000000.png', '000001.png', '000002.png']

    dataset = DATASETS.build(Config.fromfile(config).train_dataloader.dataset)
    for item in dataset:
        name = os.path.basename(item['data_samples'].img_path)
        seen = item['inputs'].permute(1, 2, 0).numpy()            # BGR, as cv2 reads PNGs
        drawn = cv2.imread(str(out_dir / name))
        assert drawn.shape == seen.shape == (RESIZED, RESIZED, 3)
        changed = np.abs(drawn.astype(int) - seen.astype(int)).sum(-1) > 0
        x1, y1, x2, y2 = item['data_samples'].gt_instances.bboxes[0].round().int().tolist()
        assert changed[max(y1 - 2, 0):y2 + 3, max(x1 - 2, 0):x2 + 3].any()
        near = np.zeros_like(changed)   # the box, its outline and its label
        near[max(y1 - 4, 0):y2 + 5, max(x1 - 4, 0):x2 + 5] = True
        near[max(y1 - 4, 0):y1 + 20, max(x1 - 4, 0):x1 + 80] = True
        assert not changed[~near].any()


def test_not_show_needs_an_output_dir(tmp_path):
    with pytest.raises(SystemExit, match='add --output-dir'):
        browse_dataset.main([str(tmp_path / 'any.py'), '--not-show'])
