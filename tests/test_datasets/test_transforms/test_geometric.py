"""Resize, RandomResize, RandomChoiceResize, RandomFlip, Pad, RandomCrop: image, boxes and
masks stay aligned; fixed numbers where the geometry is known."""
import numpy as np
import pytest

from mmft.registry import TRANSFORMS

from tests.test_datasets.test_transforms.transform_samples import (BOXES, H, W, assert_aligned,
                                                                   make_results)


def build(type, **kwargs):
    return TRANSFORMS.build(dict(type=type, **kwargs))


def test_resize_keep_ratio_scales_boxes_and_masks_together(sample):
    out = build('Resize', scale=(100, 100), keep_ratio=True)(sample)
    # long edge <= 100, short edge <= 100: factor min(100/64, 100/48) = 1.5625
    assert out['img'].shape == (75, 100, 3) and out['scale_factor'] == (1.5625, 1.5625)
    np.testing.assert_allclose(out['gt_bboxes'], np.minimum(BOXES * 1.5625, [100, 75] * 2))
    # bitmaps are resampled (nearest): edges within a pixel; polygons are exact
    assert_aligned(out, atol=1.0)


def test_resize_without_ratio_and_by_factor():
    out = build('Resize', scale=(32, 96))(make_results('polygon'))
    assert out['img_shape'] == (96, 32) and out['scale_factor'] == (0.5, 2.0)
    np.testing.assert_allclose(out['gt_bboxes'][0], [2, 12, 10, 36])
    assert_aligned(out)
    out = build('Resize', scale_factor=0.5)(make_results('bitmap'))
    assert out['img_shape'] == (24, 32) and out['scale_factor'] == (0.5, 0.5)
    assert_aligned(out, atol=1.0)


def test_resize_clip_object_border():
    results = make_results('bitmap')
    results['gt_bboxes'][0] = [-4, -4, 70, 20]
    clipped = build('Resize', scale_factor=1.0)(dict(results, gt_bboxes=results['gt_bboxes']))
    assert clipped['gt_bboxes'][0].tolist() == [0, 0, 64, 20]
    results = make_results('bitmap')
    results['gt_bboxes'][0] = [-4, -4, 70, 20]
    kept = build('Resize', scale_factor=1.0, clip_object_border=False)(results)
    assert kept['gt_bboxes'][0].tolist() == [-4, -4, 70, 20]


def test_random_resize_and_choice_resize():
    np.random.seed(0)
    resize = build('RandomResize', scale=[(60, 20), (90, 40)], keep_ratio=True)
    for _ in range(5):
        out = resize(make_results('polygon'))
        w, h = out['scale']
        assert 60 <= w <= 90 and 20 <= h <= 40
        assert out['img_shape'][0] <= max(w, h) and min(out['img_shape']) <= min(w, h)
        assert_aligned(out)
    ratio = build('RandomResize', scale=(64, 48), ratio_range=(0.5, 1.0))(make_results())
    assert 32 <= ratio['img_shape'][1] <= 64
    choice = build('RandomChoiceResize', scales=[(32, 24), (128, 96)], keep_ratio=True)
    out = choice(make_results('polygon'))
    assert out['img_shape'] == [(24, 32), (96, 128)][out['scale_idx']]
    assert_aligned(out)
    with pytest.raises(ValueError, match='two scales'):
        build('RandomResize', scale=[(1, 2), (3, 4), (5, 6)])


@pytest.mark.parametrize('direction', ['horizontal', 'vertical', 'diagonal'])
def test_flip_keeps_alignment_and_twice_is_identity(sample, direction):
    flip = build('RandomFlip', prob=1.0, direction=direction)
    original = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in sample.items()}
    once = flip(sample)
    assert once['flip'] and once['flip_direction'] == direction
    assert_aligned(once)
    twice = flip(once)
    np.testing.assert_array_equal(twice['img'], original['img'])
    np.testing.assert_array_equal(twice['gt_bboxes'], original['gt_bboxes'])
    np.testing.assert_array_equal(twice['gt_masks'].to_ndarray(),
                                  original['gt_masks'].to_ndarray())


def test_flip_fixed_numbers_and_probabilities():
    out = build('RandomFlip', prob=1.0)(make_results())
    assert out['gt_bboxes'][0].tolist() == [W - 20, 6, W - 4, 18]
    np.testing.assert_array_equal(out['img'], make_results()['img'][:, ::-1])
    never = build('RandomFlip', prob=0.0)(make_results())
    assert never['flip'] is False and never['flip_direction'] is None
    np.random.seed(0)
    flip = build('RandomFlip', prob=[0.3, 0.7], direction=['horizontal', 'vertical'])
    seen = {flip(make_results())['flip_direction'] for _ in range(30)}
    assert seen == {'horizontal', 'vertical'}
    with pytest.raises(ValueError, match='prob'):
        build('RandomFlip')
    with pytest.raises(ValueError, match='sideways'):
        build('RandomFlip', prob=0.5, direction='sideways')


def test_pad(sample):
    out = build('Pad', size_divisor=32, pad_val=dict(img=7, masks=0))(sample)
    assert out['img'].shape == (64, 64, 3) and out['pad_shape'] == (64, 64)
    assert (out['img'][H:] == 7).all()
    np.testing.assert_array_equal(out['gt_bboxes'], BOXES)  # bottom/right: boxes stay
    assert_aligned(out)
    square = build('Pad', pad_to_square=True)(make_results())
    assert square['img_shape'] == (64, 64)
    fixed = build('Pad', size=(80, 50))(make_results())
    assert fixed['img_shape'] == (50, 80)
    with pytest.raises(ValueError, match='smaller than the image'):
        build('Pad', size=(32, 32))(make_results())
    with pytest.raises(ValueError, match='exactly one'):
        build('Pad')


@pytest.mark.parametrize('mask_type', ['bitmap', 'polygon'])
def test_random_crop_keeps_each_box_with_its_mask(mask_type):
    np.random.seed(1)
    crop = build('RandomCrop', crop_size=(40, 30), allow_negative_crop=True)
    labels_seen = set()
    for _ in range(10):
        out = crop(make_results(mask_type))
        assert out['img'].shape[:2] == (30, 40)
        assert_aligned(out)  # exact: rectangles cropped by integer offsets
        # labels, ignore flags and masks were indexed with the same instances
        np.testing.assert_array_equal(out['gt_ignore_flags'], out['gt_bboxes_labels'] == 2)
        labels_seen |= set(out['gt_bboxes_labels'].tolist())
    assert labels_seen == {0, 1, 2}


def test_random_crop_without_boxes_returns_none_and_options():
    results = make_results()
    results['gt_bboxes'] = np.array([[0, 0, 2, 2]], np.float32)
    for key in ('gt_bboxes_labels', 'gt_ignore_flags'):
        results[key] = results[key][:1]
    results['gt_masks'] = results['gt_masks'][[0]]
    np.random.seed(0)
    crop = build('RandomCrop', crop_size=(8, 8))
    outs = [crop(dict(results)) for _ in range(20)]
    assert any(o is None for o in outs)
    relative = build('RandomCrop', crop_size=(0.5, 0.5), crop_type='relative',
                     allow_negative_crop=True, recompute_bbox=True)(make_results())
    assert relative['img_shape'] == (24, 32)
    assert_aligned(relative)
    with pytest.raises(ValueError, match='crop_type'):
        build('RandomCrop', crop_size=(8, 8), crop_type='centre')
    with pytest.raises(ValueError, match='ratios'):
        build('RandomCrop', crop_size=(8, 8), crop_type='relative')


def test_random_crop_relative_range_is_height_first_and_crops_masks_without_boxes():
    from mmft.structures import BitmapMasks
    np.random.seed(0)
    crop = build('RandomCrop', crop_size=(1.0, 0.2), crop_type='relative_range')
    img = np.zeros((100, 200, 3), np.uint8)
    masks = BitmapMasks(np.ones((1, 100, 200), np.uint8), 100, 200)
    out = crop(dict(img=img, img_shape=(100, 200), gt_masks=masks))
    h, w = out['img_shape']
    assert h == 100 and w < 200  # height ratio fixed at 1.0, as MMDetection reads it
    assert (out['gt_masks'].height, out['gt_masks'].width) == (h, w)
