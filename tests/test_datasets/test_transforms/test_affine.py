"""RandomAffine and the warp helpers: boxes from the warped corners, masks (bitmap and
polygon) warped with the same matrix, instances pushed out of the image dropped."""
import math
import random

import numpy as np
import pytest

from mmft.datasets.transforms import RandomAffine
from mmft.datasets.transforms.affine import translation_matrix, warp_boxes, warp_masks
from mmft.structures.masks import BitmapMasks

from tests.test_datasets.test_transforms.transform_samples import assert_aligned, make_results


def _rotation(degrees):
    r = math.radians(degrees)
    return np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])


class _Fixed(RandomAffine):
    """RandomAffine with a given matrix (the transform's own image / instance handling)."""

    def __init__(self, matrix, **kwargs):
        super().__init__(**kwargs)
        self._matrix = matrix

    def random_matrix(self, height, width):
        return self._matrix


def test_warp_boxes_takes_the_box_of_the_four_corners():
    boxes = np.array([[0, 0, 4, 2]], np.float32)
    np.testing.assert_allclose(warp_boxes(boxes, _rotation(90)), [[-2, 0, 0, 4]], atol=1e-5)
    r = _rotation(45)
    s = math.sqrt(2)
    np.testing.assert_allclose(warp_boxes(boxes, r), [[-s, 0, 2 * s, 3 * s]], atol=1e-5)
    assert warp_boxes(np.zeros((0, 4)), r).shape == (0, 4)


@pytest.mark.parametrize('mask_type', ['bitmap', 'polygon'])
def test_warp_masks_keep_their_type_and_follow_the_boxes(mask_type):
    s = make_results(mask_type)
    m = translation_matrix(5, -3) @ np.diag([1.5, 1.5, 1])
    out = warp_masks(s['gt_masks'], m, (80, 100))
    assert type(out) is type(s['gt_masks']) and (out.height, out.width) == (80, 100)
    boxes = warp_boxes(s['gt_bboxes'], m)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, 80)
    np.testing.assert_allclose(out.get_bboxes().numpy(), boxes, atol=1.5)
    # a window cuts the masks: nothing outside it
    out = warp_masks(s['gt_masks'], m, (80, 100), window=(0, 0, 40, 80))
    assert (out.get_bboxes().numpy()[:, 2] <= 40).all()


def test_bitmap_warp_reads_only_inside_the_given_boxes():
    mask = np.zeros((1, 20, 20), np.uint8)
    mask[0, 2:6, 2:6] = 1
    mask[0, 15:18, 15:18] = 1  # a stray blob far from the box
    out = warp_masks(BitmapMasks(mask, 20, 20), np.eye(3), (20, 20),
                     boxes=np.array([[2, 2, 6, 6]]))
    np.testing.assert_array_equal(out.masks[0, :10, :10], mask[0, :10, :10])
    assert out.masks[0, 10:, 10:].sum() == 0
    # without boxes the blob is found and kept
    assert warp_masks(BitmapMasks(mask, 20, 20), np.eye(3), (20, 20)).masks.sum() == mask.sum()


@pytest.mark.parametrize('seed', range(6))
def test_random_affine_boxes_inside_and_masks_follow(sample, seed):
    random.seed(seed)
    out = RandomAffine(max_rotate_degree=0, max_shear_degree=0)(sample)
    assert out['img'].shape == (48, 64, 3) and out['img_shape'] == (48, 64)
    boxes = out['gt_bboxes']
    assert (boxes >= 0).all() and (boxes[:, 0::2] <= 64).all() and (boxes[:, 1::2] <= 48).all()
    assert_aligned(out, atol=2.0)  # no rotation: each mask still fills its box
    assert np.array_equal(out['gt_ignore_flags'], out['gt_bboxes_labels'] == 2)


@pytest.mark.parametrize('mask_type', ['bitmap', 'polygon'])
def test_random_affine_rotation_moves_masks_with_the_matrix(mask_type):
    s = make_results(mask_type)
    s['img'][6:18, 4:20] = (255, 0, 0)  # the first object, box (4, 6, 20, 18)
    # rotate 30 degrees about the centre (32, 24) and shrink: every object stays inside
    m = translation_matrix(32, 24) @ _rotation(30) @ np.diag([0.6, 0.6, 1]) @ \
        translation_matrix(-32, -24)
    out = _Fixed(m)(s)
    assert len(out['gt_bboxes']) == 3 and type(out['gt_masks']).__name__.startswith(
        'Bitmap' if mask_type == 'bitmap' else 'Polygon')
    # a rotated rectangle's box is the box of its corners: masks and boxes agree
    np.testing.assert_allclose(out['gt_masks'].get_bboxes().numpy(), out['gt_bboxes'], atol=1.5)
    # the image moved with them: the first object's colour is at its warped centre
    x, y = (m @ [12, 12, 1])[:2]
    assert (out['img'][int(y), int(x)] == (255, 0, 0)).all()


@pytest.mark.parametrize('mask_type', ['bitmap', 'polygon'])
def test_random_affine_everything_moved_away(mask_type):
    out = _Fixed(translation_matrix(500, 0))(make_results(mask_type))
    assert out['gt_bboxes'].shape == (0, 4) and out['gt_bboxes'].dtype == np.float32
    assert out['gt_bboxes_labels'].shape == (0,) and out['gt_bboxes_labels'].dtype == np.int64
    assert out['gt_ignore_flags'].shape == (0,) and out['gt_ignore_flags'].dtype == bool
    assert len(out['gt_masks']) == 0 and out['gt_masks'].height == 48
    assert (out['img'] == 114).all()  # border_val everywhere


def test_random_affine_partly_outside_clips_boxes_and_masks():
    out = _Fixed(translation_matrix(-10, 0))(make_results('polygon'))
    np.testing.assert_allclose(out['gt_bboxes'][0], [0, 6, 10, 18])
    np.testing.assert_allclose(out['gt_masks'].get_bboxes().numpy(), out['gt_bboxes'], atol=1e-4)
    unclipped = _Fixed(translation_matrix(-10, 0), bbox_clip_border=False)(make_results())
    np.testing.assert_allclose(unclipped['gt_bboxes'][0], [-6, 6, 10, 18])


def test_random_affine_border_sets_the_output_size_and_no_masks_is_fine():
    random.seed(0)
    s = make_results()
    del s['gt_masks']
    out = RandomAffine(border=(-16, -12))(s)  # YOLOX: the centre of a 2x mosaic
    assert out['img'].shape == (24, 32, 3) and 'gt_masks' not in out
    with pytest.raises(ValueError, match='border'):
        RandomAffine(border=(-40, 0))(make_results())
    with pytest.raises(ValueError, match='scaling_ratio_range'):
        RandomAffine(scaling_ratio_range=(0, 1))
    with pytest.raises(ValueError, match='max_translate_ratio'):
        RandomAffine(max_translate_ratio=2)
