"""Multi-image augmentations of YOLOX / RTMDet (MMDetection 3.x names and arguments):
``CachedMosaic`` and ``CachedMixUp``, which draw their partner images from a cache of
the samples the same pipeline saw before (so they need no dataset wrapper).

Sizes: ``img_scale`` is ``(w, h)``. CachedMosaic outputs a ``(2h, 2w)`` canvas, filled
with ``pad_val``, holding four images (this one top-left, three cached) each resized to
fit ``(w, h)`` and meeting at a random centre in ``center_ratio_range * (w, h)``.
CachedMixUp blends (0.5 / 0.5) this image with a cached one resized to fit ``img_scale``,
scaled by a ratio from ``ratio_range``, maybe flipped, then padded / randomly cropped to
this image's size; the instances of both are kept.

Instances follow their pixels: boxes are scaled, shifted and (``bbox_clip_border``)
clipped; ``gt_masks`` are pasted the same way (as bitmaps); instances left without area
inside the output are dropped with their labels, ignore flags and masks. Until the cache
holds enough samples (5 for the mosaic, 2 for mixup) the sample passes unchanged.
"""
import copy
import random
from typing import List, Optional, Tuple

import cv2
import numpy as np

from mmft.registry import TRANSFORMS
from mmft.structures.masks import BitmapMasks
from .base import BaseTransform, select_instances

_CACHED_KEYS = ('img', 'gt_bboxes', 'gt_bboxes_labels', 'gt_ignore_flags', 'gt_masks')


def _bitmap(masks) -> Optional[np.ndarray]:
    if masks is None:
        return None
    if hasattr(masks, 'to_bitmap'):
        masks = masks.to_bitmap()
    return masks.masks


def _n(results: dict) -> int:
    boxes = results.get('gt_bboxes')
    return 0 if boxes is None else len(boxes)


def _empty_like(results: dict) -> dict:
    return dict(gt_bboxes=np.zeros((0, 4), np.float32),
                gt_bboxes_labels=np.zeros((0,), np.int64),
                gt_ignore_flags=np.zeros((0,), bool))


class _Cache:
    """A bounded list of past samples (what both transforms draw from)."""

    def __init__(self, max_cached_images: int, random_pop: bool, minimum: int, owner: str):
        if max_cached_images < minimum:
            raise ValueError(f'{owner} max_cached_images={max_cached_images} must be at least '
                             f'{minimum} (the images one output needs)')
        self.items: List[dict] = []
        self.max = max_cached_images
        self.random_pop = random_pop

    def push(self, results: dict) -> None:
        self.items.append({k: copy.deepcopy(results[k]) for k in _CACHED_KEYS if k in results})
        if len(self.items) > self.max:
            index = random.randint(0, len(self.items) - 1) if self.random_pop else 0
            self.items.pop(index)


def _finish(results: dict, img: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
            ignore: np.ndarray, masks: Optional[np.ndarray], clip: bool) -> dict:
    h, w = img.shape[:2]
    if clip:
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    # an instance survives when some of its box lies inside the output
    keep = (boxes[:, 2] > np.maximum(boxes[:, 0], 0)) & (boxes[:, 3] > np.maximum(boxes[:, 1], 0)) \
        & (boxes[:, 0] < w) & (boxes[:, 1] < h)
    results['img'] = img
    results['img_shape'] = (h, w)
    results['gt_bboxes'] = boxes.astype(np.float32)
    results['gt_bboxes_labels'] = labels.astype(np.int64)
    results['gt_ignore_flags'] = ignore.astype(bool)
    if masks is not None:
        results['gt_masks'] = BitmapMasks(masks, h, w)
    elif 'gt_masks' in results:
        results['gt_masks'] = BitmapMasks(np.zeros((len(boxes), h, w), np.uint8), h, w)
    select_instances(results, keep)
    return results


@TRANSFORMS.register_module()
class CachedMosaic(BaseTransform):
    """Four-image mosaic from the current sample and three cached ones (module docstring).

    Args:
        img_scale: ``(w, h)`` of each quarter.
        center_ratio_range: where the four images meet, in units of ``img_scale``.
        bbox_clip_border: clip boxes to the canvas.
        pad_val: canvas fill value.
        prob: probability of applying the mosaic.
        max_cached_images: cache size (at least 4).
        random_pop: evict a random cached sample (else the oldest).
    """

    def __init__(self, img_scale: Tuple[int, int] = (640, 640),
                 center_ratio_range: Tuple[float, float] = (0.5, 1.5),
                 bbox_clip_border: bool = True, pad_val: float = 114.0, prob: float = 1.0,
                 max_cached_images: int = 40, random_pop: bool = True) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'CachedMosaic prob must be in [0, 1], got {prob}')
        self.img_scale = tuple(img_scale)
        self.center_ratio_range = center_ratio_range
        self.bbox_clip_border = bbox_clip_border
        self.pad_val = pad_val
        self.prob = prob
        self.max_cached_images = max_cached_images
        self.random_pop = random_pop
        self._cache = _Cache(max_cached_images, random_pop, 4, 'CachedMosaic')

    def transform(self, results: dict) -> dict:
        self._cache.push(results)
        if len(self._cache.items) <= 4 or random.uniform(0, 1) > self.prob:
            return results
        others = [self._cache.items[i] for i in
                  random.sample(range(len(self._cache.items)), 3)]
        parts = [results] + others
        w, h = self.img_scale
        img = results['img']
        canvas = np.full((2 * h, 2 * w) + img.shape[2:], self.pad_val, dtype=img.dtype)
        cx = int(random.uniform(*self.center_ratio_range) * w)
        cy = int(random.uniform(*self.center_ratio_range) * h)
        with_masks = results.get('gt_masks') is not None
        boxes, labels, ignore, masks = [], [], [], []
        for pos, part in zip(('top_left', 'top_right', 'bottom_left', 'bottom_right'), parts):
            pimg = part['img']
            ph, pw = pimg.shape[:2]
            ratio = min(h / ph, w / pw)
            nh, nw = max(int(ph * ratio), 1), max(int(pw * ratio), 1)
            pimg = cv2.resize(pimg, (nw, nh))
            # the paste window on the canvas and the part of the image it shows
            if pos == 'top_left':
                x1, y1, x2, y2 = max(cx - nw, 0), max(cy - nh, 0), cx, cy
                crop = (nw - (x2 - x1), nh - (y2 - y1), nw, nh)
            elif pos == 'top_right':
                x1, y1, x2, y2 = cx, max(cy - nh, 0), min(cx + nw, 2 * w), cy
                crop = (0, nh - (y2 - y1), x2 - x1, nh)
            elif pos == 'bottom_left':
                x1, y1, x2, y2 = max(cx - nw, 0), cy, cx, min(2 * h, cy + nh)
                crop = (nw - (x2 - x1), 0, nw, y2 - y1)
            else:
                x1, y1, x2, y2 = cx, cy, min(cx + nw, 2 * w), min(2 * h, cy + nh)
                crop = (0, 0, x2 - x1, y2 - y1)
            cx1, cy1, cx2, cy2 = crop
            canvas[y1:y2, x1:x2] = pimg[cy1:cy2, cx1:cx2]
            dx, dy = x1 - cx1, y1 - cy1
            pb = part.get('gt_bboxes')
            pb = np.zeros((0, 4), np.float32) if pb is None else np.asarray(pb, np.float32)
            boxes.append(pb * ratio + np.array([dx, dy, dx, dy], np.float32))
            labels.append(np.asarray(part.get('gt_bboxes_labels', np.zeros(len(pb), np.int64))))
            ignore.append(np.asarray(part.get('gt_ignore_flags', np.zeros(len(pb), bool))))
            if with_masks:
                pm = _bitmap(part.get('gt_masks'))
                out = np.zeros((len(pb), 2 * h, 2 * w), np.uint8)
                if pm is not None and len(pm):
                    resized = np.stack([cv2.resize(m, (nw, nh), interpolation=cv2.INTER_NEAREST)
                                        for m in pm])
                    out[:, y1:y2, x1:x2] = resized[:, cy1:cy2, cx1:cx2]
                masks.append(out)
        return _finish(results, canvas, np.concatenate(boxes), np.concatenate(labels),
                       np.concatenate(ignore), np.concatenate(masks) if with_masks else None,
                       self.bbox_clip_border)


@TRANSFORMS.register_module()
class CachedMixUp(BaseTransform):
    """Blend with a cached sample (module docstring).

    Args:
        img_scale: ``(w, h)`` the cached image is fitted into before jittering.
        ratio_range: the scale jitter.
        flip_ratio: probability of flipping the cached image horizontally.
        pad_val: fill value.
        max_iters: draws to find a cached sample with objects.
        bbox_clip_border: clip boxes to the image.
        max_cached_images: cache size (at least 2).
        random_pop: evict a random cached sample (else the oldest).
        prob: probability of applying mixup.
    """

    def __init__(self, img_scale: Tuple[int, int] = (640, 640),
                 ratio_range: Tuple[float, float] = (0.5, 1.5), flip_ratio: float = 0.5,
                 pad_val: float = 114.0, max_iters: int = 15, bbox_clip_border: bool = True,
                 max_cached_images: int = 20, random_pop: bool = True,
                 prob: float = 1.0) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'CachedMixUp prob must be in [0, 1], got {prob}')
        self.img_scale = tuple(img_scale)
        self.ratio_range = ratio_range
        self.flip_ratio = flip_ratio
        self.pad_val = pad_val
        self.max_iters = max_iters
        self.bbox_clip_border = bbox_clip_border
        self.max_cached_images = max_cached_images
        self.random_pop = random_pop
        self.prob = prob
        self._cache = _Cache(max_cached_images, random_pop, 2, 'CachedMixUp')

    def transform(self, results: dict) -> dict:
        self._cache.push(results)
        if len(self._cache.items) <= 1 or random.uniform(0, 1) > self.prob:
            return results
        # the newest cached item is this sample; draw among the others
        for _ in range(self.max_iters):
            other = self._cache.items[random.randint(0, len(self._cache.items) - 2)]
            if _n(other) > 0:
                break
        else:
            return results
        img = results['img']
        th, tw = img.shape[:2]
        w, h = self.img_scale
        oimg = other['img']
        oh, ow = oimg.shape[:2]
        ratio = min(h / oh, w / ow)
        jit = random.uniform(*self.ratio_range)
        flip = random.uniform(0, 1) < self.flip_ratio
        canvas = np.full((h, w) + img.shape[2:], self.pad_val, dtype=np.float32)
        nh, nw = max(int(oh * ratio), 1), max(int(ow * ratio), 1)
        canvas[:nh, :nw] = cv2.resize(oimg, (nw, nh)).astype(np.float32).reshape(
            canvas[:nh, :nw].shape)
        sh, sw = max(int(h * jit), 1), max(int(w * jit), 1)
        canvas = cv2.resize(canvas, (sw, sh)).reshape((sh, sw) + img.shape[2:])
        if flip:
            canvas = canvas[:, ::-1]
        ph, pw = max(sh, th), max(sw, tw)
        padded = np.full((ph, pw) + img.shape[2:], self.pad_val, dtype=np.float32)
        padded[:sh, :sw] = canvas
        yo = random.randint(0, ph - th) if ph > th else 0
        xo = random.randint(0, pw - tw) if pw > tw else 0
        patch = padded[yo:yo + th, xo:xo + tw]
        s = ratio * jit
        ob = np.asarray(other['gt_bboxes'], np.float32) * s
        if flip:
            ob = np.stack([sw - ob[:, 2], ob[:, 1], sw - ob[:, 0], ob[:, 3]], 1)
        ob = ob - np.array([xo, yo, xo, yo], np.float32)
        mixed = (0.5 * img.astype(np.float32) + 0.5 * patch).astype(img.dtype)
        masks = None
        if results.get('gt_masks') is not None:
            om = _bitmap(other.get('gt_masks'))
            om_out = np.zeros((len(ob), th, tw), np.uint8)
            if om is not None and len(om):
                big = np.zeros((len(om), ph, pw), np.uint8)
                for i, m in enumerate(om):
                    m = cv2.resize(m, (nw, nh), interpolation=cv2.INTER_NEAREST)
                    full = np.zeros((h, w), np.uint8)
                    full[:nh, :nw] = m
                    full = cv2.resize(full, (sw, sh), interpolation=cv2.INTER_NEAREST)
                    big[i, :sh, :sw] = full[:, ::-1] if flip else full
                om_out = big[:, yo:yo + th, xo:xo + tw]
            masks = np.concatenate([_bitmap(results['gt_masks']), om_out])
        n = _n(results)
        boxes = np.concatenate([np.asarray(results.get('gt_bboxes', np.zeros((0, 4))),
                                           np.float32).reshape(-1, 4), ob])
        labels = np.concatenate([np.asarray(results.get('gt_bboxes_labels',
                                                        np.zeros(n, np.int64))),
                                 np.asarray(other['gt_bboxes_labels'])])
        ignore = np.concatenate([np.asarray(results.get('gt_ignore_flags', np.zeros(n, bool))),
                                 np.asarray(other.get('gt_ignore_flags',
                                                      np.zeros(len(ob), bool)))])
        return _finish(results, mixed, boxes, labels, ignore, masks, self.bbox_clip_border)
