"""SSD-style augmentations (MMDetection 3.x names and arguments): zoom out, IoU-bounded crop.

``Expand`` places the image at a random spot of a canvas ``ratio`` times larger, filled with
the dataset mean (given in RGB when ``to_rgb``, as the data preprocessor's ``mean``).
``MinIoURandomCrop`` draws a mode from ``(1, *min_ious, 0)``: 1 keeps the image; otherwise up
to 50 crops (each side in ``[min_crop_size, 1]`` of the image, aspect ``h / w`` in
``[0.5, 2]``) are tried until one overlaps every gt box by IoU >= the mode and holds at least
one box centre; the boxes whose centres lie inside stay (clipped), with their masks, labels
and ignore flags. An image without boxes is cropped with no IoU condition.
Both keep image, boxes, masks and the semantic map aligned.
"""
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from mmft.registry import TRANSFORMS
from mmft.structures import bbox_overlaps
from .base import BaseTransform, select_instances


@TRANSFORMS.register_module()
class Expand(BaseTransform):
    """Zoom out: a ``ratio`` x larger mean-filled canvas with the image inside.

    Args:
        mean: fill value per channel (RGB when ``to_rgb``; the image is BGR).
        to_rgb: ``mean`` is RGB, reverse it for the BGR image.
        ratio_range: canvas size over image size, drawn uniformly.
        seg_ignore_label: fill of the semantic map's new area.
        prob: probability of expanding at all.
    """

    def __init__(self, mean: Sequence[float] = (0, 0, 0), to_rgb: bool = True,
                 ratio_range: Tuple[float, float] = (1, 4),
                 seg_ignore_label: Optional[int] = None, prob: float = 0.5) -> None:
        if len(ratio_range) != 2 or not 1 <= ratio_range[0] <= ratio_range[1]:
            raise ValueError(f'Expand ratio_range={ratio_range!r} must be (min, max) with '
                             '1 <= min <= max')
        if len(mean) != 3:
            raise ValueError(f'Expand mean={mean!r} needs 3 values (one per channel)')
        self.to_rgb = to_rgb
        self.mean = tuple(mean[::-1]) if to_rgb else tuple(mean)
        self.ratio_range = tuple(ratio_range)
        self.seg_ignore_label = seg_ignore_label
        self.prob = prob

    def transform(self, results: dict) -> dict:
        if np.random.uniform(0, 1) > self.prob:
            return results
        img = results['img']
        h, w = img.shape[:2]
        ratio = np.random.uniform(*self.ratio_range)
        new_h, new_w = int(h * ratio), int(w * ratio)
        left = int(np.random.uniform(0, w * ratio - w))
        top = int(np.random.uniform(0, h * ratio - h))
        shape = (new_h, new_w) + img.shape[2:]
        canvas = np.empty(shape, img.dtype)
        canvas[...] = np.asarray(self.mean if img.ndim == 3 else self.mean[0]).astype(img.dtype)
        canvas[top:top + h, left:left + w] = img
        results['img'] = canvas
        results['img_shape'] = (new_h, new_w)
        if results.get('gt_bboxes') is not None:
            results['gt_bboxes'] = results['gt_bboxes'] + \
                np.array([left, top, left, top], dtype=results['gt_bboxes'].dtype)
        if results.get('gt_masks') is not None:
            results['gt_masks'] = results['gt_masks'].expand(new_h, new_w, top, left)
        if results.get('gt_seg_map') is not None:
            seg = results['gt_seg_map']
            if self.seg_ignore_label is None:
                raise ValueError('Expand needs seg_ignore_label to fill the semantic map '
                                 'outside the image, e.g. seg_ignore_label=255')
            out = np.full((new_h, new_w), self.seg_ignore_label, dtype=seg.dtype)
            out[top:top + h, left:left + w] = seg
            results['gt_seg_map'] = out
        return results


@TRANSFORMS.register_module()
class MinIoURandomCrop(BaseTransform):
    """Random crop whose IoU with every gt box is at least a drawn minimum.

    Args:
        min_ious: the IoU minimums to draw from (plus 1: no crop, and 0: any crop).
        min_crop_size: smallest crop side as a fraction of the image side.
        bbox_clip_border: clip the kept boxes to the crop.
    """

    def __init__(self, min_ious: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9),
                 min_crop_size: float = 0.3, bbox_clip_border: bool = True) -> None:
        if not 0 < min_crop_size <= 1:
            raise ValueError(f'MinIoURandomCrop min_crop_size={min_crop_size} must be in (0, 1]')
        self.min_ious = tuple(min_ious)
        self.sample_mode = (1, *min_ious, 0)
        self.min_crop_size = min_crop_size
        self.bbox_clip_border = bbox_clip_border

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        boxes = results.get('gt_bboxes')
        if boxes is None:
            boxes = np.zeros((0, 4), np.float32)
        while True:
            min_iou = self.sample_mode[np.random.randint(len(self.sample_mode))]
            if min_iou == 1:
                return results
            for _ in range(50):
                new_w = np.random.uniform(self.min_crop_size * w, w)
                new_h = np.random.uniform(self.min_crop_size * h, h)
                if not 0.5 <= new_h / new_w <= 2:
                    continue
                left = np.random.uniform(w - new_w)
                top = np.random.uniform(h - new_h)
                patch = np.array([int(left), int(top), int(left + new_w), int(top + new_h)])
                if patch[2] == patch[0] or patch[3] == patch[1]:
                    continue  # no line or point crops
                if len(boxes):
                    ious = bbox_overlaps(torch.from_numpy(patch[None].astype(np.float32)),
                                         torch.from_numpy(np.asarray(boxes, np.float32)))
                    if ious.min() < min_iou:
                        continue
                    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
                    inside = (centers[:, 0] > patch[0]) & (centers[:, 1] > patch[1]) & \
                        (centers[:, 0] < patch[2]) & (centers[:, 1] < patch[3])
                    if not inside.any():
                        continue
                    self._crop_instances(results, inside, patch)
                results['img'] = img[patch[1]:patch[3], patch[0]:patch[2]]
                results['img_shape'] = results['img'].shape[:2]
                if results.get('gt_seg_map') is not None:
                    results['gt_seg_map'] = \
                        results['gt_seg_map'][patch[1]:patch[3], patch[0]:patch[2]]
                return results

    def _crop_instances(self, results: dict, inside: np.ndarray, patch: np.ndarray) -> None:
        masks = results.get('gt_masks')
        results['gt_masks'] = None  # cropped below, after the others are selected
        select_instances(results, inside)
        boxes = results['gt_bboxes'] - np.array([patch[0], patch[1]] * 2, np.float32)
        if self.bbox_clip_border:
            ph, pw = patch[3] - patch[1], patch[2] - patch[0]
            boxes[:, 0::2] = boxes[:, 0::2].clip(0, pw)
            boxes[:, 1::2] = boxes[:, 1::2].clip(0, ph)
        results['gt_bboxes'] = boxes.astype(np.float32)
        if masks is not None:
            results['gt_masks'] = masks[np.flatnonzero(inside)].crop(patch)
        else:
            results.pop('gt_masks')
