"""Augmentations and annotation filters of MMDetection 3.x's configs: ``FilterAnnotations``,
``FixScaleResize``, ``RandomShift``, ``CutOut`` and ``AutoAugment``.

Conventions as in :mod:`.geometric`: boxes ``(x1, y1, x2, y2)`` float32 in pixel-edge
coordinates of the current image; masks stay row for row with boxes.
"""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from mmft.registry import TRANSFORMS
from .base import BaseTransform, select_instances
from .geometric import Resize
from .wrappers import RandomChoice


@TRANSFORMS.register_module()
class FilterAnnotations(BaseTransform):
    """Drop instances with too small a box and/or mask.

    Args:
        min_gt_bbox_wh: An instance is kept when its box is wider than ``w`` and taller
            than ``h`` (strictly, as MMDetection).
        min_gt_mask_area: ... and (with ``by_mask``) its mask covers at least this many
            pixels.
        by_box: Filter by box size.
        by_mask: Filter by mask area (needs ``gt_masks``).
        keep_empty: MMDetection's (inverted-sounding) name: when True, a sample whose
            instances are *all* dropped is dropped too (returns None; in training the
            dataset takes another image); when False it goes on without instances.
    """

    def __init__(self,
                 min_gt_bbox_wh: Tuple[float, float] = (1, 1),
                 min_gt_mask_area: int = 1,
                 by_box: bool = True,
                 by_mask: bool = False,
                 keep_empty: bool = True) -> None:
        if not (by_box or by_mask):
            raise ValueError('FilterAnnotations with by_box=False and by_mask=False filters '
                             'nothing; set by_box=True and/or by_mask=True')
        if not isinstance(min_gt_bbox_wh, (tuple, list)) or len(min_gt_bbox_wh) != 2:
            raise ValueError(f'FilterAnnotations min_gt_bbox_wh={min_gt_bbox_wh!r} must be a '
                             'pair (w, h), e.g. (1, 1)')
        self.min_gt_bbox_wh = tuple(min_gt_bbox_wh)
        self.min_gt_mask_area = min_gt_mask_area
        self.by_box = by_box
        self.by_mask = by_mask
        self.keep_empty = keep_empty

    def transform(self, results: dict) -> Optional[dict]:
        boxes = results.get('gt_bboxes')
        if boxes is None:
            raise KeyError('FilterAnnotations needs gt_bboxes; put it after '
                           'LoadAnnotations(with_bbox=True)')
        if len(boxes) == 0:
            return results
        keep = np.ones(len(boxes), dtype=bool)
        if self.by_box:
            keep &= (boxes[:, 2] - boxes[:, 0] > self.min_gt_bbox_wh[0]) & \
                (boxes[:, 3] - boxes[:, 1] > self.min_gt_bbox_wh[1])
        if self.by_mask:
            masks = results.get('gt_masks')
            if masks is None:
                raise KeyError('FilterAnnotations(by_mask=True) needs gt_masks; load them '
                               'with LoadAnnotations(with_mask=True) or set by_mask=False')
            keep &= np.asarray(masks.areas) >= self.min_gt_mask_area
        if not keep.any() and self.keep_empty:
            # an image left without usable objects, as MMDetection: not bad data to count
            return None
        select_instances(results, keep)
        return results


@TRANSFORMS.register_module()
class FixScaleResize(Resize):
    """MMDetection's ``FixScaleResize``: a ``Resize`` whose ``scale_factor`` is the ratio
    of the output to the input size, also with ``keep_ratio``.

    mmft's ``Resize`` already computes it so (it never reports the requested factor when
    rounding makes the image a pixel off), so this is ``Resize`` under MMDetection's name;
    same arguments.
    """


@TRANSFORMS.register_module()
class RandomShift(BaseTransform):
    """Shift the image (and its boxes and masks) by up to ``max_shift_px`` pixels in x and y.

    Boxes are clipped to the image; instances whose clipped box is no wider or taller than
    ``filter_thr_px`` are dropped. When that would drop every instance, the sample is left
    unshifted (as MMDetection). Samples without instances are shifted freely.

    Args:
        prob: Probability of shifting.
        max_shift_px: Largest shift in pixels, each direction.
        filter_thr_px: Width and height a shifted box must exceed.
    """

    def __init__(self, prob: float = 0.5, max_shift_px: int = 32, filter_thr_px: int = 1) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'RandomShift prob={prob} must be in [0, 1]')
        if max_shift_px < 0:
            raise ValueError(f'RandomShift max_shift_px={max_shift_px} must be >= 0')
        self.prob = prob
        self.max_shift_px = max_shift_px
        self.filter_thr_px = int(filter_thr_px)

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        dx = int(np.random.randint(-self.max_shift_px, self.max_shift_px + 1))
        dy = int(np.random.randint(-self.max_shift_px, self.max_shift_px + 1))
        return shift_sample(results, dx, dy, self.filter_thr_px)


def shift_sample(results: dict, dx: int, dy: int, filter_thr_px: int = 1) -> dict:
    """Move image, boxes and masks by ``(dx, dy)`` pixels; see :class:`RandomShift`."""
    img = results['img']
    h, w = img.shape[:2]
    boxes = results.get('gt_bboxes')
    if boxes is not None and len(boxes):
        moved = boxes + np.array([dx, dy, dx, dy], np.float32)
        moved[:, 0::2] = moved[:, 0::2].clip(0, w)
        moved[:, 1::2] = moved[:, 1::2].clip(0, h)
        valid = (moved[:, 2] - moved[:, 0] > filter_thr_px) & \
            (moved[:, 3] - moved[:, 1] > filter_thr_px)
        if not valid.any():
            return results
        results['gt_bboxes'] = moved
        select_instances(results, valid)
    out = np.zeros_like(img)
    dst_x, src_x, dst_y, src_y = max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)
    keep_w, keep_h = max(w - abs(dx), 0), max(h - abs(dy), 0)
    out[dst_y:dst_y + keep_h, dst_x:dst_x + keep_w] = img[src_y:src_y + keep_h,
                                                         src_x:src_x + keep_w]
    results['img'] = out
    masks = results.get('gt_masks')
    if masks is not None:
        masks = masks.translate((h, w), dx, 'horizontal', interpolation='nearest')
        results['gt_masks'] = masks.translate((h, w), dy, 'vertical', interpolation='nearest')
    if results.get('gt_seg_map') is not None:
        seg = results['gt_seg_map']
        shifted = np.full_like(seg, 255)
        shifted[dst_y:dst_y + keep_h, dst_x:dst_x + keep_w] = seg[src_y:src_y + keep_h,
                                                                 src_x:src_x + keep_w]
        results['gt_seg_map'] = shifted
    return results


Pair = Tuple[Union[int, float], Union[int, float]]


@TRANSFORMS.register_module()
class CutOut(BaseTransform):
    """Fill random rectangles of the image with ``fill_in`` (Cutout, DeVries & Taylor 2017).
    Annotations do not change.

    Args:
        n_holes: Number of rectangles, or ``(min, max)`` drawn inclusively.
        cutout_shape: ``(w, h)`` in pixels, or a list to choose from.
        cutout_ratio: ``(w, h)`` as fractions of the image, or a list; give exactly one of
            ``cutout_shape`` and ``cutout_ratio``.
        fill_in: Pixel value of the holes (one per channel).
    """

    def __init__(self,
                 n_holes: Union[int, Tuple[int, int]],
                 cutout_shape: Optional[Union[Pair, List[Pair]]] = None,
                 cutout_ratio: Optional[Union[Pair, List[Pair]]] = None,
                 fill_in: Sequence[Union[int, float]] = (0, 0, 0)) -> None:
        if (cutout_shape is None) == (cutout_ratio is None):
            raise ValueError('CutOut needs exactly one of cutout_shape=(w, h) and '
                             f'cutout_ratio=(w, h); got cutout_shape={cutout_shape}, '
                             f'cutout_ratio={cutout_ratio}')
        if isinstance(n_holes, (tuple, list)):
            if len(n_holes) != 2 or not 0 <= n_holes[0] <= n_holes[1]:
                raise ValueError(f'CutOut n_holes={n_holes} must be (min, max) with '
                                 '0 <= min <= max')
            n_holes = (int(n_holes[0]), int(n_holes[1]))
        else:
            n_holes = (int(n_holes), int(n_holes))
        self.n_holes = n_holes
        self.fill_in = fill_in
        self.with_ratio = cutout_ratio is not None
        candidates = cutout_ratio if self.with_ratio else cutout_shape
        self.candidates = list(candidates) if isinstance(candidates, list) else [candidates]

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        for _ in range(np.random.randint(self.n_holes[0], self.n_holes[1] + 1)):
            x1, y1 = int(np.random.randint(0, w)), int(np.random.randint(0, h))
            cw, ch = self.candidates[np.random.randint(len(self.candidates))]
            if self.with_ratio:
                cw, ch = int(cw * w), int(ch * h)
            img[y1:min(y1 + int(ch), h), x1:min(x1 + int(cw), w)] = self.fill_in
        results['img'] = img
        return results


@TRANSFORMS.register_module()
class AutoAugment(RandomChoice):
    """Run one of ``policies`` (each a list of transform configs), chosen at random.

    MMDetection's DETR-family configs use it to pick between resize / crop recipes.
    MMDetection's default policies (Rotate, ShearX, Color, ... of AutoAugment's paper) are
    not in mmft: give ``policies`` explicitly.

    Args:
        policies: List of policies; each a list of transform configs run in order.
        prob: Probability of each policy; uniform when None.
    """

    def __init__(self, policies: Optional[List[List[dict]]] = None,
                 prob: Optional[List[float]] = None) -> None:
        if not policies or not all(isinstance(p, (list, tuple)) and p for p in policies):
            raise ValueError(
                f'AutoAugment policies={policies!r}: give a non-empty list of policies, each a '
                'non-empty list of transform configs, e.g. [[dict(type="RandomFlip", prob=1.)], '
                '[dict(type="RandomShift", prob=1.)]]. MMDetection\'s default policies need '
                'transforms (Rotate, ShearX, ...) that mmft does not have')
        self.policies = policies
        super().__init__(transforms=list(policies), prob=prob)
