"""CocoDataset: reading the synthetic shapes tree and hand-written json, class selection by
name, crowd -> ignored, filter_cfg."""
import json
import os.path as osp

import numpy as np
import pytest
import torch

from mmft.datasets import CocoDataset
from mmft.datasets.base_det_dataset import OTHER_CLASS
from mmft.datasets.coco import COCO_CLASSES
from mmft.datasets.synthetic import SOURCE_CLASSES, generate_shapes_dataset
from mmft.registry import DATASETS

from tests.test_datasets.dataset_trees import rect_polygon, write_coco, write_image

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_mask=True),
            dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape'))]


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    generate_shapes_dataset(str(root), num_images=4, image_size=64, progress=False)
    return str(root)


def test_reads_the_synthetic_tree_like_its_json(shapes):
    dataset = DATASETS.build(dict(
        type='CocoDataset', data_root=shapes, ann_file='train.json',
        data_prefix=dict(img='train/'), metainfo=dict(classes=SOURCE_CLASSES),
        pipeline=PIPELINE))
    raw = json.load(open(osp.join(shapes, 'train.json')))
    assert len(dataset) == len(raw['images']) == 4
    assert dataset.metainfo['classes'] == SOURCE_CLASSES
    assert len(dataset.metainfo['palette']) == len(SOURCE_CLASSES)
    assert not dataset.skipped
    for idx in range(len(dataset)):
        info = dataset.get_data_info(idx)
        assert osp.isfile(info['img_path']) and (info['height'], info['width']) == (64, 64)
        anns = [a for a in raw['annotations'] if a['image_id'] == info['img_id']]
        assert len(info['instances']) == len(anns)
        for inst, ann in zip(info['instances'], anns):
            x, y, w, h = ann['bbox']
            assert inst['bbox'] == [x, y, x + w, y + h]
            assert SOURCE_CLASSES[inst['bbox_label']] == SOURCE_CLASSES[ann['category_id'] - 1]
            assert inst['ignore_flag'] == 0 and inst['mask'] == ann['segmentation']
        # the generator's boxes are tight around the visible mask: packed masks agree
        gt = dataset[idx]['data_samples'].gt_instances
        assert gt.bboxes.dtype == torch.float32 and gt.labels.dtype == torch.int64
        torch.testing.assert_close(gt.masks.get_bboxes(), gt.bboxes)


def test_classes_select_and_order_labels_by_name(tmp_path, log_messages):
    ann_file = write_coco(
        tmp_path / 'a.json', [(1, 'a.png', 32, 32)],
        [dict(image_id=1, category_id=5, bbox=[0, 0, 4, 4], segmentation=rect_polygon(0, 0, 4, 4)),
         dict(image_id=1, category_id=2, bbox=[8, 8, 4, 4]),
         dict(image_id=1, category_id=9, bbox=[16, 16, 4, 4])],
        [(9, 'bird'), (5, 'dog'), (2, 'cat')])
    dataset = CocoDataset(ann_file=ann_file, data_prefix=dict(img=str(tmp_path)),
                          metainfo=dict(classes=['cat', 'dog']))
    assert dataset.metainfo['classes'] == ('cat', 'dog')  # a list becomes a tuple
    assert dataset.cat_ids == [2, 5] and dataset.cat2label == {2: 0, 5: 1}
    instances = dataset.get_data_info(0)['instances']
    assert [i['bbox_label'] for i in instances] == [1, 0]
    assert 'mask' in instances[0] and 'mask' not in instances[1]  # no segmentation: boxes only
    assert dataset.skipped == {OTHER_CLASS: 1}
    assert sum(OTHER_CLASS in m for m in log_messages) == 1
    # a class of the base list keeps its colour
    palette = CocoDataset(ann_file=ann_file, data_prefix=dict(img=str(tmp_path)),
                          metainfo=dict(classes=('dog', 'bird'))).metainfo['palette']
    assert palette[0] == CocoDataset.METAINFO['palette'][COCO_CLASSES.index('dog')]


def test_classes_from_a_names_file(tmp_path):
    ann_file = write_coco(tmp_path / 'a.json', [(1, 'a.png', 32, 32)], [],
                           [(1, 'cat'), (2, 'dog')])
    names = tmp_path / 'classes.txt'
    names.write_text('dog\ncat\n')
    dataset = CocoDataset(ann_file=ann_file, metainfo=dict(classes=str(names)))
    assert dataset.metainfo['classes'] == ('dog', 'cat')


def test_default_classes_are_coco_80(tmp_path):
    ann_file = write_coco(tmp_path / 'a.json', [(1, 'a.png', 32, 32)], [],
                           list(enumerate(COCO_CLASSES, 1)))
    meta = CocoDataset(ann_file=ann_file).metainfo
    assert len(meta['classes']) == 80 and len(meta['palette']) == 80
    assert meta['classes'][0] == 'person' and meta['classes'][-1] == 'toothbrush'


def test_crowd_goes_to_ignored_instances(tmp_path):
    write_image(tmp_path / 'img' / 'a.png', 32, 48)
    rle = dict(size=[32, 48], counts=[0, 32 * 48])  # an uncompressed RLE covering everything
    ann_file = write_coco(
        tmp_path / 'a.json', [(7, 'a.png', 32, 48)],
        [dict(image_id=7, category_id=1, bbox=[1, 2, 10, 10]),
         dict(image_id=7, category_id=1, bbox=[0, 0, 48, 32], iscrowd=1, segmentation=rle)],
        [(1, 'thing')])
    dataset = CocoDataset(ann_file=ann_file, data_prefix=dict(img=str(tmp_path / 'img')),
                          metainfo=dict(classes=('thing', )),
                          pipeline=[dict(type='LoadImageFromFile'),
                                    dict(type='LoadAnnotations'),
                                    dict(type='PackDetInputs', meta_keys=('img_id', ))])
    assert [i['ignore_flag'] for i in dataset.get_data_info(0)['instances']] == [0, 1]
    sample = dataset[0]['data_samples']
    assert sample.img_id == 7
    assert sample.gt_instances.bboxes.tolist() == [[1, 2, 11, 12]]
    assert sample.ignored_instances.bboxes.tolist() == [[0, 0, 48, 32]]


def test_filter_cfg(tmp_path):
    ann_file = write_coco(
        tmp_path / 'a.json',
        [(1, 'full.png', 64, 64), (2, 'empty.png', 64, 64), (3, 'small.png', 20, 64),
         (4, 'crowd_only.png', 64, 64)],
        [dict(image_id=1, category_id=1, bbox=[0, 0, 8, 8]),
         dict(image_id=3, category_id=1, bbox=[0, 0, 8, 8]),
         dict(image_id=4, category_id=1, bbox=[0, 0, 8, 8], iscrowd=1)],
        [(1, 'thing')])
    kwargs = dict(ann_file=ann_file, metainfo=dict(classes=('thing', )))

    def names(**extra):
        dataset = CocoDataset(**kwargs, **extra)
        return [osp.basename(dataset.get_data_info(i)['img_path']) for i in range(len(dataset))]

    assert names() == ['full.png', 'empty.png', 'small.png', 'crowd_only.png']
    # an image with only crowd regions still has an instance (MMDetection's COCO rule)
    assert names(filter_cfg=dict(filter_empty_gt=True)) == ['full.png', 'small.png',
                                                            'crowd_only.png']
    assert names(filter_cfg=dict(filter_empty_gt=True, min_size=32)) == ['full.png',
                                                                         'crowd_only.png']
    assert names(filter_cfg=dict(min_size=32), test_mode=True) == names()


def test_get_cat_ids_and_boxes_only_json(tmp_path):
    ann_file = write_coco(
        tmp_path / 'a.json', [(1, 'a.png', 64, 64)],
        [dict(image_id=1, category_id=2, bbox=[0, 0, 8, 8], segmentation=[]),
         dict(image_id=1, category_id=1, bbox=[8, 8, 8, 8])],
        [(1, 'a'), (2, 'b')])
    dataset = CocoDataset(ann_file=ann_file, metainfo=dict(classes=('a', 'b')))
    assert dataset.get_cat_ids(0) == [1, 0]
    assert np.array([i['bbox'] for i in dataset.get_data_info(0)['instances']]).shape == (2, 4)
