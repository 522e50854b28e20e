"""RandomCenterCropPad: the window's geometry, boxes and masks moved with the image,
instances outside dropped in step, test-mode padding and its border."""
import numpy as np
import pytest

from mmft.registry import TRANSFORMS

from tests.test_datasets.test_transforms.transform_samples import (BOXES, H, W, assert_aligned,
                                                                   make_results)

NORM = dict(mean=[1., 2., 3.], std=[1., 1., 1.], to_rgb=True)


def _float(results):
    results['img'] = results['img'].astype(np.float32)
    return results


def build(**kwargs):
    return TRANSFORMS.build(dict(type='RandomCenterCropPad', **NORM, **kwargs))


def test_paste_geometry():
    crop = build(crop_size=(32, 32), ratios=(1.0, ), border=8, test_pad_mode=None)
    img = np.random.default_rng(0).random((H, W, 3)).astype(np.float32)
    canvas, patch, (dx, dy) = crop._paste(img, (10, 60), (32, 32))
    # window x 44..76 (image ends at 64), y -6..26 (image starts at 0)
    assert patch.tolist() == [44, 0, 64, 26] and (dx, dy) == (-44, 6)
    np.testing.assert_array_equal(canvas[6:32, 0:20], img[0:26, 44:64])
    assert (canvas[:6] == [3., 2., 1.]).all() and (canvas[:, 20:] == [3., 2., 1.]).all()  # BGR mean


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_train_crop_keeps_boxes_and_masks_aligned(sample, seed):
    np.random.seed(seed)
    out = build(crop_size=(32, 32), ratios=(0.75, 1.0), border=8,
                test_pad_mode=None)(_float(sample))
    assert out['img'].shape[:2] in [(24, 24), (32, 32)]
    assert len(out['gt_bboxes']) >= 1
    # boxes are the clipped moved boxes; masks' tight boxes equal them
    assert_aligned(out, atol=1e-4)
    # a kept instance keeps its label: the box size matches its source (or was clipped)
    for box, label in zip(out['gt_bboxes'], out['gt_bboxes_labels']):
        w0, h0 = BOXES[label, 2:] - BOXES[label, :2]
        assert box[2] - box[0] <= w0 + 1e-4 and box[3] - box[1] <= h0 + 1e-4


def test_drops_instances_whose_centre_is_outside_and_gives_up_when_none_fit():
    results = _float(make_results('polygon'))
    # the only box is centred at (2, 2); window centres lie in [16, 48) x [16, 32)
    results['gt_bboxes'] = np.array([[0, 0, 4, 4]], np.float32)
    results['gt_bboxes_labels'] = np.array([0])
    results['gt_ignore_flags'] = np.array([False])
    results['gt_masks'] = results['gt_masks'][[0]]
    np.random.seed(0)
    assert build(crop_size=(4, 4), ratios=(1.0, ), border=128,
                 test_pad_mode=None)(results) is None
    no_boxes = _float(make_results('bitmap'))
    for key in ('gt_bboxes', 'gt_bboxes_labels', 'gt_ignore_flags', 'gt_masks'):
        no_boxes[key] = no_boxes[key][np.zeros(0, int)]
    out = build(crop_size=(16, 16), ratios=(1.0, ), border=8, test_pad_mode=None)(no_boxes)
    assert out['img'].shape == (16, 16, 3) and len(out['gt_masks']) == 0


def test_test_mode_pads_around_the_centre(sample):
    img = _float(sample)['img'].copy()
    out = build(crop_size=None, ratios=None, border=None, test_mode=True,
                test_pad_mode=('logical_or', 31), test_pad_add_pix=1)(sample)
    assert out['img'].shape == (64, 96, 3) and out['img_shape'] == (64, 96)
    assert out['border'].tolist() == [8, 56, 16, 80]
    np.testing.assert_array_equal(out['img'][8:56, 16:80], img)
    div = build(crop_size=None, ratios=None, border=None, test_mode=True,
                test_pad_mode=('size_divisor', 32))(_float(make_results()))
    assert div['img'].shape[:2] == (64, 64) and div['border'].tolist() == [8, 56, 0, 64]


def test_errors():
    with pytest.raises(ValueError, match='needs mean, std and to_rgb'):
        TRANSFORMS.build(dict(type='RandomCenterCropPad', crop_size=(8, 8)))
    with pytest.raises(ValueError, match='test_pad_mode must be None'):
        build(crop_size=(8, 8))
    with pytest.raises(TypeError, match='to_float32=True'):
        build(crop_size=(8, 8), test_pad_mode=None)(make_results())
