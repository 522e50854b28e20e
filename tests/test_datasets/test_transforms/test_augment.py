"""FilterAnnotations, FixScaleResize, RandomShift, CutOut, AutoAugment on boxes and masks,
including samples whose instances all disappear."""
import numpy as np
import pytest

from mmft.registry import TRANSFORMS

from tests.test_datasets.test_transforms.transform_samples import (BOXES, H, W, assert_aligned,
                                                                   make_results)


def build(type, **kwargs):
    return TRANSFORMS.build(dict(type=type, **kwargs))


def test_filter_annotations_by_box_keeps_rows_aligned(sample):
    sample['gt_bboxes'][1] = [30, 10, 31, 40]  # 1 px wide: not > 1, dropped
    out = build('FilterAnnotations', min_gt_bbox_wh=(1, 1))(sample)
    assert out['gt_bboxes_labels'].tolist() == [0, 2]
    assert out['gt_ignore_flags'].tolist() == [False, True]
    assert len(out['gt_masks']) == 2
    np.testing.assert_allclose(out['gt_masks'].get_bboxes().numpy(), BOXES[[0, 2]])


def test_filter_annotations_by_mask_area(sample):
    # areas: 16*12=192, 30*30=900, 14*18=252; keep >= 250
    out = build('FilterAnnotations', by_box=False, by_mask=True, min_gt_mask_area=250)(sample)
    assert out['gt_bboxes_labels'].tolist() == [1, 2]
    assert_aligned(out)
    both = build('FilterAnnotations', min_gt_bbox_wh=(20, 1), by_mask=True,
                 min_gt_mask_area=250)(make_results('bitmap'))
    assert both['gt_bboxes_labels'].tolist() == [1]  # box 2 is 14 wide


def test_filter_annotations_everything_filtered(sample):
    filt = build('FilterAnnotations', min_gt_bbox_wh=(100, 100), keep_empty=True)
    assert filt(dict(sample)) is None  # MMDetection: keep_empty=True drops the sample
    kept = build('FilterAnnotations', min_gt_bbox_wh=(100, 100), keep_empty=False)(sample)
    assert kept['gt_bboxes'].shape == (0, 4) and len(kept['gt_masks']) == 0
    assert kept['gt_bboxes_labels'].shape == (0, ) and kept['gt_ignore_flags'].shape == (0, )
    # an image that had no instances to begin with goes through untouched
    again = build('FilterAnnotations', min_gt_bbox_wh=(100, 100))(kept)
    assert again is kept


def test_filter_annotations_errors():
    with pytest.raises(ValueError, match='by_box=False and by_mask=False'):
        build('FilterAnnotations', by_box=False)
    results = make_results()
    del results['gt_masks']
    with pytest.raises(KeyError, match='by_mask=True.*gt_masks'):
        build('FilterAnnotations', by_mask=True)(results)
    with pytest.raises(KeyError, match='needs gt_bboxes'):
        build('FilterAnnotations')(dict(img=np.zeros((4, 4, 3), np.uint8)))


def test_fix_scale_resize_scale_factor_is_output_over_input(sample):
    out = build('FixScaleResize', scale=(100, 30), keep_ratio=True)(sample)
    # factor min(100/64, 30/48) = 0.625 -> 40 x 30
    assert out['img_shape'] == (30, 40)
    assert out['scale_factor'] == (40 / 64, 30 / 48)
    np.testing.assert_allclose(out['gt_bboxes'], BOXES * 0.625)
    assert_aligned(out, atol=1.0)
    odd = build('FixScaleResize', scale=(50, 50), keep_ratio=True)(make_results('polygon'))
    h, w = odd['img_shape']
    assert odd['scale_factor'] == (w / W, h / H)


def test_random_shift_moves_image_boxes_and_masks(sample, monkeypatch):
    from mmft.datasets.transforms.augment import shift_sample
    img = sample['img'].copy()
    out = shift_sample(sample, 5, -8)
    np.testing.assert_array_equal(out['img'][:H - 8, 5:], img[8:, :W - 5])
    assert (out['img'][H - 8:] == 0).all() and (out['img'][:, :5] == 0).all()
    # box 2 [50,30,64,48] -> [55,22,64,40] clipped; all kept
    np.testing.assert_allclose(out['gt_bboxes'], [[9, 0, 25, 10], [35, 2, 64, 32],
                                                  [55, 22, 64, 40]])
    assert_aligned(out)


def test_random_shift_drops_instances_pushed_out_and_keeps_all_out_unshifted(sample):
    from mmft.datasets.transforms.augment import shift_sample
    out = shift_sample(make_results('polygon'), -20, 0)  # box 0 [4,..,20] -> width 0
    assert out['gt_bboxes_labels'].tolist() == [1, 2]
    assert_aligned(out)
    img = sample['img'].copy()
    same = shift_sample(sample, 64, 48)  # every box leaves the image: sample unchanged
    np.testing.assert_array_equal(same['img'], img)
    np.testing.assert_allclose(same['gt_bboxes'], BOXES)
    np.random.seed(1)
    shifted = build('RandomShift', prob=1.0, max_shift_px=6)(make_results('bitmap'))
    assert_aligned(shifted)
    assert build('RandomShift', prob=0.0)(make_results())['gt_bboxes'].tolist() == \
        BOXES.tolist()


def test_cutout_fills_holes_and_leaves_annotations():
    np.random.seed(0)
    results = make_results('bitmap')
    boxes = results['gt_bboxes'].copy()
    out = build('CutOut', n_holes=(2, 3), cutout_shape=[(8, 8), (4, 6)],
                fill_in=(7, 7, 7))(results)
    filled = (out['img'] == 7).all(-1)
    assert filled.sum() >= 4 * 6  # at least one hole (clipped holes are smaller)
    np.testing.assert_array_equal(out['gt_bboxes'], boxes)
    ratio = build('CutOut', n_holes=1, cutout_ratio=(0.5, 0.5), fill_in=(255, 0, 0))
    img = ratio(make_results())['img']
    assert ((img == [255, 0, 0]).all(-1)).any()
    with pytest.raises(ValueError, match='exactly one of cutout_shape'):
        build('CutOut', n_holes=1)


def test_auto_augment_picks_one_policy():
    np.random.seed(0)
    aug = build('AutoAugment', policies=[[dict(type='RandomFlip', prob=1.0)],
                                         [dict(type='Resize', scale=(32, 24)),
                                          dict(type='RandomFlip', prob=1.0)]])
    shapes = set()
    for _ in range(12):
        out = aug(make_results('polygon'))
        assert out['flip'] is True
        assert_aligned(out)
        shapes.add(out['img_shape'])
    assert shapes == {(H, W), (24, 32)}
    with pytest.raises(ValueError, match='default policies'):
        build('AutoAugment')


def test_fix_scale_resize_with_pillow_backend(sample):
    """MMDetection's Grounding DINO configs resize with backend='pillow'."""
    from PIL import Image
    img = sample['img'].copy()
    out = build('FixScaleResize', scale=(800, 96), keep_ratio=True, backend='pillow')(sample)
    assert out['img_shape'] == (96, 128) and out['scale_factor'] == (2.0, 2.0)
    np.testing.assert_array_equal(out['img'],
                                  np.array(Image.fromarray(img).resize((128, 96), 2)))
    assert_aligned(out, atol=1.0)
    with pytest.raises(ValueError, match="unknown with backend='pillow'"):
        build('Resize', scale=(8, 8), backend='pillow', interpolation='area')
    floats = make_results()
    floats['img'] = floats['img'].astype(np.float32)
    with pytest.raises(TypeError, match='uint8'):
        build('Resize', scale=(8, 8), backend='pillow')(floats)
