"""Mosaic, MixUp, CachedMosaic, CachedMixUp and YOLOXHSVRandomAug on boxes and masks: boxes
stay inside the image, each mask follows its box, labels stay aligned, and empty samples
pass."""
import copy
import random

import numpy as np
import pytest

from mmft.datasets.transforms import CachedMixUp, CachedMosaic, MixUp, Mosaic, YOLOXHSVRandomAug
from mmft.datasets.transforms.base import select_instances
from mmft.structures.masks import BitmapMasks, PolygonMasks

from tests.test_datasets.test_transforms.transform_samples import assert_aligned, make_results


def _sample(seed, h=60, w=80, n=2):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    boxes, masks = [], []
    for i in range(n):
        x1, y1 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        x2, y2 = x1 + int(rng.integers(8, w // 2)), y1 + int(rng.integers(8, h // 2))
        boxes.append([x1, y1, x2, y2])
        m = np.zeros((h, w), np.uint8)
        m[y1:y2, x1:x2] = 1
        masks.append(m)
    return dict(img=img, img_shape=(h, w),
                gt_bboxes=np.array(boxes, np.float32).reshape(-1, 4),
                gt_bboxes_labels=np.arange(n, dtype=np.int64) + seed,
                gt_ignore_flags=np.zeros(n, bool),
                gt_masks=BitmapMasks(np.array(masks).reshape(n, h, w), h, w))


def _check_boxes_and_masks(out):
    h, w = out['img'].shape[:2]
    assert out['img_shape'] == (h, w)
    boxes = out['gt_bboxes']
    n = len(boxes)
    assert len(out['gt_bboxes_labels']) == len(out['gt_ignore_flags']) == len(out['gt_masks']) == n
    assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= w).all()
    assert (boxes[:, 1::2] >= 0).all() and (boxes[:, 1::2] <= h).all()
    assert ((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])).all()
    masks = out['gt_masks'].masks
    assert masks.shape[1:] == (h, w)
    for box, mask in zip(boxes, masks):
        # the (rectangular) mask fills its box, up to the pixel rounding of the resize
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            assert (box[2] - box[0]) * (box[3] - box[1]) < 4
            continue
        assert abs(xs.min() - box[0]) <= 2 and abs(xs.max() + 1 - box[2]) <= 2
        assert abs(ys.min() - box[1]) <= 2 and abs(ys.max() + 1 - box[3]) <= 2


def test_cached_mosaic_passes_until_the_cache_is_full_then_mixes_four():
    random.seed(0)
    np.random.seed(0)
    t = CachedMosaic(img_scale=(64, 48), max_cached_images=10)
    for seed in range(4):
        out = t(_sample(seed))
        assert out['img'].shape == (60, 80, 3)  # unchanged while the cache fills
    for seed in range(4, 12):
        out = t(_sample(seed))
        assert out['img'].shape == (96, 128, 3)
        _check_boxes_and_masks(out)
    # labels come from several cached samples
    assert len(set(out['gt_bboxes_labels'].tolist())) > 2
    assert len(t._cache.items) == 10


def test_cached_mosaic_with_empty_samples():
    random.seed(1)
    t = CachedMosaic(img_scale=(32, 32), max_cached_images=5)
    for seed in range(6):
        out = t(_sample(seed, n=0))
    assert out['img'].shape == (64, 64, 3) and len(out['gt_bboxes']) == 0
    assert len(out['gt_masks']) == 0


def test_cached_mosaic_rejects_a_too_small_cache():
    with pytest.raises(ValueError, match='max_cached_images'):
        CachedMosaic(max_cached_images=3)


def test_cached_mixup_blends_and_keeps_both_instance_sets():
    random.seed(0)
    t = CachedMixUp(img_scale=(80, 60), ratio_range=(0.8, 1.6), max_cached_images=5)
    first = _sample(0)
    assert t(dict(first))['img'] is first['img']  # one cached sample: nothing to mix with
    found_more = False
    for seed in range(1, 10):
        s = _sample(seed)
        before = s['img'].copy()
        out = t(s)
        assert out['img'].shape == (60, 80, 3)
        _check_boxes_and_masks(out)
        assert not np.array_equal(out['img'], before)
        found_more |= len(out['gt_bboxes']) > 2
    assert found_more


def test_cached_mixup_with_an_empty_sample():
    random.seed(0)
    t = CachedMixUp(img_scale=(80, 60), max_cached_images=5)
    t(_sample(0))
    out = t(_sample(1, n=0))
    _check_boxes_and_masks(out)
    assert set(out['gt_bboxes_labels'].tolist()) <= {0, 1}


def test_hsv_aug_keeps_boxes_and_shifts_colours_within_range():
    np.random.seed(3)
    s = _sample(0)
    boxes = s['gt_bboxes'].copy()
    img = s['img'].copy()
    changed = False
    t = YOLOXHSVRandomAug()
    for _ in range(5):
        out = t(dict(s, img=img.copy()))
        assert out['img'].dtype == np.uint8 and out['img'].shape == img.shape
        assert np.array_equal(out['gt_bboxes'], boxes)
        changed |= not np.array_equal(out['img'], img)
    assert changed
    # zero deltas: only the HSV round trip's rounding
    out = YOLOXHSVRandomAug(0, 0, 0)(dict(s, img=img.copy()))
    assert np.abs(out['img'].astype(int) - img.astype(int)).mean() < 3


# Mosaic / MixUp (partners from results['mix_results']) and the cached variants, on bitmap
# and polygon masks (the `sample` fixture): rectangles whose masks fill their boxes


def _with_partners(sample, count, mask_type=None):
    mask_type = mask_type or ('polygon' if isinstance(sample['gt_masks'], PolygonMasks)
                              else 'bitmap')
    return dict(sample, mix_results=[make_results(mask_type, seed=i + 1) for i in range(count)])


def _check_follow(out, mask_type):
    assert type(out['gt_masks']).__name__ == {'bitmap': 'BitmapMasks',
                                              'polygon': 'PolygonMasks'}[mask_type]
    assert out['gt_bboxes'].dtype == np.float32 and out['gt_bboxes_labels'].dtype == np.int64
    assert out['gt_ignore_flags'].dtype == bool
    h, w = out['img'].shape[:2]
    boxes = out['gt_bboxes']
    assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= w).all()
    assert (boxes[:, 1::2] >= 0).all() and (boxes[:, 1::2] <= h).all()
    # each mask's tight box is its box (pixel rounding of the resize aside)
    assert_aligned(out, atol=2.0)
    # make_results: label 2 is the ignored instance in every sample
    assert np.array_equal(out['gt_ignore_flags'], out['gt_bboxes_labels'] == 2)


@pytest.mark.parametrize('seed', range(4))
def test_mosaic_places_four_samples_and_masks_follow(sample, seed):
    random.seed(seed)
    mask_type = 'polygon' if isinstance(sample['gt_masks'], PolygonMasks) else 'bitmap'
    t = Mosaic(img_scale=(64, 48))
    out = t(_with_partners(sample, 3))
    assert out['img'].shape == (96, 128, 3) and out['img_shape'] == (96, 128)
    _check_follow(out, mask_type)
    assert len(out['gt_bboxes']) > 3  # instances of several quarters survive


def test_mosaic_uses_the_partners_pixels():
    random.seed(0)
    parts = [dict(make_results(), img=np.full((48, 64, 3), v, np.uint8)) for v in (10, 20, 30, 40)]
    out = Mosaic(img_scale=(64, 48), center_ratio_range=(1.0, 1.0))(
        dict(parts[0], mix_results=parts[1:]))
    # centre (64, 48): each quarter is exactly one sample
    assert (out['img'][:48, :64] == 10).all() and (out['img'][:48, 64:] == 20).all()
    assert (out['img'][48:, :64] == 30).all() and (out['img'][48:, 64:] == 40).all()
    np.testing.assert_allclose(out['gt_bboxes'][:3], make_results()['gt_bboxes'])
    np.testing.assert_allclose(out['gt_bboxes'][3:6], make_results()['gt_bboxes'] + [64, 0, 64, 0])


def test_mosaic_needs_mix_results_and_get_indexes_draws_three():
    with pytest.raises(ValueError, match='MultiImageMixDataset'):
        Mosaic()(make_results())
    indexes = Mosaic().get_indexes(list(range(5)))
    assert len(indexes) == 3 and all(0 <= i < 5 for i in indexes)
    assert Mosaic(prob=0.0)(make_results())['img'].shape == (48, 64, 3)
    with pytest.raises(ValueError, match='prob'):
        Mosaic(prob=2)


@pytest.mark.parametrize('mask_type', ['bitmap', 'polygon'])
def test_mosaic_with_empty_samples(mask_type):
    random.seed(0)
    empty = make_results(mask_type)
    select_instances(empty, np.zeros(3, bool))
    out = Mosaic(img_scale=(32, 32))(dict(empty, mix_results=[copy.deepcopy(empty)
                                                             for _ in range(3)]))
    assert out['gt_bboxes'].shape == (0, 4) and out['gt_bboxes'].dtype == np.float32
    assert out['gt_bboxes_labels'].shape == (0,) and out['gt_ignore_flags'].dtype == bool
    assert len(out['gt_masks']) == 0 and out['gt_masks'].height == 64


@pytest.mark.parametrize('seed', range(4))
def test_mixup_keeps_both_instance_sets_and_masks_follow(sample, seed):
    random.seed(seed)
    mask_type = 'polygon' if isinstance(sample['gt_masks'], PolygonMasks) else 'bitmap'
    before = sample['img'].copy()
    out = MixUp(img_scale=(64, 48), ratio_range=(0.8, 1.6))(_with_partners(sample, 1))
    assert out['img'].shape == (48, 64, 3) and not np.array_equal(out['img'], before)
    _check_follow(out, mask_type)
    assert len(out['gt_bboxes']) > 3


def test_mixup_everything_cropped_away_and_empty_partner():
    random.seed(0)
    # a partner scaled 4x lands off this image except for the top-left: its boxes there
    # survive, others (x >= 64) are dropped with their masks
    s = make_results('polygon')
    out = MixUp(img_scale=(64, 48), ratio_range=(4.0, 4.0), flip_ratio=0)(
        dict(s, mix_results=[make_results('polygon', 1)]))
    _check_follow(out, 'polygon')
    empty = make_results('bitmap')
    select_instances(empty, np.zeros(3, bool))
    out = MixUp()(dict(make_results('bitmap'), mix_results=[empty]))
    assert len(out['gt_bboxes']) == 3  # nothing to mix in: unchanged
    out = MixUp(img_scale=(64, 48))(dict(copy.deepcopy(empty),
                                         mix_results=[make_results('bitmap')]))
    _check_follow(out, 'bitmap')


def test_mixup_get_indexes_prefers_samples_with_boxes():
    class Data:
        def __len__(self):
            return 10

        def get_data_info(self, i):
            return dict(instances=[dict(bbox=[0, 0, 1, 1])] if i == 7 else [])
    random.seed(0)
    assert MixUp(max_iters=200).get_indexes(Data()) == 7


@pytest.mark.parametrize('mask_type', ['bitmap', 'polygon'])
def test_cached_variants_keep_the_mask_type(mask_type):
    random.seed(0)
    mosaic, mixup = CachedMosaic(img_scale=(64, 48), max_cached_images=6), \
        CachedMixUp(img_scale=(64, 48), max_cached_images=4)
    for seed in range(8):
        out = mixup(mosaic(make_results(mask_type, seed)))
    assert out['img'].shape == (96, 128, 3)
    _check_follow(out, mask_type)


def test_mixup_blends_the_partners_pixels_and_pads_the_rest():
    random.seed(0)
    s = dict(make_results(), img=np.full((48, 64, 3), 100, np.uint8))
    partner = dict(make_results(seed=1), img=np.full((48, 64, 3), 201, np.uint8))
    out = MixUp(img_scale=(64, 48), ratio_range=(0.5, 0.5), flip_ratio=0)(
        dict(s, mix_results=[partner]))
    # the partner shrunk to the top-left 32x24; pad_val 114 elsewhere; truncated means
    assert (out['img'][:24, :32] == 150).all() and (out['img'][24:, :] == 107).all()
    assert (out['img'][:, 32:] == 107).all()
    np.testing.assert_allclose(out['gt_bboxes'][3:], partner['gt_bboxes'] * 0.5, atol=1e-5)
