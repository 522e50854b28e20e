"""Boxes and masks through a 3x3 warp matrix, and YOLOX's ``RandomAffine`` (MMDetection 3.x
name and arguments).

A matrix maps pixel-edge coordinates of the input (``(0, 0)`` is the top-left corner of
the top-left pixel) to those of the output. A box becomes the box of its four warped
corners; a polygon's points are warped and clipped to the output (polygons stay
polygons); a bitmap is warped with nearest sampling, one crop per object: only the
object's own box is read and written, never a full canvas per object.
"""
import math
import random
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from mmft.registry import TRANSFORMS
from mmft.structures.masks import BitmapMasks, PolygonMasks
from .base import BaseTransform

Masks = Union[BitmapMasks, PolygonMasks]
Window = Tuple[int, int, int, int]


def warp_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``(K, 2)`` points through a 3x3 ``matrix`` (projective division included)."""
    homo = np.concatenate([points, np.ones((len(points), 1))], 1) @ np.asarray(
        matrix, np.float64).T
    return homo[:, :2] / homo[:, 2:3]


def warp_boxes(boxes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``(N, 4)`` boxes: the axis-aligned box of each box's four warped corners."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if not len(boxes):
        return boxes.copy()
    x1, y1, x2, y2 = boxes.T
    corners = np.stack([x1, y1, x2, y1, x1, y2, x2, y2], 1).reshape(-1, 2)
    warped = warp_points(corners, matrix).reshape(-1, 4, 2)
    return np.concatenate([warped.min(1), warped.max(1)], 1).astype(np.float32)


def warp_masks(masks: Optional[Masks], matrix: np.ndarray, out_shape: Tuple[int, int],
               window: Optional[Window] = None, count: int = 0,
               out: Optional[np.ndarray] = None, boxes: Optional[np.ndarray] = None) -> Masks:
    """``masks`` warped by ``matrix`` into an ``out_shape`` ``(h, w)`` image.

    Args:
        masks: Bitmap or polygon masks; None gives ``count`` empty polygon masks.
        matrix: 3x3, input pixel-edge coordinates -> output ones.
        out_shape: ``(h, w)`` of the output.
        window: ``(x1, y1, x2, y2)`` of the output the masks may cover (where their image
            is shown); the whole output by default.
        count: Number of instances when ``masks`` is None.
        out: A zeroed ``(N, h, w)`` uint8 array to warp into: the result is then
            :class:`BitmapMasks` on it (polygons are rasterised first). Callers that
            gather several sets into one output allocate it once instead of concatenating.
        boxes: The masks' ``(N, 4)`` boxes in the input: a bitmap is then read only inside
            its box grown by 2 pixels (else inside the box of its pixels, found by a scan).
    """
    h, w = out_shape
    x1, y1, x2, y2 = window if window is not None else (0, 0, w, h)
    x1, y1, x2, y2 = max(int(x1), 0), max(int(y1), 0), min(int(x2), w), min(int(y2), h)
    if masks is None:
        if out is not None:
            return BitmapMasks(out, h, w)
        return PolygonMasks([[] for _ in range(count)], h, w)
    if isinstance(masks, PolygonMasks):
        if out is None:
            return _warp_polygons(masks, matrix, (h, w), (x1, y1, x2, y2))
        masks = masks.to_bitmap()
    if out is None:
        out = np.zeros((len(masks), h, w), np.uint8)
    return _warp_bitmaps(masks, matrix, out, (x1, y1, x2, y2), boxes)


def _warp_polygons(masks: PolygonMasks, matrix: np.ndarray, out_shape: Tuple[int, int],
                   window: Window) -> PolygonMasks:
    h, w = out_shape
    x1, y1, x2, y2 = window
    warped = [[warp_points(p.reshape(-1, 2), matrix).reshape(-1) for p in poly]
              for poly in masks.masks]
    # drop parts with no area so that cropping a polygon with all points at one spot works
    warped = PolygonMasks([[p for p in poly if np.ptp(p[0::2]) > 0 and np.ptp(p[1::2]) > 0]
                           for poly in warped], h, w)
    if x2 <= x1 or y2 <= y1:
        return PolygonMasks([[] for _ in warped.masks], h, w)
    # clip to the window exactly (Sutherland-Hodgman in crop), then back to output coordinates
    return warped.crop(np.array([x1, y1, x2, y2])).expand(h, w, y1, x1)


def _warp_bitmaps(masks: BitmapMasks, matrix: np.ndarray, out: np.ndarray, window: Window,
                  boxes: Optional[np.ndarray]) -> BitmapMasks:
    h, w = out.shape[1:]
    wx1, wy1, wx2, wy2 = window
    if wx2 <= wx1 or wy2 <= wy1 or not len(masks):
        return BitmapMasks(out, h, w)
    matrix = np.asarray(matrix, np.float64)
    affine = np.allclose(matrix[2], (0, 0, 1))
    if boxes is None:
        rows, cols = masks.masks.any(2), masks.masks.any(1)
        spans = [(xs[0], ys[0], xs[-1] + 1, ys[-1] + 1) if len(xs) else None for xs, ys in
                 ((np.flatnonzero(c), np.flatnonzero(r)) for r, c in zip(rows, cols))]
    else:
        spans = [(math.floor(b[0]) - 1, math.floor(b[1]) - 1, math.ceil(b[2]) + 1,
                  math.ceil(b[3]) + 1) for b in np.asarray(boxes, np.float64).reshape(-1, 4)]
    for i, (mask, span) in enumerate(zip(masks.masks, spans)):
        if span is None:
            continue
        # the object's box, one pixel of margin against rounding, warped and cut to the window
        sx1, sy1 = max(int(span[0]) - 1, 0), max(int(span[1]) - 1, 0)
        sx2, sy2 = min(int(span[2]) + 1, masks.width), min(int(span[3]) + 1, masks.height)
        if sx2 <= sx1 or sy2 <= sy1:
            continue
        box = warp_boxes(np.array([[sx1, sy1, sx2, sy2]]), matrix)[0]
        dx1, dy1 = max(int(math.floor(box[0])), wx1), max(int(math.floor(box[1])), wy1)
        dx2, dy2 = min(int(math.ceil(box[2])), wx2), min(int(math.ceil(box[3])), wy2)
        if dx2 <= dx1 or dy2 <= dy1:
            continue
        # crop -> output crop: shift both origins; sample at pixel centres (the half pixels)
        m = translation_matrix(-dx1 - 0.5, -dy1 - 0.5) @ matrix @ \
            translation_matrix(sx1 + 0.5, sy1 + 0.5)
        src = np.ascontiguousarray(mask[sy1:sy2, sx1:sx2])
        if affine:
            patch = cv2.warpAffine(src, m[:2], (dx2 - dx1, dy2 - dy1), flags=cv2.INTER_NEAREST)
        else:
            patch = cv2.warpPerspective(src, m, (dx2 - dx1, dy2 - dy1),
                                        flags=cv2.INTER_NEAREST)
        out[i, dy1:dy2, dx1:dx2] = patch
    return BitmapMasks(out, h, w)


def translation_matrix(x: float, y: float) -> np.ndarray:
    """The 3x3 matrix that shifts points by ``(x, y)``."""
    return np.array([[1, 0, x], [0, 1, y], [0, 0, 1]], np.float64)


class MaskSet(NamedTuple):
    """Instances going into an output: ``boxes`` already in output coordinates; ``masks``
    (None: none annotated) still in their input, moved by ``matrix`` (None: already in
    place) and cut to ``window``; ``src_boxes`` bound the bitmaps in their input."""
    boxes: np.ndarray
    labels: np.ndarray
    ignore: np.ndarray
    masks: Optional[Masks] = None
    matrix: Optional[np.ndarray] = None
    window: Optional[Window] = None
    src_boxes: Optional[np.ndarray] = None


def place_instances(results: dict, img: np.ndarray, sets: Sequence[MaskSet], clip: bool,
                    with_masks: bool) -> dict:
    """Write ``img`` and the instances of ``sets`` into ``results``.

    Boxes are clipped (``clip``); an instance whose box has no area inside ``img`` is
    dropped with its label, ignore flag and mask before its mask is warped, so no work is
    spent on it. Polygons stay polygons unless some set holds bitmaps; bitmaps are warped
    into one output array.
    """
    h, w = img.shape[:2]
    boxes = np.concatenate([np.asarray(s.boxes, np.float32).reshape(-1, 4) for s in sets])
    if clip:
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    keep = (boxes[:, 2] > np.maximum(boxes[:, 0], 0)) & \
        (boxes[:, 3] > np.maximum(boxes[:, 1], 0)) & (boxes[:, 0] < w) & (boxes[:, 1] < h)
    results['img'] = img
    results['img_shape'] = (h, w)
    results['gt_bboxes'] = boxes[keep]
    results['gt_bboxes_labels'] = np.concatenate(
        [np.asarray(s.labels, np.int64).reshape(-1) for s in sets])[keep]
    results['gt_ignore_flags'] = np.concatenate(
        [np.asarray(s.ignore, bool).reshape(-1) for s in sets])[keep]
    if not with_masks:
        return results
    polygons = all(isinstance(s.masks, (PolygonMasks, type(None))) for s in sets)
    out = None if polygons else np.zeros((int(keep.sum()), h, w), np.uint8)
    placed, start, done = [], 0, 0
    for s in sets:
        n = len(s.boxes)
        index = np.flatnonzero(keep[start:start + n])
        start += n
        masks = None if s.masks is None else s.masks[index]
        part_out = None if out is None else out[done:done + len(index)]
        done += len(index)
        if s.matrix is None and masks is not None:
            if part_out is not None:
                part_out[...] = masks.to_ndarray()
            placed.append(masks)
        else:
            src = None if s.src_boxes is None else np.asarray(s.src_boxes)[index]
            placed.append(warp_masks(masks, np.eye(3) if s.matrix is None else s.matrix, (h, w),
                                     s.window, count=len(index), out=part_out, boxes=src))
    results['gt_masks'] = BitmapMasks(out, h, w) if out is not None else \
        PolygonMasks([p for m in placed for p in m.masks], h, w)
    return results


def instances(results: dict) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(boxes, labels, ignore_flags)`` of a sample, empty arrays of the right dtype if absent."""
    boxes = results.get('gt_bboxes')
    boxes = np.zeros((0, 4), np.float32) if boxes is None else \
        np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    labels = results.get('gt_bboxes_labels')
    ignore = results.get('gt_ignore_flags')
    return (boxes, np.zeros(n, np.int64) if labels is None else np.asarray(labels, np.int64),
            np.zeros(n, bool) if ignore is None else np.asarray(ignore, bool))


@TRANSFORMS.register_module()
class RandomAffine(BaseTransform):
    """Random rotation, scaling, shear and translation of the image, boxes and masks.

    The matrix is ``translate @ shear @ rotate @ scale`` about the image origin (as
    YOLOX); the output is the input's size plus ``2 * border`` (YOLOX's negative border
    crops the centre of a 2x mosaic back to 1x).

    Args:
        max_rotate_degree: Rotation drawn from ``[-max, max]`` degrees.
        max_translate_ratio: Translation drawn from ``[-max, max]`` times the output size.
        scaling_ratio_range: Scale drawn from this range.
        max_shear_degree: Shear in x and y drawn from ``[-max, max]`` degrees.
        border: ``(x, y)`` pixels added on each side of the output (negative crops).
        border_val: Fill colour of the uncovered pixels.
        bbox_clip_border: Clip boxes to the output.
    """

    def __init__(self, max_rotate_degree: float = 10.0, max_translate_ratio: float = 0.1,
                 scaling_ratio_range: Tuple[float, float] = (0.5, 1.5),
                 max_shear_degree: float = 2.0, border: Tuple[int, int] = (0, 0),
                 border_val: Tuple[int, int, int] = (114, 114, 114),
                 bbox_clip_border: bool = True) -> None:
        if not 0 <= max_translate_ratio <= 1:
            raise ValueError(f'RandomAffine max_translate_ratio={max_translate_ratio} must be '
                             'in [0, 1] (a fraction of the image size)')
        if not 0 < scaling_ratio_range[0] <= scaling_ratio_range[1]:
            raise ValueError(f'RandomAffine scaling_ratio_range={scaling_ratio_range} must be '
                             '(min, max) with 0 < min <= max, e.g. (0.5, 1.5)')
        self.max_rotate_degree = max_rotate_degree
        self.max_translate_ratio = max_translate_ratio
        self.scaling_ratio_range = scaling_ratio_range
        self.max_shear_degree = max_shear_degree
        self.border = border
        self.border_val = border_val
        self.bbox_clip_border = bbox_clip_border

    def random_matrix(self, height: int, width: int) -> np.ndarray:
        """A random 3x3 warp for an output of ``(height, width)``."""
        angle = math.radians(random.uniform(-self.max_rotate_degree, self.max_rotate_degree))
        scale = random.uniform(*self.scaling_ratio_range)
        shear_x = math.tan(math.radians(random.uniform(-self.max_shear_degree,
                                                       self.max_shear_degree)))
        shear_y = math.tan(math.radians(random.uniform(-self.max_shear_degree,
                                                       self.max_shear_degree)))
        tx = random.uniform(-self.max_translate_ratio, self.max_translate_ratio) * width
        ty = random.uniform(-self.max_translate_ratio, self.max_translate_ratio) * height
        cos, sin = math.cos(angle), math.sin(angle)
        rotate = np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]])
        shear = np.array([[1, shear_x, 0], [shear_y, 1, 0], [0, 0, 1]])
        return translation_matrix(tx, ty) @ shear @ rotate @ np.diag([scale, scale, 1.0])

    def transform(self, results: dict) -> dict:
        img = results['img']
        height = img.shape[0] + self.border[1] * 2
        width = img.shape[1] + self.border[0] * 2
        if height <= 0 or width <= 0:
            raise ValueError(f'RandomAffine border={self.border} leaves no image of the '
                             f'{img.shape[1]}x{img.shape[0]} input; use a border above '
                             '-size/2')
        matrix = self.random_matrix(height, width)
        out = cv2.warpAffine(img, matrix[:2].astype(np.float32), (width, height),
                             borderValue=self.border_val)
        boxes, labels, ignore = instances(results)
        masks = MaskSet(warp_boxes(boxes, matrix), labels, ignore, results.get('gt_masks'),
                        matrix, src_boxes=boxes)
        return place_instances(results, out, [masks], self.bbox_clip_border,
                               results.get('gt_masks') is not None)
