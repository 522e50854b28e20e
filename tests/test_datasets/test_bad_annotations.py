"""Annotations that used to pass silently or crash late (issue 16): each one is refused with
the file named, or dropped and counted with its annotation id; no undefined value reaches a
mask."""
import json
import os.path as osp

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mmft.datasets import CocoDataset
from mmft.datasets.base_det_dataset import (MASK_INVALID, ORPHAN_ANNOTATION,
                                            POLYGON_NOT_FINITE, RLE_INVALID)
from mmft.datasets.transforms import LoadAnnotations
from tests.test_datasets.dataset_trees import rect_polygon, write_coco, write_image

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_mask=True),
            dict(type='PackDetInputs', meta_keys=('img_id', 'img_path'))]
H = W = 32


def _good_rle() -> dict:
    mask = np.zeros((H, W), np.uint8)
    mask[4:12, 6:20] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    return dict(size=[H, W], counts=rle['counts'].decode())


@pytest.fixture
def tree(tmp_path):
    write_image(tmp_path / 'img' / 'a.png', H, W)
    anns = [
        dict(id=1, image_id=1, category_id=1, bbox=[2, 2, 8, 8],
             segmentation=rect_polygon(2, 2, 10, 10)),
        # RLE counts summing to 3 pixels of 1024: pycocotools leaves the rest undefined
        dict(id=2, image_id=1, category_id=1, bbox=[4, 4, 8, 8], iscrowd=1,
             segmentation=dict(size=[H, W], counts=[1, 2])),
        dict(id=3, image_id=1, category_id=1, bbox=[4, 4, 8, 8], iscrowd=1,
             segmentation=dict(size=[H, W], counts='#garbage!')),
        dict(id=4, image_id=1, category_id=1, bbox=[4, 4, 8, 8],
             segmentation=[[4, 4, float('nan'), 4, 10, 10, 4, 10]]),
        dict(id=5, image_id=1, category_id=1, bbox=[6, 4, 14, 8], iscrowd=1,
             segmentation=_good_rle()),
        dict(id=6, image_id=7, category_id=1, bbox=[1, 1, 4, 4]),  # no image 7
        dict(id=8, image_id=None, category_id=1, bbox=[1, 1, 4, 4]),
    ]
    write_coco(tmp_path / 'ann.json', [(1, 'a.png', H, W)], anns, [(1, 'thing')])
    return tmp_path


def _build(root, ann_file='ann.json', **kwargs):
    return CocoDataset(data_root=str(root), ann_file=ann_file, data_prefix=dict(img='img/'),
                       metainfo=dict(classes=('thing', )), pipeline=PIPELINE, **kwargs)


def test_bad_masks_and_orphans_are_dropped_and_counted_with_their_ids(tree, log_messages):
    dataset = _build(tree)
    assert dataset.skipped[RLE_INVALID] == 2 and dataset.skipped_ids[RLE_INVALID] == [2, 3]
    assert dataset.skipped[POLYGON_NOT_FINITE] == 1
    assert dataset.skipped_ids[POLYGON_NOT_FINITE] == [4]
    assert dataset.skipped_ids[MASK_INVALID] == [2, 3, 4]
    assert dataset.skipped[ORPHAN_ANNOTATION] == 2
    assert dataset.skipped_ids[ORPHAN_ANNOTATION] == [6, 8]
    ann_file = osp.join(str(tree), 'ann.json')
    assert f'CocoDataset {ann_file}: 2 {RLE_INVALID} (annotation ids 2, 3)' in log_messages
    assert f'CocoDataset {ann_file}: 2 {ORPHAN_ANNOTATION} (annotation ids 6, 8)' in \
        log_messages

    instances = dataset.get_data_info(0)['instances']
    assert [('mask' in i) for i in instances] == [True, False, False, False, True]
    first = dataset[0]['data_samples']
    # instances without a usable mask are ignored (not positives with empty masks)
    assert len(first.gt_instances) == 1 and len(first.ignored_instances) == 4
    masks = first.ignored_instances.masks.masks
    assert masks.max() <= 1 and masks[:3].sum() == 0  # nothing undefined, nothing invented
    assert masks[3].sum() == 8 * 14  # the good RLE decodes as written
    again = dataset[0]['data_samples'].ignored_instances.masks.masks
    assert np.array_equal(masks, again)


def test_load_annotations_refuses_an_rle_it_would_decode_into_garbage(log_messages):
    results = dict(img_path='x.png', ori_shape=(H, W), instances=[
        dict(bbox=[0, 0, 4, 4], bbox_label=0, ignore_flag=0,
             mask=dict(size=[H, W], counts=[5, 5])),
        dict(bbox=[0, 0, 4, 4], bbox_label=0, ignore_flag=0,
             mask=[[1, 1, float('inf'), 1, 5, 5]])])
    out = LoadAnnotations(with_mask=True)(results)
    assert out['gt_masks'].masks.sum() == 0
    assert out['gt_ignore_flags'].tolist() == [True, True]
    assert any('RLE mask of x.png is unusable (its run lengths cover 10 pixels, not 32 x 32)'
               in m for m in log_messages)


def test_a_repeated_image_id_is_refused_with_both_file_names(tmp_path):
    write_coco(tmp_path / 'ann.json', [(1, 'a.png', H, W), (1, 'b.png', H, W)],
               [dict(image_id=1, category_id=1, bbox=[1, 1, 4, 4])], [(1, 'thing')])
    with pytest.raises(ValueError, match=r"ann.json are not unique: 1 repeated, e.g. "
                       r"\{1: \['a.png', 'b.png'\]\}"):
        CocoDataset(ann_file=str(tmp_path / 'ann.json'), metainfo=dict(classes=('thing', )))


@pytest.mark.parametrize('edit, message', [
    (lambda d: d['images'][0].pop('file_name'), r"ann.json: images\[0\] has no \['file_name'\]"),
    (lambda d: d['images'][0].pop('id'), r"images\[0\] has no \['id'\]"),
    (lambda d: d['categories'][0].pop('name'), r"categories\[0\] has no \['name'\]"),
    (lambda d: d.update(annotations=7), '"annotations" in .*ann.json must be a list'),
])
def test_missing_json_keys_name_the_file_and_the_entry(tmp_path, edit, message):
    path = write_coco(tmp_path / 'ann.json', [(1, 'a.png', H, W)], [], [(1, 'thing')])
    with open(path) as f:
        content = json.load(f)
    edit(content)
    with open(path, 'w') as f:
        json.dump(content, f)
    with pytest.raises(ValueError, match=message):
        CocoDataset(ann_file=path, metainfo=dict(classes=('thing', )))


def test_truncated_json_names_the_file(tmp_path):
    path = write_coco(tmp_path / 'ann.json', [(1, 'a.png', H, W)], [], [(1, 'thing')])
    with open(path) as f:
        text = f.read()
    with open(path, 'w') as f:
        f.write(text[:len(text) // 2])
    with pytest.raises(ValueError, match=r'ann.json is not valid JSON \(.*\); a file cut short'):
        CocoDataset(ann_file=path, metainfo=dict(classes=('thing', )))


def test_an_empty_dataset_says_why_instead_of_failing_to_concatenate(tree, log_messages):
    with open(tree / 'ann.json') as f:
        content = json.load(f)
    content.pop('annotations')
    with open(tree / 'none.json', 'w') as f:
        json.dump(content, f)
    with pytest.raises(ValueError, match=r'no image left to train on from .*none.json: 1 '
                       r'usable images, 1 of them without usable annotations, and '
                       r"filter_cfg=\{'filter_empty_gt': True\} drops those"):
        _build(tree, 'none.json', filter_cfg=dict(filter_empty_gt=True))
    assert any('none.json has no "annotations" list' in m for m in log_messages)
    content['images'] = []
    with open(tree / 'empty.json', 'w') as f:
        json.dump(content, f)
    for kwargs in (dict(test_mode=True), dict(), dict(filter_cfg=dict(filter_empty_gt=True))):
        with pytest.raises(ValueError, match='empty.json lists no usable image'):
            _build(tree, 'empty.json', **kwargs)
