"""Multi-image augmentations of YOLOX / RTMDet (MMDetection 3.x names and arguments).

``Mosaic`` and ``MixUp`` take their partner images from ``results['mix_results']``, which
:class:`~mmft.datasets.MultiImageMixDataset` fills from the indexes that their
``get_indexes`` draws. ``CachedMosaic`` and ``CachedMixUp`` draw them from a cache of the
samples the same pipeline saw before (so they need no dataset wrapper). Each pair shares
one placement: :func:`mosaic` and :func:`mixup` below.

Sizes: ``img_scale`` is ``(w, h)``. A mosaic is a ``(2h, 2w)`` canvas, filled with
``pad_val``, holding four images (this one top-left) each resized to fit ``(w, h)`` and
meeting at a random centre in ``center_ratio_range * (w, h)``. MixUp blends (0.5 / 0.5)
this image with another one resized to fit ``img_scale``, scaled by a ratio from
``ratio_range``, maybe flipped, then padded / randomly cropped to this image's size; the
instances of both are kept.

Instances follow their pixels: boxes are scaled, shifted and (``bbox_clip_border``)
clipped; ``gt_masks`` go through the same matrix (polygons stay polygons, bitmaps are
warped one object crop at a time); instances left without area inside the output are
dropped with their labels, ignore flags and masks. The cached variants pass a sample
unchanged until the cache holds enough samples (5 for the mosaic, 2 for mixup).
"""
import copy
import random
from typing import List, Sequence, Tuple, Union

import cv2
import numpy as np

from mmft.registry import TRANSFORMS
from .affine import MaskSet, translation_matrix, instances, place_instances, warp_boxes
from .base import BaseTransform

_CACHED_KEYS = ('img', 'gt_bboxes', 'gt_bboxes_labels', 'gt_ignore_flags', 'gt_masks')
_CORNERS = ('top_left', 'top_right', 'bottom_left', 'bottom_right')


def _n(results: dict) -> int:
    boxes = results.get('gt_bboxes')
    return 0 if boxes is None else len(boxes)


def _paste_window(corner: str, center: Tuple[int, int], size: Tuple[int, int],
                  canvas: Tuple[int, int]) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """Where an image of ``size`` ``(w, h)`` lands on a ``canvas`` ``(w, h)`` at ``corner``
    of ``center``: the canvas window and the part of the image it shows."""
    (cx, cy), (nw, nh), (cw, ch) = center, size, canvas
    x1, x2 = (max(cx - nw, 0), cx) if corner.endswith('left') else (cx, min(cx + nw, cw))
    y1, y2 = (max(cy - nh, 0), cy) if corner.startswith('top') else (cy, min(cy + nh, ch))
    sx1 = nw - (x2 - x1) if corner.endswith('left') else 0
    sy1 = nh - (y2 - y1) if corner.startswith('top') else 0
    return (x1, y1, x2, y2), (sx1, sy1, sx1 + x2 - x1, sy1 + y2 - y1)


def mosaic(parts: Sequence[dict], img_scale: Tuple[int, int], center: Tuple[int, int],
           pad_val: Union[float, Sequence[float]], clip: bool) -> dict:
    """Four samples on one ``(2h, 2w)`` canvas meeting at ``center`` ``(x, y)``; returns the
    first sample's dict, updated."""
    results = parts[0]
    w, h = img_scale
    img = results['img']
    canvas = np.empty((2 * h, 2 * w) + img.shape[2:], dtype=img.dtype)
    canvas[...] = pad_val
    sets = []
    for corner, part in zip(_CORNERS, parts):
        pimg = part['img']
        ph, pw = pimg.shape[:2]
        ratio = min(h / ph, w / pw)
        nw, nh = max(int(pw * ratio), 1), max(int(ph * ratio), 1)
        (x1, y1, x2, y2), (sx1, sy1, sx2, sy2) = _paste_window(corner, center, (nw, nh),
                                                               (2 * w, 2 * h))
        canvas[y1:y2, x1:x2] = cv2.resize(pimg, (nw, nh)).reshape(
            (nh, nw) + img.shape[2:])[sy1:sy2, sx1:sx2]
        matrix = translation_matrix(x1 - sx1, y1 - sy1) @ np.diag([ratio, ratio, 1.0])
        boxes, labels, ignore = instances(part)
        sets.append(MaskSet(warp_boxes(boxes, matrix), labels, ignore, part.get('gt_masks'),
                            matrix, (x1, y1, x2, y2), boxes))
    return place_instances(results, canvas, sets, clip, results.get('gt_masks') is not None)


def mixup(results: dict, other: dict, img_scale: Tuple[int, int], jitter: float, flip: bool,
          pad_val: Union[float, Sequence[float]], clip: bool) -> dict:
    """Blend ``other`` (fitted to ``img_scale``, scaled by ``jitter``, maybe flipped, randomly
    cropped to this image's size) into ``results``; the instances of both are kept."""
    img = results['img']
    th, tw = img.shape[:2]
    w, h = img_scale
    oimg = other['img']
    oh, ow = oimg.shape[:2]
    ratio = min(h / oh, w / ow)
    # in the image's dtype, and only the window this image shows: no float full-size canvases
    canvas = np.empty((h, w) + img.shape[2:], dtype=img.dtype)
    canvas[...] = pad_val
    nh, nw = max(int(oh * ratio), 1), max(int(ow * ratio), 1)
    canvas[:nh, :nw] = cv2.resize(oimg, (nw, nh)).reshape(canvas[:nh, :nw].shape)
    sh, sw = max(int(h * jitter), 1), max(int(w * jitter), 1)
    canvas = cv2.resize(canvas, (sw, sh)).reshape((sh, sw) + img.shape[2:])
    if flip:
        canvas = canvas[:, ::-1]
    ph, pw = max(sh, th), max(sw, tw)
    yo = random.randint(0, ph - th) if ph > th else 0
    xo = random.randint(0, pw - tw) if pw > tw else 0
    patch = np.empty_like(img)
    patch[...] = pad_val
    y2, x2 = min(sh, yo + th), min(sw, xo + tw)
    patch[:max(y2 - yo, 0), :max(x2 - xo, 0)] = canvas[yo:y2, xo:x2]
    s = ratio * jitter
    # other's pixels -> this image's: scale, maybe mirror in the jittered canvas, crop offset
    matrix = np.diag([s, s, 1.0])
    if flip:
        matrix = np.array([[-1, 0, sw], [0, 1, 0], [0, 0, 1]], np.float64) @ matrix
    matrix = translation_matrix(-xo, -yo) @ matrix
    ob, ol, oi = instances(other)
    if img.dtype == np.uint8:  # the truncated mean, as 0.5 * a + 0.5 * b cast to uint8
        mixed = ((img.astype(np.uint16) + patch) >> 1).astype(np.uint8)
    else:
        mixed = (0.5 * img + 0.5 * patch).astype(img.dtype)
    sets = [MaskSet(*instances(results), masks=results.get('gt_masks')),
            MaskSet(warp_boxes(ob, matrix), ol, oi, other.get('gt_masks'), matrix, src_boxes=ob)]
    return place_instances(results, mixed, sets, clip, results.get('gt_masks') is not None)


def _mix_results(results: dict, owner: str, count: int) -> List[dict]:
    mix = results.get('mix_results')
    if mix is None or len(mix) != count:
        raise ValueError(f"{owner} needs results['mix_results'] with {count} sample(s), got "
                         f'{None if mix is None else len(mix)}: wrap the dataset in '
                         f'MultiImageMixDataset (it calls get_indexes), or use Cached{owner}')
    return list(mix)


def _has_instances(dataset, index: int) -> bool:
    """Whether sample ``index`` has boxes, from its annotation when the dataset keeps one
    (no image decoded), else by loading it."""
    info = dataset.get_data_info(index) if hasattr(dataset, 'get_data_info') else None
    if isinstance(info, dict) and 'instances' in info:
        return len(info['instances']) > 0
    return _n(dataset[index]) > 0


@TRANSFORMS.register_module()
class Mosaic(BaseTransform):
    """Four-image mosaic of this sample and the three in ``results['mix_results']``.

    Args:
        img_scale: ``(w, h)`` of each quarter.
        center_ratio_range: where the four images meet, in units of ``img_scale``.
        bbox_clip_border: clip boxes to the canvas.
        pad_val: canvas fill value.
        prob: probability of applying the mosaic.
    """

    def __init__(self, img_scale: Tuple[int, int] = (640, 640),
                 center_ratio_range: Tuple[float, float] = (0.5, 1.5),
                 bbox_clip_border: bool = True, pad_val: float = 114.0,
                 prob: float = 1.0) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'{type(self).__name__} prob must be in [0, 1], got {prob}')
        self.img_scale = tuple(img_scale)
        self.center_ratio_range = center_ratio_range
        self.bbox_clip_border = bbox_clip_border
        self.pad_val = pad_val
        self.prob = prob

    def get_indexes(self, dataset) -> List[int]:
        """Three random indexes of ``dataset`` (the other quarters)."""
        return [random.randint(0, len(dataset) - 1) for _ in range(3)]

    def transform(self, results: dict) -> dict:
        if random.uniform(0, 1) > self.prob:
            return results
        return self._mix(results, _mix_results(results, 'Mosaic', 3))

    def _mix(self, results: dict, others: List[dict]) -> dict:
        w, h = self.img_scale
        center = (int(random.uniform(*self.center_ratio_range) * w),
                  int(random.uniform(*self.center_ratio_range) * h))
        return mosaic([results] + others, self.img_scale, center, self.pad_val,
                      self.bbox_clip_border)


class _Cache:
    """A bounded list of past samples (what the cached transforms draw from)."""

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


@TRANSFORMS.register_module()
class CachedMosaic(Mosaic):
    """Four-image mosaic from the current sample and three cached ones (module docstring).

    Args:
        img_scale, center_ratio_range, bbox_clip_border, pad_val, prob: as :class:`Mosaic`.
        max_cached_images: cache size (at least 4).
        random_pop: evict a random cached sample (else the oldest).
    """

    def __init__(self, img_scale: Tuple[int, int] = (640, 640),
                 center_ratio_range: Tuple[float, float] = (0.5, 1.5),
                 bbox_clip_border: bool = True, pad_val: float = 114.0, prob: float = 1.0,
                 max_cached_images: int = 40, random_pop: bool = True) -> None:
        super().__init__(img_scale, center_ratio_range, bbox_clip_border, pad_val, prob)
        self.max_cached_images = max_cached_images
        self.random_pop = random_pop
        self._cache = _Cache(max_cached_images, random_pop, 4, 'CachedMosaic')

    get_indexes = None  # the cache, not the dataset, supplies the partners

    def transform(self, results: dict) -> dict:
        self._cache.push(results)
        if len(self._cache.items) <= 4 or random.uniform(0, 1) > self.prob:
            return results
        others = [self._cache.items[i] for i in
                  random.sample(range(len(self._cache.items)), 3)]
        return self._mix(results, others)


@TRANSFORMS.register_module()
class MixUp(BaseTransform):
    """Blend with the sample in ``results['mix_results']`` (module docstring).

    Args:
        img_scale: ``(w, h)`` the other image is fitted into before jittering.
        ratio_range: the scale jitter.
        flip_ratio: probability of flipping the other image horizontally.
        pad_val: fill value.
        max_iters: draws to find a sample with objects.
        bbox_clip_border: clip boxes to the image.
    """

    def __init__(self, img_scale: Tuple[int, int] = (640, 640),
                 ratio_range: Tuple[float, float] = (0.5, 1.5), flip_ratio: float = 0.5,
                 pad_val: float = 114.0, max_iters: int = 15,
                 bbox_clip_border: bool = True) -> None:
        self.img_scale = tuple(img_scale)
        self.ratio_range = ratio_range
        self.flip_ratio = flip_ratio
        self.pad_val = pad_val
        self.max_iters = max_iters
        self.bbox_clip_border = bbox_clip_border

    def get_indexes(self, dataset) -> int:
        """A random index of ``dataset``, one with objects if ``max_iters`` draws find one."""
        for _ in range(self.max_iters):
            index = random.randint(0, len(dataset) - 1)
            if _has_instances(dataset, index):
                break
        return index

    def transform(self, results: dict) -> dict:
        other = _mix_results(results, 'MixUp', 1)[0]
        if _n(other) == 0:
            return results
        return self._mix(results, other)

    def _mix(self, results: dict, other: dict) -> dict:
        jitter = random.uniform(*self.ratio_range)
        flip = random.uniform(0, 1) < self.flip_ratio
        return mixup(results, other, self.img_scale, jitter, flip, self.pad_val,
                     self.bbox_clip_border)


@TRANSFORMS.register_module()
class CachedMixUp(MixUp):
    """Blend with a cached sample (module docstring).

    Args:
        img_scale, ratio_range, flip_ratio, pad_val, bbox_clip_border: as :class:`MixUp`.
        max_iters: draws to find a cached sample with objects.
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
        super().__init__(img_scale, ratio_range, flip_ratio, pad_val, max_iters,
                         bbox_clip_border)
        self.max_cached_images = max_cached_images
        self.random_pop = random_pop
        self.prob = prob
        self._cache = _Cache(max_cached_images, random_pop, 2, 'CachedMixUp')

    get_indexes = None  # the cache, not the dataset, supplies the partner

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
        return self._mix(results, other)
