"""A sample with rectangular instances, whose masks' tight boxes are exactly the gt boxes."""
import numpy as np

from mmft.structures.masks import BitmapMasks, PolygonMasks

H, W = 48, 64
BOXES = np.array([[4, 6, 20, 18], [30, 10, 60, 40], [50, 30, 64, 48]], np.float32)


def make_results(mask_type='bitmap', seed=0):
    rng = np.random.default_rng(seed)
    if mask_type == 'bitmap':
        masks = np.zeros((len(BOXES), H, W), np.uint8)
        for m, (x1, y1, x2, y2) in zip(masks, BOXES.astype(int)):
            m[y1:y2, x1:x2] = 1
        gt_masks = BitmapMasks(masks, H, W)
    else:
        gt_masks = PolygonMasks([[np.array([x1, y1, x2, y1, x2, y2, x1, y2], float)]
                                 for x1, y1, x2, y2 in BOXES], H, W)
    return dict(img=rng.integers(0, 256, (H, W, 3), dtype=np.uint8), img_shape=(H, W),
                ori_shape=(H, W), gt_bboxes=BOXES.copy(),
                gt_bboxes_labels=np.arange(len(BOXES), dtype=np.int64),
                gt_ignore_flags=np.array([False, False, True]), gt_masks=gt_masks)


def assert_aligned(results, atol=0.0):
    """Image, masks and boxes describe the same instances in the same frame."""
    h, w = results['img'].shape[:2]
    masks = results['gt_masks']
    assert results['img_shape'] == (h, w) and (masks.height, masks.width) == (h, w)
    n = len(results['gt_bboxes'])
    assert len(masks) == len(results['gt_bboxes_labels']) == len(results['gt_ignore_flags']) == n
    np.testing.assert_allclose(masks.get_bboxes().numpy(), results['gt_bboxes'], atol=atol)
