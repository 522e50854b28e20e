"""CocoWriter and the mask -> COCO helpers shared by the converters and the generator."""
import json

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mmft.datasets.coco_writer import (CocoWriter, bbox_from_mask, mask_to_polygons,
                                       mask_to_rle, mask_to_segmentation, polygon_area)


def _decode(polygons, h, w):
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, h, w)))


def test_bbox_from_mask_fixed_numbers():
    mask = np.zeros((10, 12), np.uint8)
    mask[2:5, 3:9] = 1
    mask[7, 1] = 1
    assert bbox_from_mask(mask) == [1.0, 2.0, 8.0, 6.0]
    with pytest.raises(ValueError, match='empty'):
        bbox_from_mask(np.zeros((4, 4), np.uint8))


@pytest.mark.parametrize('seed', range(4))
def test_polygons_rasterise_back_to_the_same_pixels(seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((48, 40), np.uint8)
    cv2.fillPoly(mask, [cv2.convexHull(rng.integers(0, 40, (5, 2)).astype(np.int32))], 1)
    cv2.circle(mask, (35, 42), int(rng.integers(1, 5)), 1, -1)  # a second part
    mask[0, 0] = 1  # a single pixel part
    polygons = mask_to_polygons(mask)
    assert polygons is not None and len(polygons) >= 2
    assert all(len(p) >= 6 and len(p) % 2 == 0 for p in polygons)
    np.testing.assert_array_equal(_decode(polygons, 48, 40), mask)
    assert polygon_area(polygons, 48, 40) == mask.sum()


def test_holes_fall_back_to_rle():
    mask = np.zeros((20, 20), np.uint8)
    mask[2:18, 2:18] = 1
    mask[8:12, 8:12] = 0
    assert mask_to_polygons(mask) is None
    seg = mask_to_segmentation(mask)
    assert isinstance(seg, dict) and isinstance(seg['counts'], str)
    assert seg == mask_to_rle(mask)
    np.testing.assert_array_equal(mask_utils.decode({**seg, 'counts': seg['counts'].encode()}),
                                  mask)


def test_writer_ids_json_and_summary(tmp_path):
    writer = CocoWriter(['cat', 'dog'])
    img = writer.add_image('a.jpg', 10, 20)
    writer.add_annotation(img, 'dog', [1, 2, 3, 4], 12, iscrowd=1)
    writer.add_annotation(img, 'dog', [0, 0, 2, 2], 4, segmentation=[[0, 0, 2, 0, 2, 2]])
    writer.skip('b.jpg', 'missing image')
    with pytest.raises(KeyError, match='bird'):
        writer.add_annotation(img, 'bird', [0, 0, 1, 1], 1)
    path = writer.dump(str(tmp_path / 'sub' / 'out.json'))
    coco = COCO(path)
    assert coco.imgs[1]['file_name'] == 'a.jpg'
    assert sorted(coco.anns) == [1, 2]
    assert coco.anns[1]['category_id'] == 2 and coco.anns[1]['iscrowd'] == 1
    assert [c['name'] for c in coco.loadCats([1, 2])] == ['cat', 'dog']
    text = open(path).read()
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(',', ':'))
    assert writer.instances_per_class() == {'cat': 0, 'dog': 2}
    summary = writer.summary('t')
    assert 't: 1 images, 2 instances, 1 skipped items' in summary
    assert 'b.jpg: missing image' in summary


def test_writer_rejects_bad_class_lists():
    with pytest.raises(ValueError, match="duplicate class names \\['a'\\]"):
        CocoWriter(['a', 'b', 'a'])
    with pytest.raises(ValueError, match='category_ids'):
        CocoWriter(['a', 'b'], category_ids=[1])
    assert [c['id'] for c in CocoWriter(['a', 'b'], category_ids=[24, 26]).categories] == [24, 26]
