"""LoadImageFromFile (cv2 / pillow, bad files -> None with a reason) and LoadAnnotations
(boxes, labels, ignore flags, polygon / RLE masks)."""
import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mmft.datasets.transforms import SKIP_REASON_KEY, LoadAnnotations, LoadImageFromFile
from mmft.datasets.transforms.loading import (IMAGE_MISSING, IMAGE_SIZE_MISMATCH,
                                              IMAGE_TRANSPOSED, IMAGE_UNREADABLE)
from mmft.structures.masks import BitmapMasks, PolygonMasks


@pytest.fixture
def png(tmp_path, image_writer):
    path = tmp_path / 'a.png'
    return str(path), image_writer(path, 24, 40)


def test_load_image_cv2_and_pillow_agree(png):
    path, pixels = png
    out = LoadImageFromFile()(dict(img_path=path, height=24, width=40))
    np.testing.assert_array_equal(out['img'], pixels)  # BGR, as written by cv2
    assert out['img'].dtype == np.uint8
    assert out['img_shape'] == out['ori_shape'] == (24, 40)
    pillow = LoadImageFromFile(imdecode_backend='pillow', to_float32=True)(dict(img_path=path))
    assert pillow['img'].dtype == np.float32
    np.testing.assert_array_equal(pillow['img'], pixels)
    gray = LoadImageFromFile(color_type='grayscale')(dict(img_path=path))
    assert gray['img'].shape == (24, 40)
    # the PNG decoder's own grey conversion rounds differently by at most 1
    np.testing.assert_allclose(gray['img'], cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY), atol=1)


def test_unusable_images_give_none_and_a_reason(tmp_path, png):
    corrupt = tmp_path / 'corrupt.jpg'
    corrupt.write_bytes(b'\xff\xd8\xff garbage')
    empty = tmp_path / 'empty.png'
    empty.write_bytes(b'')
    cases = [(dict(img_path=str(tmp_path / 'missing.png')), IMAGE_MISSING),
             (dict(img_path=str(corrupt)), IMAGE_UNREADABLE),
             (dict(img_path=str(empty)), IMAGE_UNREADABLE),
             (dict(img_path=png[0], height=24, width=41), IMAGE_SIZE_MISMATCH),
             (dict(img_path=png[0], height=40, width=24), IMAGE_TRANSPOSED)]
    for backend in ('cv2', 'pillow'):
        for results, reason in cases:
            results = dict(results)
            assert LoadImageFromFile(imdecode_backend=backend)(results) is None
            assert results[SKIP_REASON_KEY] == reason


def test_load_image_rejects_unknown_options():
    with pytest.raises(ValueError, match='turbojpeg'):
        LoadImageFromFile(imdecode_backend='turbojpeg')
    with pytest.raises(ValueError, match='color_type'):
        LoadImageFromFile(color_type='rgb')


def _instances():
    rle = mask_utils.encode(np.asfortranarray(np.pad(np.ones((4, 6), np.uint8),
                                                     ((10, 10), (20, 14)))))
    rle['counts'] = rle['counts'].decode()
    return [
        dict(bbox=[2, 3, 10, 9], bbox_label=1, ignore_flag=0,
             mask=[[2, 3, 10, 3, 10, 9, 2, 9]]),
        dict(bbox=[20, 10, 26, 14], bbox_label=0, ignore_flag=1, mask=rle),
        dict(bbox=[0, 0, 4, 4], bbox_label=2, ignore_flag=0,
             mask=dict(size=[24, 40], counts=[0, 24 * 40])),  # uncompressed RLE
    ]


def test_load_annotations_boxes_labels_bitmaps():
    out = LoadAnnotations(with_mask=True)(dict(instances=_instances(), ori_shape=(24, 40)))
    assert out['gt_bboxes'].dtype == np.float32 and out['gt_bboxes'].shape == (3, 4)
    assert out['gt_bboxes_labels'].tolist() == [1, 0, 2]
    assert out['gt_bboxes_labels'].dtype == np.int64
    assert out['gt_ignore_flags'].tolist() == [False, True, False]
    masks = out['gt_masks']
    assert isinstance(masks, BitmapMasks) and masks.masks.shape == (3, 24, 40)
    assert masks.areas.tolist() == [48, 24, 24 * 40]
    np.testing.assert_array_equal(masks.get_bboxes()[:2].numpy(), out['gt_bboxes'][:2])


def test_load_annotations_polygons_and_missing_masks(log_messages):
    instances = _instances()[:1] + [dict(bbox=[1, 1, 5, 5], bbox_label=0, ignore_flag=0)]
    out = LoadAnnotations(with_mask=True, poly2mask=False)(
        dict(instances=instances, height=24, width=40, img_path='x.png'))
    masks = out['gt_masks']
    assert isinstance(masks, PolygonMasks) and len(masks) == 2
    np.testing.assert_array_equal(masks.masks[0][0], [2, 3, 10, 3, 10, 9, 2, 9])
    # an instance without a mask gets an empty one and is ignored, with one warning
    assert masks.masks[1] == [] and out['gt_ignore_flags'].tolist() == [False, True]
    assert sum('has no mask' in m for m in log_messages) == 1
    with pytest.raises(ValueError, match='poly2mask=True'):
        LoadAnnotations(with_mask=True, poly2mask=False)(
            dict(instances=_instances(), height=24, width=40))


def test_load_annotations_empty_and_options():
    out = LoadAnnotations(with_mask=True)(dict(instances=[], height=8, width=8))
    assert out['gt_bboxes'].shape == (0, 4) and out['gt_bboxes_labels'].shape == (0, )
    assert len(out['gt_masks']) == 0
    assert 'gt_bboxes_labels' not in LoadAnnotations(with_label=False)(dict(instances=[]))
    with pytest.raises(ValueError, match='with_seg'):
        LoadAnnotations(with_seg=True)
