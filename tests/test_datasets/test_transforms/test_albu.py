"""Albu: Albumentations moves image, boxes and masks together; dropped boxes take their
labels, flags and masks with them."""
import numpy as np
import pytest

pytest.importorskip('albumentations')

from mmft.registry import TRANSFORMS  # noqa: E402
from mmft.structures.masks import BitmapMasks  # noqa: E402

from tests.test_datasets.test_transforms.transform_samples import (  # noqa: E402
    BOXES, H, W, assert_aligned, make_results)

BBOX_PARAMS = dict(type='BboxParams', format='pascal_voc',
                   label_fields=['gt_bboxes_labels', 'gt_ignore_flags'], min_visibility=0.5,
                   filter_lost_elements=True)
KEYMAP = {'img': 'image', 'gt_masks': 'masks', 'gt_bboxes': 'bboxes'}


def build(transforms, **kwargs):
    return TRANSFORMS.build(dict(type='Albu', transforms=transforms, **kwargs))


def test_flip_matches_mmft_random_flip(sample):
    expected = TRANSFORMS.build(dict(type='RandomFlip', prob=1.0))(
        {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in sample.items()})
    out = build([dict(type='HorizontalFlip', p=1.0)], bbox_params=BBOX_PARAMS,
                keymap=KEYMAP)(sample)
    np.testing.assert_array_equal(out['img'], expected['img'])
    np.testing.assert_allclose(out['gt_bboxes'], expected['gt_bboxes'], atol=1e-4)
    assert isinstance(out['gt_masks'], BitmapMasks)
    np.testing.assert_array_equal(out['gt_masks'].masks, expected['gt_masks'].to_ndarray())
    assert_aligned(out, atol=1e-4)


def test_crop_drops_instances_in_step(sample):
    # keep x < 32: box 0 inside, box 1 (x 30..60) mostly outside, box 2 outside
    out = build([dict(type='Crop', x_min=0, y_min=0, x_max=32, y_max=H)],
                bbox_params=BBOX_PARAMS)(sample)
    assert out['img'].shape == (H, 32, 3) and out['img_shape'] == (H, 32)
    assert out['gt_bboxes_labels'].tolist() == [0]
    assert out['gt_ignore_flags'].tolist() == [False]
    np.testing.assert_allclose(out['gt_bboxes'], BOXES[:1])
    assert_aligned(out)


def test_everything_cropped_away(sample):
    crop = [dict(type='Crop', x_min=0, y_min=40, x_max=10, y_max=H)]
    assert build(crop, bbox_params=BBOX_PARAMS, skip_img_without_anno=True)(
        {k: v for k, v in sample.items()}) is None
    kept = build(crop, bbox_params=BBOX_PARAMS)(sample)
    assert kept['gt_bboxes'].shape == (0, 4) and len(kept['gt_masks']) == 0
    assert kept['gt_bboxes_labels'].shape == (0, )


def test_photometric_only_needs_no_bbox_params_but_spatial_does():
    results = make_results('bitmap')
    out = build([dict(type='RandomBrightnessContrast', p=1.0)])(results)
    np.testing.assert_allclose(out['gt_bboxes'], BOXES)
    with pytest.raises(ValueError, match='no bbox_params'):
        build([dict(type='HorizontalFlip', p=1.0)])(make_results())
    with pytest.raises(ValueError, match='has no transform'):
        build([dict(type='NoSuchTransform')])
    with pytest.raises(ValueError, match='keymap'):
        build([dict(type='HorizontalFlip')], keymap={'img': 'image'})


def test_missing_package_names_the_extra(monkeypatch):
    import builtins

    from mmft.datasets.transforms import albu
    real = builtins.__import__

    def no_albu(name, *args, **kwargs):
        if name == 'albumentations':
            raise ImportError('No module named albumentations')
        return real(name, *args, **kwargs)
    monkeypatch.setattr(builtins, '__import__', no_albu)
    with pytest.raises(ImportError, match='requirements/albu.txt'):
        albu.import_albumentations()


def test_mmdetection_albu_example_pipeline_runs(sample):
    """The transforms of MMDetection's albu_example config (JpegCompression is albumentations'
    old name of ImageCompression)."""
    transforms = [
        dict(type='ShiftScaleRotate', shift_limit=0.0625, scale_limit=0.0, rotate_limit=0,
             interpolation=1, p=1.0),
        dict(type='RandomBrightnessContrast', brightness_limit=[0.1, 0.3],
             contrast_limit=[0.1, 0.3], p=0.2),
        dict(type='OneOf', transforms=[
            dict(type='RGBShift', r_shift_limit=10, g_shift_limit=10, b_shift_limit=10, p=1.0),
            dict(type='HueSaturationValue', hue_shift_limit=20, sat_shift_limit=30,
                 val_shift_limit=20, p=1.0)], p=0.1),
        dict(type='JpegCompression', quality_lower=85, quality_upper=95, p=0.2),
        dict(type='ChannelShuffle', p=0.1),
        dict(type='OneOf', transforms=[dict(type='Blur', blur_limit=3, p=1.0),
                                       dict(type='MedianBlur', blur_limit=3, p=1.0)], p=0.1)]
    albu = build(transforms, bbox_params=dict(
        type='BboxParams', format='pascal_voc',
        label_fields=['gt_bboxes_labels', 'gt_ignore_flags'], min_visibility=0.0,
        filter_lost_elements=True), keymap=KEYMAP, skip_img_without_anno=True)
    np.random.seed(0)
    out = albu(sample)
    assert out is not None and out['img'].shape == (H, W, 3)
    # shifted: masks' tight boxes follow the boxes within a pixel (masks resampled nearest)
    assert_aligned(out, atol=1.0)
