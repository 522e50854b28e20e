"""Instance masks of one image: :class:`BitmapMasks` and :class:`PolygonMasks`.

Both follow MMDetection 3.x's API, so transforms, heads and metrics use either
without caring which: ``rescale``, ``resize``, ``flip``, ``pad``, ``crop``,
``crop_and_resize``, ``expand``, ``translate``, ``areas``, ``get_bboxes``,
``to_ndarray``, ``to_tensor``, indexing and ``len``.

Conventions:
- a mask set belongs to an image of ``(height, width)`` pixels; bitmaps are
  ``uint8`` arrays ``(N, height, width)`` with values 0/1;
- a polygon mask is a list of parts, each a flat float array
  ``[x0, y0, x1, y1, ...]`` in pixel-edge coordinates (COCO's), so pixel
  ``(r, c)`` spans ``[c, c + 1) x [r, r + 1)``;
- boxes are ``(x1, y1, x2, y2)`` with ``x2`` exclusive: a mask covering
  columns 3..5 has ``x1 = 3, x2 = 6``;
- ``out_shape`` and ``scale`` tuples are ``(h, w)`` for ``resize`` and, as
  mmcv's ``imrescale``, ``(long_edge, short_edge)`` bounds for ``rescale``.
"""
from abc import ABCMeta, abstractmethod
from typing import Any, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_utils
from torch import Tensor
from torchvision.ops import roi_align

Scale = Union[float, int, Tuple[int, int]]
# OpenCV flags by mmcv's interpolation names (masks and images share them)
INTERPOLATIONS = {'nearest': cv2.INTER_NEAREST, 'bilinear': cv2.INTER_LINEAR,
                  'bicubic': cv2.INTER_CUBIC, 'area': cv2.INTER_AREA,
                  'lanczos': cv2.INTER_LANCZOS4}
_FLIP_DIRECTIONS = ('horizontal', 'vertical', 'diagonal')


def rescale_size(old_size: Tuple[int, int], scale: Scale) -> Tuple[Tuple[int, int], float]:
    """Size ``(w, h)`` after scaling ``old_size`` ``(w, h)`` with its aspect ratio kept.

    Args:
        old_size: ``(w, h)``.
        scale: a factor, or ``(a, b)``: the long edge at most ``max(a, b)`` and
            the short edge at most ``min(a, b)`` (mmcv's ``imrescale``).

    Returns:
        ``((new_w, new_h), factor)``.
    """
    w, h = old_size
    if isinstance(scale, (float, int)):
        if scale <= 0:
            raise ValueError(f'rescale factor must be positive, got {scale}')
        factor = float(scale)
    elif isinstance(scale, (tuple, list)) and len(scale) == 2:
        long_edge, short_edge = max(scale), min(scale)
        factor = min(long_edge / max(h, w), short_edge / min(h, w))
    else:
        raise TypeError(f'scale must be a number or a pair of ints, got {scale!r}')
    return (int(w * factor + 0.5), int(h * factor + 0.5)), factor


def _interp(name: str) -> int:
    if name not in INTERPOLATIONS:
        raise ValueError(f'interpolation must be one of {sorted(INTERPOLATIONS)}, got {name!r}')
    return INTERPOLATIONS[name]


def _check_direction(direction: str) -> None:
    if direction not in _FLIP_DIRECTIONS:
        raise ValueError(f'flip direction must be one of {_FLIP_DIRECTIONS}, got {direction!r}')


class BaseInstanceMasks(metaclass=ABCMeta):
    """What every mask type offers; ``height`` and ``width`` are the image's."""

    height: int
    width: int

    @abstractmethod
    def rescale(self, scale: Scale, interpolation: str = 'nearest') -> 'BaseInstanceMasks':
        """Scale with the aspect ratio kept (see :func:`rescale_size`)."""

    @abstractmethod
    def resize(self, out_shape: Tuple[int, int],
               interpolation: str = 'nearest') -> 'BaseInstanceMasks':
        """Scale to ``out_shape`` ``(h, w)``."""

    @abstractmethod
    def flip(self, flip_direction: str = 'horizontal') -> 'BaseInstanceMasks':
        """Mirror: 'horizontal', 'vertical' or 'diagonal' (both)."""

    @abstractmethod
    def pad(self, out_shape: Tuple[int, int], pad_val: int = 0) -> 'BaseInstanceMasks':
        """Pad bottom/right to ``out_shape`` ``(h, w)``."""

    @abstractmethod
    def crop(self, bbox: np.ndarray) -> 'BaseInstanceMasks':
        """The region ``bbox`` ``(x1, y1, x2, y2)`` as a new, smaller image."""

    @abstractmethod
    def crop_and_resize(self, bboxes: Union[np.ndarray, Tensor], out_shape: Tuple[int, int],
                        inds: Union[np.ndarray, Tensor], device: Union[str, torch.device] = 'cpu',
                        interpolation: str = 'bilinear',
                        binarize: bool = True) -> 'BitmapMasks':
        """Mask ``inds[i]`` inside ``bboxes[i]``, resized to ``out_shape``: mask targets."""

    @abstractmethod
    def expand(self, expanded_h: int, expanded_w: int, top: int,
               left: int) -> 'BaseInstanceMasks':
        """Place the image at ``(top, left)`` of a larger empty canvas."""

    @abstractmethod
    def translate(self, out_shape: Tuple[int, int], offset: float,
                  direction: str = 'horizontal', border_value: int = 0,
                  interpolation: str = 'bilinear') -> 'BaseInstanceMasks':
        """Shift by ``offset`` pixels along ``direction`` into an ``out_shape`` canvas."""

    @property
    @abstractmethod
    def areas(self) -> np.ndarray:
        """Area of each mask in pixels, ``(N,)`` float."""

    @abstractmethod
    def to_ndarray(self) -> np.ndarray:
        """``uint8`` ``(N, height, width)``."""

    @abstractmethod
    def to_tensor(self, dtype: torch.dtype, device: Union[str, torch.device]) -> Tensor:
        """``(N, height, width)`` tensor."""

    @abstractmethod
    def get_bboxes(self, dst_type: str = 'hbox') -> Tensor:
        """Tight ``(N, 4)`` float boxes, ``x2``/``y2`` exclusive; zeros for empty masks."""

    @abstractmethod
    def __getitem__(self, index) -> 'BaseInstanceMasks':
        ...

    @abstractmethod
    def __len__(self) -> int:
        ...

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_masks={len(self)}, height={self.height}, '
                f'width={self.width})')


def _as_numpy(array: Union[np.ndarray, Tensor, Sequence]) -> np.ndarray:
    if isinstance(array, Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


class BitmapMasks(BaseInstanceMasks):
    """Masks as a ``uint8`` array ``(N, height, width)`` (float for soft targets).

    Args:
        masks: ``(N, H, W)`` array (or list of ``(H, W)`` arrays); non-zero is
            foreground; bool becomes uint8, other dtypes are kept.
        height, width: the image size; must match the array.
    """

    def __init__(self, masks: Union[np.ndarray, List[np.ndarray]], height: int,
                 width: int) -> None:
        self.height, self.width = int(height), int(width)
        if len(masks) == 0:
            self.masks = np.zeros((0, self.height, self.width), dtype=np.uint8)
            return
        masks = np.stack(list(masks)) if isinstance(masks, list) else np.asarray(masks)
        if masks.ndim != 3 or masks.shape[1:] != (self.height, self.width):
            raise ValueError(f'BitmapMasks expects (N, {self.height}, {self.width}) masks, '
                             f'got shape {masks.shape}')
        # 0/1 uint8 as a rule; float for soft mask targets (crop_and_resize(binarize=False))
        self.masks = masks.astype(np.uint8) if masks.dtype == bool else masks

    def __getitem__(self, index) -> 'BitmapMasks':
        if isinstance(index, Tensor):
            index = index.cpu().numpy()
        masks = self.masks[index]
        if masks.ndim == 2:  # an int index
            masks = masks[None]
        return BitmapMasks(masks, self.height, self.width)

    def __len__(self) -> int:
        return len(self.masks)

    def rescale(self, scale: Scale, interpolation: str = 'nearest') -> 'BitmapMasks':
        (new_w, new_h), _ = rescale_size((self.width, self.height), scale)
        return self.resize((new_h, new_w), interpolation)

    def resize(self, out_shape: Tuple[int, int], interpolation: str = 'nearest') -> 'BitmapMasks':
        h, w = int(out_shape[0]), int(out_shape[1])
        if len(self) == 0:
            return BitmapMasks(np.zeros((0, h, w), np.uint8), h, w)
        flag = _interp(interpolation)
        resized = np.empty((len(self), h, w), self.masks.dtype)
        for m, out in zip(self.masks, resized):  # into place: no stacking copy of big masks
            cv2.resize(m, (w, h), dst=out, interpolation=flag)
        return BitmapMasks(resized, h, w)

    def flip(self, flip_direction: str = 'horizontal') -> 'BitmapMasks':
        _check_direction(flip_direction)
        axes = {'horizontal': (2,), 'vertical': (1,), 'diagonal': (1, 2)}[flip_direction]
        return BitmapMasks(np.ascontiguousarray(np.flip(self.masks, axes)), self.height,
                           self.width)

    def pad(self, out_shape: Tuple[int, int], pad_val: int = 0) -> 'BitmapMasks':
        h, w = int(out_shape[0]), int(out_shape[1])
        if h < self.height or w < self.width:
            raise ValueError(f'cannot pad {self.height}x{self.width} masks to smaller {h}x{w}; '
                             'pad to at least the image size (crop to shrink)')
        padded = np.full((len(self), h, w), pad_val, dtype=np.uint8)
        padded[:, :self.height, :self.width] = self.masks
        return BitmapMasks(padded, h, w)

    def crop(self, bbox: np.ndarray) -> 'BitmapMasks':
        x1, y1, x2, y2 = _clip_crop_box(bbox, self.height, self.width)
        return BitmapMasks(self.masks[:, y1:y2, x1:x2].copy(), y2 - y1, x2 - x1)

    def crop_and_resize(self, bboxes, out_shape, inds, device='cpu', interpolation='bilinear',
                        binarize=True) -> 'BitmapMasks':
        h, w = int(out_shape[0]), int(out_shape[1])
        if len(self) == 0 or len(bboxes) == 0:
            return BitmapMasks(np.zeros((0, h, w), np.uint8), h, w)
        if interpolation != 'bilinear':
            raise ValueError('BitmapMasks.crop_and_resize samples bilinearly (RoIAlign); '
                             f"got interpolation={interpolation!r}, use 'bilinear'")
        boxes = torch.as_tensor(_as_numpy(bboxes), dtype=torch.float32, device=device)
        inds = torch.as_tensor(_as_numpy(inds), dtype=torch.long, device=device)
        # RoIAlign over only the masks that are asked for: a crop per box, bilinear, aligned
        masks = torch.from_numpy(self.masks).to(device)
        used, local = torch.unique(inds, return_inverse=True)
        rois = torch.cat([local[:, None].to(boxes), boxes[:, :4]], dim=1)
        crops = roi_align(masks[used, None].float(), rois, (h, w), spatial_scale=1.0,
                          sampling_ratio=0, aligned=True).squeeze(1)
        array = ((crops >= 0.5) if binarize else crops).cpu().numpy()
        return BitmapMasks(array, h, w)

    def expand(self, expanded_h: int, expanded_w: int, top: int, left: int) -> 'BitmapMasks':
        canvas = np.zeros((len(self), expanded_h, expanded_w), dtype=np.uint8)
        canvas[:, top:top + self.height, left:left + self.width] = self.masks
        return BitmapMasks(canvas, expanded_h, expanded_w)

    def translate(self, out_shape, offset, direction='horizontal', border_value=0,
                  interpolation='bilinear') -> 'BitmapMasks':
        h, w = int(out_shape[0]), int(out_shape[1])
        if direction not in ('horizontal', 'vertical'):
            raise ValueError(f"translate direction must be 'horizontal' or 'vertical', "
                             f'got {direction!r}')
        dx, dy = (offset, 0) if direction == 'horizontal' else (0, offset)
        matrix = np.float32([[1, 0, dx], [0, 1, dy]])
        out = [cv2.warpAffine(m, matrix, (w, h), flags=_interp(interpolation),
                              borderValue=border_value) for m in self.masks]
        return BitmapMasks(np.stack(out) if out else np.zeros((0, h, w), np.uint8), h, w)

    @property
    def areas(self) -> np.ndarray:
        return self.masks.reshape(len(self), -1).sum(1).astype(np.float64)

    def to_ndarray(self) -> np.ndarray:
        return self.masks

    def to_tensor(self, dtype: torch.dtype, device: Union[str, torch.device]) -> Tensor:
        return torch.tensor(self.masks, dtype=dtype, device=device)

    def get_bboxes(self, dst_type: str = 'hbox') -> Tensor:
        boxes = np.zeros((len(self), 4), dtype=np.float32)
        cols = self.masks.any(axis=1)  # (N, W)
        rows = self.masks.any(axis=2)  # (N, H)
        for i in range(len(self)):
            xs, ys = np.flatnonzero(cols[i]), np.flatnonzero(rows[i])
            if xs.size:
                boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
        return torch.from_numpy(boxes)

    @classmethod
    def cat(cls, masks: Sequence['BitmapMasks']) -> 'BitmapMasks':
        """Concatenate mask sets of the same image size."""
        if not masks:
            raise ValueError('BitmapMasks.cat needs at least one mask set')
        h, w = masks[0].height, masks[0].width
        return cls(np.concatenate([m.masks for m in masks]), h, w)


class PolygonMasks(BaseInstanceMasks):
    """Masks as polygons: ``masks[i]`` is a list of flat ``[x0, y0, x1, y1, ...]`` parts.

    Args:
        masks: per instance, a list of polygon parts (each with >= 3 points).
        height, width: the image size.
    """

    def __init__(self, masks: List[List[np.ndarray]], height: int, width: int) -> None:
        if not isinstance(masks, list):
            raise TypeError(f'PolygonMasks expects a list of per-instance polygon lists, '
                            f'got {type(masks).__name__}')
        self.height, self.width = int(height), int(width)
        self.masks = [[np.asarray(p, dtype=np.float64).reshape(-1) for p in poly]
                      for poly in masks]
        for i, poly in enumerate(self.masks):
            for part in poly:
                if part.size < 6 or part.size % 2:
                    raise ValueError(f'PolygonMasks instance {i}: a polygon part needs >= 3 '
                                     f'(x, y) points, got {part.size} values; drop it when '
                                     'parsing the annotation')

    def __getitem__(self, index) -> 'PolygonMasks':
        if isinstance(index, Tensor):
            index = index.cpu().numpy()
        if isinstance(index, list):  # a list of bools selects like a bool array
            index = np.asarray(index, dtype=bool if index and all(
                isinstance(i, (bool, np.bool_)) for i in index) else np.int64)
        if isinstance(index, np.ndarray):
            index = (np.flatnonzero(index) if index.dtype == bool else index).tolist()
        if isinstance(index, (list, tuple)):
            masks = [self.masks[int(i)] for i in index]
        elif isinstance(index, slice):
            masks = self.masks[index]
        else:
            masks = [self.masks[int(index)]]
        return PolygonMasks(masks, self.height, self.width)

    def __len__(self) -> int:
        return len(self.masks)

    def _map(self, fn, height: int, width: int) -> 'PolygonMasks':
        """Apply ``fn`` to each part's ``(K, 2)`` points; drop parts that vanish."""
        out = []
        for poly in self.masks:
            parts = [fn(p.reshape(-1, 2)) for p in poly]
            out.append([p.reshape(-1) for p in parts if p is not None and len(p) >= 3])
        return PolygonMasks(out, height, width)

    def rescale(self, scale: Scale, interpolation: Optional[str] = None) -> 'PolygonMasks':
        (new_w, new_h), _ = rescale_size((self.width, self.height), scale)
        return self.resize((new_h, new_w))

    def resize(self, out_shape: Tuple[int, int], interpolation: Optional[str] = None
               ) -> 'PolygonMasks':
        h, w = int(out_shape[0]), int(out_shape[1])
        factor = np.array([w / self.width, h / self.height])
        return self._map(lambda p: p * factor, h, w)

    def flip(self, flip_direction: str = 'horizontal') -> 'PolygonMasks':
        _check_direction(flip_direction)
        w, h = self.width, self.height

        def flip_points(p: np.ndarray) -> np.ndarray:
            p = p.copy()
            if flip_direction in ('horizontal', 'diagonal'):
                p[:, 0] = w - p[:, 0]
            if flip_direction in ('vertical', 'diagonal'):
                p[:, 1] = h - p[:, 1]
            return p
        return self._map(flip_points, h, w)

    def pad(self, out_shape: Tuple[int, int], pad_val: int = 0) -> 'PolygonMasks':
        # bottom/right padding moves no point
        return PolygonMasks(self.masks, out_shape[0], out_shape[1])

    def crop(self, bbox: np.ndarray) -> 'PolygonMasks':
        x1, y1, x2, y2 = _clip_crop_box(bbox, self.height, self.width)
        offset = np.array([x1, y1], dtype=np.float64)
        return self._map(lambda p: _clip_polygon(p - offset, x2 - x1, y2 - y1),
                         y2 - y1, x2 - x1)

    def crop_and_resize(self, bboxes, out_shape, inds, device='cpu', interpolation='bilinear',
                        binarize=True) -> 'BitmapMasks':
        h, w = int(out_shape[0]), int(out_shape[1])
        bboxes, inds = _as_numpy(bboxes), _as_numpy(inds)
        out = np.zeros((len(bboxes), h, w), dtype=np.uint8)
        for i, (box, ind) in enumerate(zip(bboxes, inds)):
            x1, y1, x2, y2 = (float(v) for v in box[:4])
            scale = np.array([w / max(x2 - x1, 1e-3), h / max(y2 - y1, 1e-3)])
            origin = np.array([x1, y1])
            parts = [((p.reshape(-1, 2) - origin) * scale).reshape(-1)
                     for p in self.masks[int(ind)]]
            out[i] = polygons_to_bitmap(parts, h, w)
        return BitmapMasks(out, h, w)

    def expand(self, expanded_h: int, expanded_w: int, top: int, left: int) -> 'PolygonMasks':
        offset = np.array([left, top], dtype=np.float64)
        return self._map(lambda p: p + offset, expanded_h, expanded_w)

    def translate(self, out_shape, offset, direction='horizontal', border_value=None,
                  interpolation=None) -> 'PolygonMasks':
        h, w = int(out_shape[0]), int(out_shape[1])
        if direction not in ('horizontal', 'vertical'):
            raise ValueError(f"translate direction must be 'horizontal' or 'vertical', "
                             f'got {direction!r}')
        shift = np.array([offset, 0.0] if direction == 'horizontal' else [0.0, offset])
        return self._map(lambda p: _clip_polygon(p + shift, w, h), h, w)

    @property
    def areas(self) -> np.ndarray:
        """Shoelace area of each instance (parts summed, as COCO does for polygons)."""
        return np.array([sum(_polygon_area(p.reshape(-1, 2)) for p in poly)
                         for poly in self.masks], dtype=np.float64)

    def to_bitmap(self) -> BitmapMasks:
        return BitmapMasks(self.to_ndarray(), self.height, self.width)

    def to_ndarray(self) -> np.ndarray:
        if not self.masks:
            return np.zeros((0, self.height, self.width), dtype=np.uint8)
        return np.stack([polygons_to_bitmap(p, self.height, self.width) for p in self.masks])

    def to_tensor(self, dtype: torch.dtype, device: Union[str, torch.device]) -> Tensor:
        return torch.from_numpy(self.to_ndarray()).to(dtype=dtype, device=device)

    def get_bboxes(self, dst_type: str = 'hbox') -> Tensor:
        boxes = np.zeros((len(self), 4), dtype=np.float32)
        for i, poly in enumerate(self.masks):
            if poly:
                points = np.concatenate([p.reshape(-1, 2) for p in poly])
                boxes[i] = (*points.min(0), *points.max(0))
        return torch.from_numpy(boxes)

    @classmethod
    def cat(cls, masks: Sequence['PolygonMasks']) -> 'PolygonMasks':
        """Concatenate mask sets of the same image size."""
        if not masks:
            raise ValueError('PolygonMasks.cat needs at least one mask set')
        return cls([p for m in masks for p in m.masks], masks[0].height, masks[0].width)


def polygons_to_bitmap(polygons: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """Rasterise one instance's polygon parts (COCO's rule) into a ``uint8`` ``(H, W)`` mask."""
    parts = [list(map(float, p)) for p in polygons if len(p) >= 6]
    if not parts:
        return np.zeros((height, width), dtype=np.uint8)
    rles = mask_utils.frPyObjects(parts, height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(np.uint8)


def _clip_crop_box(bbox: np.ndarray, height: int, width: int) -> Tuple[int, int, int, int]:
    x1, y1, x2, y2 = (int(round(float(v))) for v in _as_numpy(bbox)[:4])
    # at least one pixel, inside the image even for a box at or past its border
    x1, y1 = min(max(x1, 0), width - 1), min(max(y1, 0), height - 1)
    x2, y2 = min(max(x2, x1 + 1), width), min(max(y2, y1 + 1), height)
    return x1, y1, x2, y2


def _clip_polygon(points: np.ndarray, width: float, height: float) -> Optional[np.ndarray]:
    """Clip ``(K, 2)`` points to ``[0, width] x [0, height]`` (Sutherland-Hodgman).

    The clip region is convex, so the result is the exact intersection, unlike
    clamping coordinates, which would add area along the border.
    """
    lo, hi = points.min(0), points.max(0)
    if lo[0] >= 0 and lo[1] >= 0 and hi[0] <= width and hi[1] <= height:
        return points.copy() if len(points) >= 3 else None  # inside: the common case
    if hi[0] <= 0 or hi[1] <= 0 or lo[0] >= width or lo[1] >= height:
        return None  # outside
    # each edge: (axis, bound, keep points with coordinate >= bound if sign > 0)
    edges = ((0, 0.0, 1), (0, float(width), -1), (1, 0.0, 1), (1, float(height), -1))
    pts = np.asarray(points, dtype=np.float64)
    for axis, bound, sign in edges:
        if not len(pts):
            return None
        inside = sign * (pts[:, axis] - bound) >= 0
        prev, prev_in = np.roll(pts, 1, 0), np.roll(inside, 1)
        cross = inside != prev_in  # the edge from prev crosses the boundary
        delta = pts[:, axis] - prev[:, axis]
        t = (bound - prev[:, axis]) / np.where(cross, delta, 1.0)
        crossing = prev + t[:, None] * (pts - prev)
        # per point, in order: the crossing point (if any), then the point (if inside)
        pts = np.stack([crossing, pts], 1)[np.stack([cross, inside], 1)]
    return pts if len(pts) >= 3 else None


def _polygon_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2)


def rle_string_counts(counts: Union[str, bytes]) -> Optional[np.ndarray]:
    """The run lengths that a compressed COCO RLE string encodes, or None if it is no
    such string.

    The format (pycocotools' ``rleToString``): each count is written in 5-bit groups,
    least significant first, as characters ``48 + group`` with bit 0x20 set on every
    group but the last; bit 0x10 of the last group is the sign. From the fourth count on,
    the value stored is the difference to the count two places earlier.
    """
    data = counts.encode('ascii', 'replace') if isinstance(counts, str) else bytes(counts)
    if not data:
        return np.zeros(0, np.int64)
    chars = np.frombuffer(data, np.uint8).astype(np.int64) - 48
    if chars.min() < 0 or chars.max() > 63:
        return None
    last = (chars & 0x20) == 0  # the last group of each count
    if not last[-1]:
        return None  # cut off inside a count
    starts = np.flatnonzero(np.concatenate([[True], last[:-1]]))
    group = np.cumsum(np.concatenate([[0], last[:-1]]))
    position = np.arange(len(chars)) - starts[group]
    if position.max() > 11:  # more than 60 bits: no real image has such a run
        return None
    values = np.add.reduceat((chars & 0x1f) << (5 * position), starts)
    bits = 5 * (position[last] + 1)
    negative = (chars[last] & 0x10) != 0
    values[negative] -= np.left_shift(1, bits[negative])
    out = values.copy()
    out[1::2] = np.cumsum(values[1::2])  # from index 3 on: difference to index i - 2
    out[2::2] = np.cumsum(values[2::2])
    return out


def rle_problem(rle: Any, height: int, width: int) -> Optional[str]:
    """What makes ``rle`` unusable as the mask of a ``height x width`` image, or None.

    pycocotools decodes whatever it is given: counts that sum to less than
    ``height * width`` leave the rest of the mask uninitialised memory (any value, different
    on every run), so every RLE is checked before it is decoded.
    """
    if not isinstance(rle, dict) or 'counts' not in rle or 'size' not in rle:
        return 'not an RLE dict with "counts" and "size"'
    size = rle['size']
    if not isinstance(size, (list, tuple)) or list(size) != [height, width]:
        return f'its size {size!r} is not the image\'s [{height}, {width}]'
    counts = rle['counts']
    if isinstance(counts, (str, bytes)):
        runs = rle_string_counts(counts)
        if runs is None:
            return 'its counts string is not a compressed COCO RLE'
    elif isinstance(counts, (list, tuple)) and all(
            isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in counts):
        runs = np.asarray(counts, dtype=np.int64)
    else:
        return 'its counts are neither a compressed string nor a list of ints'
    if len(runs) and runs.min() < 0:
        return 'it has negative run lengths'
    if int(runs.sum()) != height * width:
        return f'its run lengths cover {int(runs.sum())} pixels, not {height} x {width}'
    return None


def polygon_is_finite(polygon: Sequence[Any]) -> bool:
    """Whether every coordinate of a flat polygon is a finite number (no NaN, no inf)."""
    try:
        values = np.asarray(polygon, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return values.ndim == 1 and bool(np.isfinite(values).all())
