"""Geometric transforms (MMDetection 3.x's names and arguments): image, boxes, masks and
semantic map move together.

Conventions: ``scale`` and Pad's ``size`` are ``(w, h)`` as in mmcv; with ``keep_ratio`` a
``scale`` ``(a, b)`` bounds the long edge by ``max(a, b)`` and the short edge by
``min(a, b)``. RandomCrop's absolute ``crop_size`` is ``(w, h)`` too. Boxes use pixel-edge
coordinates, so a horizontal flip maps ``x`` to ``w - x`` and flipping twice is the
identity.
"""
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from mmft.registry import TRANSFORMS
from mmft.structures.masks import INTERPOLATIONS, rescale_size
from .base import BaseTransform, select_instances

Scale = Tuple[int, int]
# mmcv's names -> Pillow's resampling filters (the 'pillow' resize backend)
_PILLOW_FILTERS = {'nearest': 0, 'lanczos': 1, 'bilinear': 2, 'bicubic': 3, 'box': 4,
                   'hamming': 5}
_FLIP_CODES = {'horizontal': 1, 'vertical': 0, 'diagonal': -1}  # cv2.flip's flipCode


def _is_pair(value) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 2 and \
        all(isinstance(v, (int, float, np.number)) for v in value)


def _clip_boxes(boxes: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    h, w = shape
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    return boxes


@TRANSFORMS.register_module()
class Resize(BaseTransform):
    """Resize the image, boxes, masks and semantic map to ``scale`` or by ``scale_factor``.

    Args:
        scale: Target ``(w, h)`` (an int means square); used when both are given.
        scale_factor: A float, or ``(w_factor, h_factor)``.
        keep_ratio: Keep the aspect ratio: ``scale`` bounds the long and short edges.
        clip_object_border: Clip boxes to the resized image.
        backend: ``'cv2'`` or ``'pillow'`` (the image only, as mmcv; masks and maps are
            resized the same way either way).
        interpolation: ``'nearest'``, ``'bilinear'``, ``'bicubic'``, ``'area'`` or ``'lanczos'``
            (``'pillow'``: ``'box'`` and ``'hamming'`` too, ``'area'`` not).
    """

    def __init__(self,
                 scale: Optional[Union[int, Scale]] = None,
                 scale_factor: Optional[Union[float, Tuple[float, float]]] = None,
                 keep_ratio: bool = False,
                 clip_object_border: bool = True,
                 backend: str = 'cv2',
                 interpolation: str = 'bilinear') -> None:
        if scale is None and scale_factor is None:
            raise ValueError('Resize needs scale=(w, h) or scale_factor; got neither')
        if backend not in ('cv2', 'pillow'):
            raise ValueError(f"Resize backend={backend!r} is unknown; use 'cv2' or 'pillow'")
        known = _PILLOW_FILTERS if backend == 'pillow' else INTERPOLATIONS
        if interpolation not in known:
            raise ValueError(f'Resize interpolation={interpolation!r} is unknown with '
                             f'backend={backend!r}; use one of {list(known)}')
        self.scale = (scale, scale) if isinstance(scale, int) else scale
        if isinstance(scale_factor, (int, float)):
            scale_factor = (float(scale_factor), float(scale_factor))
        self.scale_factor = scale_factor
        self.keep_ratio = keep_ratio
        self.clip_object_border = clip_object_border
        self.backend = backend
        self.interpolation = interpolation

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        if self.scale:
            target = tuple(self.scale)
        else:
            fw, fh = self.scale_factor
            target = (int(w * fw + 0.5), int(h * fh + 0.5))
        new_w, new_h = rescale_size((w, h), target)[0] if self.keep_ratio else target
        results['img'] = self._resize_image(img, (new_w, new_h))
        results['img_shape'] = (new_h, new_w)
        results['scale'] = target
        results['scale_factor'] = (new_w / w, new_h / h)
        results['keep_ratio'] = self.keep_ratio
        if results.get('gt_bboxes') is not None:
            # metrics that read gt from the samples need original-image boxes: say so
            results['gt_rescaled'] = results.get('gt_rescaled', False) or (new_w, new_h) != (w, h)
            boxes = results['gt_bboxes'] * np.array([new_w / w, new_h / h] * 2, np.float32)
            results['gt_bboxes'] = _clip_boxes(boxes, (new_h, new_w)) \
                if self.clip_object_border else boxes
        if results.get('gt_masks') is not None:
            # resize to the image's exact size, so masks and image can never drift apart
            results['gt_masks'] = results['gt_masks'].resize((new_h, new_w))
        if results.get('gt_seg_map') is not None:
            results['gt_seg_map'] = cv2.resize(results['gt_seg_map'], (new_w, new_h),
                                               interpolation=cv2.INTER_NEAREST)
        return results

    def _resize_image(self, img: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
        if self.backend == 'cv2':
            return cv2.resize(img, size, interpolation=INTERPOLATIONS[self.interpolation])
        from PIL import Image  # torchvision's dependency
        if img.dtype != np.uint8:
            raise TypeError(f"Resize backend='pillow' needs a uint8 image, got {img.dtype}; "
                            "use backend='cv2' after float transforms")
        resized = Image.fromarray(img).resize(size, _PILLOW_FILTERS[self.interpolation])
        return np.array(resized)  # writable, unlike asarray of a PIL image


@TRANSFORMS.register_module()
class RandomResize(BaseTransform):
    """Resize to a random scale.

    Args:
        scale: ``[(w0, h0), (w1, h1)]``: each edge drawn uniformly between the two
            (inclusive); or one ``(w, h)`` with ``ratio_range``.
        ratio_range: ``(min, max)``: ``scale`` times a ratio drawn uniformly from it.
        resize_type: Type of the resize transform that does the work.
        **resize_kwargs: Its other arguments (``keep_ratio``, ``clip_object_border``, ...).
    """

    def __init__(self,
                 scale: Union[Scale, Sequence[Scale]],
                 ratio_range: Optional[Tuple[float, float]] = None,
                 resize_type: str = 'Resize',
                 **resize_kwargs) -> None:
        if ratio_range is not None and not _is_pair(scale):
            raise ValueError(f'RandomResize with ratio_range needs one scale (w, h), got {scale!r}')
        if ratio_range is None and not (len(scale) == 2 and all(_is_pair(s) for s in scale)):
            raise ValueError(f'RandomResize scale={scale!r}: give two scales [(w0, h0), (w1, h1)] '
                             'to draw between, or one (w, h) with ratio_range=(min, max)')
        self.scale = scale
        self.ratio_range = ratio_range
        first = tuple(scale) if ratio_range is not None else tuple(scale[0])
        self.resize = TRANSFORMS.build(dict(type=resize_type, scale=first, **resize_kwargs))

    def _random_scale(self) -> Scale:
        if self.ratio_range is not None:
            ratio = np.random.uniform(*self.ratio_range)
            return int(self.scale[0] * ratio), int(self.scale[1] * ratio)
        (w0, h0), (w1, h1) = self.scale
        return (int(np.random.randint(min(w0, w1), max(w0, w1) + 1)),
                int(np.random.randint(min(h0, h1), max(h0, h1) + 1)))

    def transform(self, results: dict) -> dict:
        self.resize.scale = self._random_scale()
        return self.resize(results)


@TRANSFORMS.register_module()
class RandomChoiceResize(BaseTransform):
    """Resize to one of ``scales``, chosen uniformly; records ``scale_idx``.

    Args:
        scales: Candidate ``(w, h)`` scales.
        resize_type: Type of the resize transform that does the work.
        **resize_kwargs: Its other arguments (``keep_ratio``, ...).
    """

    def __init__(self, scales: Sequence[Scale], resize_type: str = 'Resize',
                 **resize_kwargs) -> None:
        if _is_pair(scales) or not scales:
            raise ValueError(f'RandomChoiceResize scales={scales!r}: give a list of (w, h) '
                             'scales, e.g. [(1333, 640), (1333, 800)]')
        self.scales = [tuple(s) if isinstance(s, (tuple, list)) else (s, s) for s in scales]
        self.resize = TRANSFORMS.build(dict(type=resize_type, scale=self.scales[0],
                                            **resize_kwargs))

    def transform(self, results: dict) -> dict:
        index = int(np.random.randint(len(self.scales)))
        results['scale_idx'] = index
        self.resize.scale = self.scales[index]
        return self.resize(results)


def flip_boxes(boxes: np.ndarray, shape: Tuple[int, int], direction: str) -> np.ndarray:
    """Boxes ``(N, 4)`` mirrored in an image of ``shape`` ``(h, w)``."""
    h, w = shape
    out = boxes.copy()
    if direction in ('horizontal', 'diagonal'):
        out[:, 0], out[:, 2] = w - boxes[:, 2], w - boxes[:, 0]
    if direction in ('vertical', 'diagonal'):
        out[:, 1], out[:, 3] = h - boxes[:, 3], h - boxes[:, 1]
    return out


@TRANSFORMS.register_module()
class RandomFlip(BaseTransform):
    """Flip with probability ``prob``; sets ``flip`` and ``flip_direction``.

    Args:
        prob: A float shared by the directions, or one probability per direction.
        direction: ``'horizontal'``, ``'vertical'``, ``'diagonal'`` or a list of them.
    """

    def __init__(self, prob: Optional[Union[float, List[float]]] = None,
                 direction: Union[str, List[str]] = 'horizontal') -> None:
        directions = [direction] if isinstance(direction, str) else list(direction)
        unknown = [d for d in directions if d not in _FLIP_CODES]
        if unknown:
            raise ValueError(f'RandomFlip direction {unknown} is unknown; use '
                             f'{list(_FLIP_CODES)}')
        if isinstance(prob, (int, float)):
            probs = [float(prob) / len(directions)] * len(directions)
        elif isinstance(prob, (list, tuple)) and len(prob) == len(directions):
            probs = [float(p) for p in prob]
        else:
            raise ValueError(f'RandomFlip prob={prob!r}: give a float in [0, 1], or one '
                             f'probability per direction {directions}')
        if min(probs) < 0 or sum(probs) > 1 + 1e-6:
            raise ValueError(f'RandomFlip probabilities {probs} must be >= 0 and sum to <= 1')
        self.prob = prob
        self.direction = direction
        self._choices = directions + [None]
        self._probs = probs + [max(0.0, 1 - sum(probs))]

    def transform(self, results: dict) -> dict:
        p = np.asarray(self._probs) / sum(self._probs)
        direction = self._choices[int(np.random.choice(len(self._choices), p=p))]
        results['flip'] = direction is not None
        results['flip_direction'] = direction
        if direction is None:
            return results
        code = _FLIP_CODES[direction]
        results['img'] = cv2.flip(results['img'], code)
        shape = results['img'].shape[:2]
        if results.get('gt_bboxes') is not None:
            results['gt_bboxes'] = flip_boxes(results['gt_bboxes'], shape, direction)
        if results.get('gt_masks') is not None:
            results['gt_masks'] = results['gt_masks'].flip(direction)
        if results.get('gt_seg_map') is not None:
            results['gt_seg_map'] = cv2.flip(results['gt_seg_map'], code)
        return results


@TRANSFORMS.register_module()
class Pad(BaseTransform):
    """Pad at the bottom and right: to ``size``, to a multiple of ``size_divisor``, and/or to a
    square. Boxes do not move.

    Args:
        size: Fixed ``(w, h)``.
        size_divisor: Pad height and width up to multiples of this.
        pad_to_square: Pad to a square of the longer side first.
        pad_val: A number for the image, or ``dict(img=..., masks=..., seg=...)``.
        padding_mode: ``'constant'``, ``'edge'``, ``'reflect'`` or ``'symmetric'`` (image only).
    """

    def __init__(self,
                 size: Optional[Tuple[int, int]] = None,
                 size_divisor: Optional[int] = None,
                 pad_to_square: bool = False,
                 pad_val: Union[int, float, dict] = dict(img=0, seg=255),
                 padding_mode: str = 'constant') -> None:
        if pad_to_square and size is not None:
            raise ValueError('Pad: give either size or pad_to_square=True, not both')
        if not pad_to_square and (size is None) == (size_divisor is None):
            raise ValueError('Pad needs exactly one of size=(w, h) and size_divisor '
                             f'(or pad_to_square=True); got size={size}, '
                             f'size_divisor={size_divisor}')
        modes = ('constant', 'edge', 'reflect', 'symmetric')
        if padding_mode not in modes:
            raise ValueError(f'Pad padding_mode={padding_mode!r} is unknown; use one of {modes}')
        self.size = size
        self.size_divisor = size_divisor
        self.pad_to_square = pad_to_square
        self.pad_val = pad_val if isinstance(pad_val, dict) else dict(img=pad_val, seg=255)
        self.padding_mode = padding_mode

    def _target(self, h: int, w: int) -> Tuple[int, int]:
        if self.size is not None:
            th, tw = self.size[1], self.size[0]
        elif self.pad_to_square:
            th = tw = max(h, w)
        else:
            th, tw = h, w
        if self.size_divisor:
            d = self.size_divisor
            th, tw = -(-th // d) * d, -(-tw // d) * d
        if th < h or tw < w:
            raise ValueError(f'Pad size (w, h)={self.size} is smaller than the image '
                             f'({w}, {h}); resize first or use size_divisor')
        return th, tw

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        th, tw = self._target(h, w)
        if self.padding_mode == 'constant':
            padded = np.empty((th, tw) + img.shape[2:], dtype=img.dtype)
            padded[...] = self.pad_val.get('img', 0)
            padded[:h, :w] = img
        else:
            widths = ((0, th - h), (0, tw - w)) + ((0, 0), ) * (img.ndim - 2)
            padded = np.pad(img, widths, mode=self.padding_mode)
        results['img'] = padded
        results['img_shape'] = results['pad_shape'] = (th, tw)
        results['pad_fixed_size'] = self.size
        results['pad_size_divisor'] = self.size_divisor
        if results.get('gt_masks') is not None:
            results['gt_masks'] = results['gt_masks'].pad((th, tw),
                                                          pad_val=self.pad_val.get('masks', 0))
        if results.get('gt_seg_map') is not None:
            seg = results['gt_seg_map']
            out = np.full((th, tw), self.pad_val.get('seg', 255), dtype=seg.dtype)
            out[:h, :w] = seg
            results['gt_seg_map'] = out
        return results


@TRANSFORMS.register_module()
class RandomCrop(BaseTransform):
    """Crop a random window; drop the instances that fall outside it.

    Args:
        crop_size: ``(w, h)`` for ``'absolute'``; ``(min, max)`` pixels for
            ``'absolute_range'``; ``(w_ratio, h_ratio)`` in (0, 1] for ``'relative'``;
            the smallest ``(h_ratio, w_ratio)`` for ``'relative_range'`` (height first:
            MMDetection reads it so, and its configs rely on it).
        crop_type: ``'absolute'``, ``'absolute_range'``, ``'relative'`` or ``'relative_range'``.
        allow_negative_crop: Keep crops without any box; else return None, and the
            dataset draws another sample.
        recompute_bbox: Recompute boxes as the tight boxes of the cropped masks.
        bbox_clip_border: Clip boxes to the crop.
    """

    def __init__(self,
                 crop_size: Tuple[Union[int, float], Union[int, float]],
                 crop_type: str = 'absolute',
                 allow_negative_crop: bool = False,
                 recompute_bbox: bool = False,
                 bbox_clip_border: bool = True) -> None:
        types = ('absolute', 'absolute_range', 'relative', 'relative_range')
        if crop_type not in types:
            raise ValueError(f'RandomCrop crop_type={crop_type!r} is unknown; use one of {types}')
        if not isinstance(crop_size, (tuple, list)) or len(crop_size) != 2:
            raise ValueError(f'RandomCrop crop_size={crop_size!r} must be a pair, e.g. (512, 512)')
        a, b = crop_size
        if crop_type.startswith('absolute'):
            if not (isinstance(a, int) and isinstance(b, int) and a > 0 and b > 0) or \
                    (crop_type == 'absolute_range' and a > b):
                raise ValueError(f'RandomCrop crop_size={crop_size} must be two positive ints '
                                 f'(min <= max for absolute_range) with crop_type={crop_type!r}')
        elif not (0 < a <= 1 and 0 < b <= 1):
            raise ValueError(f'RandomCrop crop_size={crop_size} must be ratios in (0, 1] with '
                             f'crop_type={crop_type!r}')
        self.crop_size = crop_size
        self.crop_type = crop_type
        self.allow_negative_crop = allow_negative_crop
        self.recompute_bbox = recompute_bbox
        self.bbox_clip_border = bbox_clip_border

    def _crop_hw(self, h: int, w: int) -> Tuple[int, int]:
        a, b = self.crop_size
        if self.crop_type == 'absolute':
            return min(b, h), min(a, w)
        if self.crop_type == 'absolute_range':
            return (int(np.random.randint(min(h, a), min(h, b) + 1)),
                    int(np.random.randint(min(w, a), min(w, b) + 1)))
        if self.crop_type == 'relative_range':
            rh, rw = a + np.random.rand() * (1 - a), b + np.random.rand() * (1 - b)
        else:
            rw, rh = a, b
        return int(h * rh + 0.5), int(w * rw + 0.5)

    def transform(self, results: dict) -> Optional[dict]:
        img = results['img']
        h, w = img.shape[:2]
        ch, cw = self._crop_hw(h, w)
        y1 = int(np.random.randint(0, h - ch + 1))
        x1 = int(np.random.randint(0, w - cw + 1))
        results['img'] = img[y1:y1 + ch, x1:x1 + cw]
        results['img_shape'] = (ch, cw)
        if results.get('gt_bboxes') is not None:
            boxes = results['gt_bboxes'] - np.array([x1, y1, x1, y1], np.float32)
            if self.bbox_clip_border:
                boxes = _clip_boxes(boxes, (ch, cw))
            inside = (boxes[:, 0] < cw) & (boxes[:, 2] > 0) & (boxes[:, 1] < ch) & \
                (boxes[:, 3] > 0)
            if not inside.any() and not self.allow_negative_crop:
                return None  # an augmentation retry, not bad data: no skip reason
            results['gt_bboxes'] = boxes
            select_instances(results, inside)
        if results.get('gt_masks') is not None:  # with or without boxes
            results['gt_masks'] = results['gt_masks'].crop(np.array([x1, y1, x1 + cw, y1 + ch]))
            if self.recompute_bbox and results.get('gt_bboxes') is not None:
                results['gt_bboxes'] = results['gt_masks'].get_bboxes().numpy()
        if results.get('gt_seg_map') is not None:
            results['gt_seg_map'] = results['gt_seg_map'][y1:y1 + ch, x1:x1 + cw]
        return results
