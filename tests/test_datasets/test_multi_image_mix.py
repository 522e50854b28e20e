"""MultiImageMixDataset, and MMDetection's YOLOX-s and RTMDet-Ins-tiny training dataloaders
(config text copied from MMDetection 3.3) built in mmft on a tiny COCO tree."""
import random

import numpy as np
import pytest
import torch
from mmengine import DefaultScope
from mmengine.dataset import Compose
from mmengine.runner import Runner

from mmft.datasets import MultiImageMixDataset
from mmft.registry import DATASETS
from mmft.structures.masks import PolygonMasks

from tests.test_datasets.dataset_trees import rect_polygon, write_coco, write_image


def _tiny_coco(root, n_images=6, with_empty=True):
    """``n_images`` 64x96 PNGs with two rectangles each (polygon masks), one without any."""
    images, anns = [], []
    for i in range(n_images):
        write_image(root / 'img' / f'{i}.png', 64, 96, seed=i)
        images.append((i + 1, f'{i}.png', 64, 96))
        if with_empty and i == n_images - 1:
            continue
        for k, (x1, y1, w, h) in enumerate([(4 + i, 6, 30, 20), (50, 30 - i, 40, 30)]):
            anns.append(dict(image_id=i + 1, category_id=k + 1, bbox=[x1, y1, w, h],
                             area=float(w * h),
                             segmentation=rect_polygon(x1, y1, x1 + w, y1 + h)))
    return write_coco(root / 'ann.json', images, anns, [(1, 'a'), (2, 'b')])


def _coco(tmp_path, **kwargs):
    return dict(type='CocoDataset', ann_file=_tiny_coco(tmp_path),
                data_prefix=dict(img=str(tmp_path / 'img') + '/'),
                metainfo=dict(classes=('a', 'b')),
                pipeline=[dict(type='LoadImageFromFile'),
                          dict(type='LoadAnnotations', with_bbox=True, **kwargs)])


def test_mosaic_affine_mixup_through_the_wrapper(tmp_path):
    random.seed(0)
    ds = MultiImageMixDataset(
        _coco(tmp_path, with_mask=True, poly2mask=False),
        [dict(type='Mosaic', img_scale=(64, 64)),
         dict(type='RandomAffine', border=(-32, -32)),
         dict(type='MixUp', img_scale=(64, 64))])
    assert DATASETS.get('MultiImageMixDataset') is MultiImageMixDataset
    assert len(ds) == 6 and ds.metainfo['classes'] == ('a', 'b')
    sizes = []
    for i in range(len(ds)):
        out = ds[i]
        assert out['img'].shape == (64, 64, 3) and 'mix_results' not in out
        boxes = out['gt_bboxes']
        assert (boxes >= 0).all() and (boxes <= 64).all()
        assert isinstance(out['gt_masks'], PolygonMasks)
        assert len(out['gt_masks']) == len(boxes) == len(out['gt_bboxes_labels'])
        sizes.append(len(boxes))
    assert max(sizes) > 2  # partners' instances arrive


def test_skip_type_keys_and_update(tmp_path):
    ds = MultiImageMixDataset(_coco(tmp_path), [dict(type='Mosaic', img_scale=(32, 32))],
                              skip_type_keys=['Mosaic'])
    assert ds[0]['img'].shape == (64, 96, 3)  # skipped
    ds.update_skip_type_keys([])
    assert ds[0]['img'].shape == (64, 64, 3)
    ds.update_skip_type_keys(['Mosaic'])
    assert ds[0]['img'].shape == (64, 96, 3)
    with pytest.raises(TypeError, match='skip_type_keys'):
        ds.update_skip_type_keys('Mosaic')


def test_pipeline_replaced_by_a_compose_still_runs(tmp_path):
    ds = MultiImageMixDataset(_coco(tmp_path), [dict(type='Mosaic', img_scale=(32, 32))])
    with DefaultScope.overwrite_default_scope('mmft'):
        ds.pipeline = Compose([dict(type='Resize', scale=(48, 40))])  # PipelineSwitchHook
    assert ds[0]['img'].shape == (40, 48, 3)


def test_partners_come_from_get_indexes_and_retries_are_bounded(tmp_path):
    seen = []

    class Pick:
        def get_indexes(self, dataset):
            seen.append(type(dataset).__name__)
            return 2

        def __call__(self, results):
            results['partner'] = results['mix_results'][0]['img_id']
            return results

    ds = MultiImageMixDataset(_coco(tmp_path), [Pick()])
    assert ds[0]['partner'] == 3 and seen == ['CocoDataset']
    never = MultiImageMixDataset(_coco(tmp_path), [lambda r: None], max_refetch=3)
    with pytest.raises(RuntimeError, match='returned None 3 times'):
        never[0]
    with pytest.raises(ValueError, match='dynamic_scale'):
        MultiImageMixDataset(_coco(tmp_path), [], dynamic_scale=(640, 640))
    with pytest.raises(TypeError, match='pipeline'):
        MultiImageMixDataset(_coco(tmp_path), dict(type='Mosaic'))


def _loader(cfg):
    with DefaultScope.overwrite_default_scope('mmft'):
        loader = Runner.build_dataloader(cfg, seed=0)
        return [batch for _, batch in zip(range(2), loader)]


def test_yolox_s_train_dataloader_yields_batches(tmp_path):
    # MMDetection 3.3 yolox_s_8xb8-300e_coco.py, verbatim but for data_root/ann_file, the
    # batch size and the workers (the test's)
    img_scale = (640, 640)  # width, height
    backend_args = None
    train_pipeline = [
        dict(type='Mosaic', img_scale=img_scale, pad_val=114.0),
        dict(
            type='RandomAffine',
            scaling_ratio_range=(0.1, 2),
            # img_scale is (width, height)
            border=(-img_scale[0] // 2, -img_scale[1] // 2)),
        dict(
            type='MixUp',
            img_scale=img_scale,
            ratio_range=(0.8, 1.6),
            pad_val=114.0),
        dict(type='YOLOXHSVRandomAug'),
        dict(type='RandomFlip', prob=0.5),
        dict(type='Resize', scale=img_scale, keep_ratio=True),
        dict(
            type='Pad',
            pad_to_square=True,
            pad_val=dict(img=(114.0, 114.0, 114.0))),
        dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
        dict(type='PackDetInputs')
    ]
    train_dataset = dict(
        type='MultiImageMixDataset',
        dataset=dict(
            type='CocoDataset',
            data_root=str(tmp_path),
            ann_file=_tiny_coco(tmp_path),
            data_prefix=dict(img='img/'),
            metainfo=dict(classes=('a', 'b')),
            pipeline=[
                dict(type='LoadImageFromFile', backend_args=backend_args),
                dict(type='LoadAnnotations', with_bbox=True)
            ],
            filter_cfg=dict(filter_empty_gt=False, min_size=32),
            backend_args=backend_args),
        pipeline=train_pipeline)
    train_dataloader = dict(
        batch_size=8,
        num_workers=4,
        persistent_workers=True,
        sampler=dict(type='DefaultSampler', shuffle=True),
        dataset=train_dataset)
    train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
    random.seed(0)
    np.random.seed(0)
    batches = _loader(train_dataloader)
    assert len(batches) == 2
    for batch in batches:
        assert [tuple(x.shape) for x in batch['inputs']] == [(3, 640, 640)] * 2
        for sample in batch['data_samples']:
            boxes = sample.gt_instances.bboxes
            assert len(boxes) > 0 and (boxes >= 0).all() and (boxes <= 640).all()


def test_rtmdet_ins_tiny_train_dataloader_yields_batches_with_masks(tmp_path):
    # MMDetection 3.3 rtmdet-ins_tiny_8xb32-300e_coco.py's train_pipeline and its base's
    # (rtmdet_l) train_dataloader, verbatim but for the data and the batch / workers
    backend_args = None
    train_pipeline = [
        dict(type='LoadImageFromFile', backend_args=backend_args),
        dict(
            type='LoadAnnotations',
            with_bbox=True,
            with_mask=True,
            poly2mask=False),
        dict(
            type='CachedMosaic',
            img_scale=(640, 640),
            pad_val=114.0,
            max_cached_images=20,
            random_pop=False),
        dict(
            type='RandomResize',
            scale=(1280, 1280),
            ratio_range=(0.5, 2.0),
            keep_ratio=True),
        dict(type='RandomCrop', crop_size=(640, 640)),
        dict(type='YOLOXHSVRandomAug'),
        dict(type='RandomFlip', prob=0.5),
        dict(type='Pad', size=(640, 640), pad_val=dict(img=(114, 114, 114))),
        dict(
            type='CachedMixUp',
            img_scale=(640, 640),
            ratio_range=(1.0, 1.0),
            max_cached_images=10,
            random_pop=False,
            pad_val=(114, 114, 114),
            prob=0.5),
        dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1)),
        dict(type='PackDetInputs')
    ]
    train_dataloader = dict(
        batch_size=32,
        num_workers=10,
        persistent_workers=True,
        sampler=dict(type='DefaultSampler', shuffle=True),
        batch_sampler=None,
        pin_memory=True,
        dataset=dict(
            type='CocoDataset',
            data_root=str(tmp_path),
            ann_file=_tiny_coco(tmp_path, n_images=9),  # 8 with objects
            data_prefix=dict(img='img/'),
            metainfo=dict(classes=('a', 'b')),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=train_pipeline,
            backend_args=backend_args))
    train_dataloader.update(batch_size=4, num_workers=0, persistent_workers=False,
                            pin_memory=False)
    random.seed(1)
    np.random.seed(1)
    batches = _loader(train_dataloader)
    mosaics = 0
    for batch in batches:
        assert [tuple(x.shape) for x in batch['inputs']] == [(3, 640, 640)] * 4
        for sample in batch['data_samples']:
            inst = sample.gt_instances
            masks = inst.masks
            assert isinstance(masks, PolygonMasks) and len(masks) == len(inst.bboxes)
            assert (masks.height, masks.width) == (640, 640)
            mask_boxes = masks.get_bboxes()
            # each mask follows its box (rectangles: the mask's box is the box)
            assert torch.allclose(mask_boxes, inst.bboxes, atol=2.0)
            mosaics += len(inst.bboxes) > 2
    assert mosaics > 0  # the cache filled and mosaics came out


def test_copy_paste_gets_its_source_from_the_wrapper(tmp_path):
    np.random.seed(0)  # CopyPaste draws with numpy
    ds = MultiImageMixDataset(_coco(tmp_path, with_mask=True),
                              [dict(type='CopyPaste', max_num_pasted=10)])
    changed = 0
    for i in list(range(5)) * 2:
        out, plain = ds[i], ds.dataset[i]
        assert len(out['gt_masks']) == len(out['gt_bboxes']) == len(out['gt_bboxes_labels'])
        # the objects sit a pixel apart from image to image: pasted ones cover the originals
        changed += not np.array_equal(out['gt_bboxes'], plain['gt_bboxes'])
    assert changed > 0
