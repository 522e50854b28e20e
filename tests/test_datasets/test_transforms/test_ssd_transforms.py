"""Expand and MinIoURandomCrop: image, boxes and (bitmap / polygon) masks stay aligned;
the crop's IoU condition holds; empty inputs and results work."""
import numpy as np
import pytest
import torch

from mmft.datasets.transforms import Expand, MinIoURandomCrop
from mmft.structures import bbox_overlaps
from mmft.structures.masks import BitmapMasks
from tests.test_datasets.test_transforms.transform_samples import BOXES, H, W, assert_aligned


def test_expand_places_the_image_on_a_mean_canvas(sample):
    np.random.seed(3)
    img = sample['img'].copy()
    out = Expand(mean=[10, 20, 30], to_rgb=True, ratio_range=(2, 3), prob=1.0)(sample)
    h, w = out['img'].shape[:2]
    assert 2 * H <= h <= 3 * H and 2 * W <= w <= 3 * W
    left, top = (out['gt_bboxes'][0, :2] - BOXES[0, :2]).astype(int)
    assert np.array_equal(out['img'][top:top + H, left:left + W], img)
    outside_row = 0 if top > 0 else h - 1  # the canvas is >= 2H high: a row is outside
    assert (out['img'][outside_row] == [30, 20, 10]).all()  # RGB mean, filled as BGR
    assert_aligned(out)


def test_expand_probability_and_bad_arguments(sample):
    np.random.seed(0)
    assert Expand(prob=0.0)(sample)['img'].shape == (H, W, 3)
    with pytest.raises(ValueError, match='ratio_range'):
        Expand(ratio_range=(0.5, 2))
    with pytest.raises(ValueError, match='3 values'):
        Expand(mean=[1, 2])


def test_min_iou_random_crop_keeps_iou_and_alignment(sample):
    for seed in range(12):
        np.random.seed(seed)
        crop = MinIoURandomCrop(min_ious=(0.1, 0.3), min_crop_size=0.3)
        results = {k: (v.copy() if hasattr(v, 'copy') else v) for k, v in sample.items()}
        out = crop(results)
        h, w = out['img'].shape[:2]
        assert_aligned(out)
        if (h, w) != (H, W):
            # kept boxes: centre inside the crop; all original boxes overlap it enough
            assert len(out['gt_bboxes']) >= 1
            assert (out['gt_bboxes'] >= 0).all()
            assert (out['gt_bboxes'][:, 2] <= w).all() and (out['gt_bboxes'][:, 3] <= h).all()


def test_min_iou_random_crop_iou_bound_with_a_fixed_draw(monkeypatch):
    """Mode 0.5 forced: the accepted crop overlaps the box by IoU >= 0.5."""
    img = np.zeros((100, 100, 3), np.uint8)
    box = np.array([[10, 10, 90, 90]], np.float32)
    masks = BitmapMasks(np.pad(np.ones((1, 80, 80), np.uint8), ((0, 0), (10, 10), (10, 10))),
                        100, 100)
    crop = MinIoURandomCrop(min_ious=(0.5, ), min_crop_size=0.3)
    monkeypatch.setattr(np.random, 'randint', lambda n: 1)  # sample_mode[1] == 0.5
    np.random.seed(1)
    out = crop(dict(img=img, img_shape=(100, 100), gt_bboxes=box.copy(),
                    gt_bboxes_labels=np.array([2]), gt_ignore_flags=np.array([False]),
                    gt_masks=masks))
    h, w = out['img'].shape[:2]
    assert (h, w) != (100, 100)
    assert out['gt_bboxes_labels'].tolist() == [2]
    np.testing.assert_allclose(out['gt_masks'].get_bboxes().numpy(), out['gt_bboxes'])
    # the crop window is where the box moved from: IoU of window and box >= 0.5
    x1, y1 = 10 - min(out['gt_bboxes'][0, 0], 10), 10 - min(out['gt_bboxes'][0, 1], 10)
    assert x1 >= 0 and y1 >= 0
    patch = torch.tensor([[x1, y1, x1 + w, y1 + h]], dtype=torch.float32)
    assert bbox_overlaps(patch, torch.from_numpy(box)).item() >= 0.5 - 1e-6


def test_min_iou_random_crop_without_boxes_crops_the_image_only():
    np.random.seed(0)
    results = dict(img=np.ones((40, 40, 3), np.uint8), img_shape=(40, 40),
                   gt_bboxes=np.zeros((0, 4), np.float32),
                   gt_bboxes_labels=np.zeros(0, np.int64), gt_ignore_flags=np.zeros(0, bool),
                   gt_masks=BitmapMasks(np.zeros((0, 40, 40), np.uint8), 40, 40))
    shapes = set()
    for _ in range(10):
        out = MinIoURandomCrop()(dict(results))
        shapes.add(out['img'].shape[:2])
        assert out['gt_bboxes'].shape == (0, 4) and len(out['gt_masks']) == 0
    assert len(shapes) > 1  # some draws cropped
