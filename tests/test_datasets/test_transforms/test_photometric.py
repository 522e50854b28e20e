"""PhotoMetricDistortion changes pixels only."""
import numpy as np
import pytest

from mmft.datasets.transforms import PhotoMetricDistortion

from tests.test_datasets.test_transforms.transform_samples import BOXES, make_results


def test_changes_pixels_not_annotations():
    np.random.seed(3)
    transform = PhotoMetricDistortion()
    changed = 0
    for _ in range(8):
        results = make_results('bitmap')
        before = results['img'].copy()
        out = transform(results)
        assert out['img'].dtype == np.float32 and out['img'].shape == before.shape
        np.testing.assert_array_equal(out['gt_bboxes'], BOXES)
        assert out['gt_masks'].masks.sum() > 0
        changed += not np.allclose(out['img'], before)
        assert np.isfinite(out['img']).all()
    assert changed >= 6


def test_no_op_ranges_keep_the_image():
    results = make_results()
    before = results['img'].astype(np.float32)
    out = PhotoMetricDistortion(brightness_delta=0, contrast_range=(1, 1),
                                saturation_range=(1, 1), hue_delta=0)(results)
    # only a channel permutation may happen; the HSV round trip is float-exact to ~1e-3
    assert np.allclose(np.sort(out['img'], axis=2), np.sort(before, axis=2), atol=1e-2)


def test_needs_a_colour_image():
    with pytest.raises(ValueError, match='BGR'):
        PhotoMetricDistortion()(dict(img=np.zeros((4, 4), np.uint8)))
