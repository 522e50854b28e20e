"""Reading images and annotations into ``results`` (MMDetection 3.x's loading transforms).

An image that cannot be used (missing, not decodable, or of another size than the
annotation file says, which would put every box in the wrong place) gives None and a
reason under ``SKIP_REASON_KEY``: the dataset counts and logs it and, in training, takes
another sample instead of stopping the run.
"""
import io
import logging
from typing import Optional

import cv2
import numpy as np
from mmengine import fileio
from mmengine.logging import print_log
from PIL import Image, ImageOps
from pycocotools import mask as mask_utils

from mmft.registry import TRANSFORMS
from mmft.structures.masks import (BitmapMasks, PolygonMasks, polygon_is_finite,
                                   polygons_to_bitmap, rle_problem)
from .base import BaseTransform, skip_sample

IMAGE_MISSING = 'image files missing (sample skipped)'
IMAGE_UNREADABLE = 'image files unreadable: corrupt or not an image (sample skipped)'
IMAGE_SIZE_MISMATCH = 'images whose size differs from the ann_file (sample skipped)'
IMAGE_TRANSPOSED = ("images whose height and width are the ann_file's swapped: EXIF rotation? "
                    "try color_type='color_ignore_orientation' (sample skipped)")

_CV2_FLAGS = {
    'color': cv2.IMREAD_COLOR,
    'grayscale': cv2.IMREAD_GRAYSCALE,
    'unchanged': cv2.IMREAD_UNCHANGED,
    'color_ignore_orientation': cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_COLOR,
    'grayscale_ignore_orientation': cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_GRAYSCALE,
}


def _decode_pillow(data: bytes, color_type: str) -> np.ndarray:
    img = Image.open(io.BytesIO(data))
    if not color_type.endswith('ignore_orientation') and color_type != 'unchanged':
        img = ImageOps.exif_transpose(img)  # what cv2 does by default
    if color_type.startswith('grayscale'):
        return np.asarray(img.convert('L'))
    if color_type == 'unchanged':
        array = np.asarray(img)
        return array[..., [2, 1, 0, *range(3, array.shape[2])]] if array.ndim == 3 else array
    return np.ascontiguousarray(np.asarray(img.convert('RGB'))[..., ::-1])


@TRANSFORMS.register_module()
class LoadImageFromFile(BaseTransform):
    """Read ``results['img_path']``; add ``img``, ``img_shape`` and ``ori_shape``.

    Args:
        to_float32: Return a float32 image instead of uint8.
        color_type: ``'color'`` (BGR), ``'grayscale'``, ``'unchanged'``,
            ``'color_ignore_orientation'`` or ``'grayscale_ignore_orientation'``.
        imdecode_backend: ``'cv2'`` or ``'pillow'``.
        ignore_empty: Kept for mmdet configs; an unreadable image always gives None here.
        backend_args: MMEngine file backend arguments (None: local disk).
    """

    def __init__(self,
                 to_float32: bool = False,
                 color_type: str = 'color',
                 imdecode_backend: str = 'cv2',
                 ignore_empty: bool = False,
                 backend_args: Optional[dict] = None) -> None:
        if color_type not in _CV2_FLAGS:
            raise ValueError(f'LoadImageFromFile color_type={color_type!r} is unknown; use '
                             f'one of {list(_CV2_FLAGS)}')
        if imdecode_backend not in ('cv2', 'pillow'):
            raise ValueError(f'LoadImageFromFile imdecode_backend={imdecode_backend!r} is not '
                             "available (mmft reads images without mmcv); use 'cv2' or 'pillow'")
        self.to_float32 = to_float32
        self.color_type = color_type
        self.imdecode_backend = imdecode_backend
        self.ignore_empty = ignore_empty
        self.backend_args = backend_args

    def _decode(self, data: bytes) -> Optional[np.ndarray]:
        if not data:
            return None
        try:
            if self.imdecode_backend == 'pillow':
                return _decode_pillow(data, self.color_type)
            return cv2.imdecode(np.frombuffer(data, np.uint8), _CV2_FLAGS[self.color_type])
        except (OSError, ValueError, cv2.error):
            return None

    def transform(self, results: dict) -> Optional[dict]:
        try:
            data = fileio.get(results['img_path'], backend_args=self.backend_args)
        except FileNotFoundError:
            return skip_sample(results, IMAGE_MISSING)
        except OSError:
            return skip_sample(results, IMAGE_UNREADABLE)
        img = self._decode(data)
        if img is None:
            return skip_sample(results, IMAGE_UNREADABLE)
        shape = img.shape[:2]
        expected = (results.get('height'), results.get('width'))
        if None not in expected and shape != tuple(expected):
            transposed = shape == tuple(expected)[::-1]
            return skip_sample(results, IMAGE_TRANSPOSED if transposed else IMAGE_SIZE_MISMATCH)
        results['img'] = img.astype(np.float32) if self.to_float32 else img
        results['img_shape'] = shape
        results['ori_shape'] = shape
        return results


@TRANSFORMS.register_module()
class LoadAnnotations(BaseTransform):
    """Turn ``results['instances']`` into ``gt_bboxes``, ``gt_bboxes_labels``,
    ``gt_ignore_flags`` and ``gt_masks``.

    Masks are drawn at ``ori_shape`` (the loaded image). An instance without a usable mask
    gets an empty one and is marked ignored, as MMDetection does: its box is then neither
    foreground nor background in training.

    Args:
        with_bbox: Load boxes and ignore flags.
        with_label: Load labels.
        with_mask: Load masks.
        poly2mask: Rasterise masks into :class:`BitmapMasks`; else keep
            :class:`PolygonMasks` (RLE masks then cannot be represented).
        box_type: ``'hbox'`` or None; boxes are float32 arrays either way.
        with_seg: Semantic maps are not supported yet; must be False.
        backend_args: Kept for mmdet configs (masks come from the data_info, not files).
    """

    def __init__(self,
                 with_bbox: bool = True,
                 with_label: bool = True,
                 with_mask: bool = False,
                 poly2mask: bool = True,
                 box_type: Optional[str] = 'hbox',
                 with_seg: bool = False,
                 backend_args: Optional[dict] = None) -> None:
        if box_type not in ('hbox', None):
            raise ValueError(f"LoadAnnotations box_type={box_type!r}: mmft has horizontal "
                             "boxes only; use 'hbox'")
        if with_seg:
            raise ValueError('LoadAnnotations with_seg=True: mmft does not load semantic maps '
                             'yet; remove with_seg from the pipeline')
        self.with_bbox = with_bbox
        self.with_label = with_label
        self.with_mask = with_mask
        self.poly2mask = poly2mask
        self.box_type = box_type
        self.backend_args = backend_args
        self._warned_no_mask = False

    def transform(self, results: dict) -> dict:
        instances = results.get('instances', [])
        if self.with_bbox:
            boxes = [inst['bbox'] for inst in instances]
            results['gt_bboxes'] = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
            results['gt_ignore_flags'] = np.array(
                [bool(inst.get('ignore_flag', 0)) for inst in instances], dtype=bool)
        if self.with_label:
            results['gt_bboxes_labels'] = np.array(
                [inst['bbox_label'] for inst in instances], dtype=np.int64)
        if self.with_mask:
            self._load_masks(results, instances)
        return results

    def _load_masks(self, results: dict, instances: list) -> None:
        h, w = results.get('ori_shape') or (results['height'], results['width'])
        masks, ignore = [], []
        for inst in instances:
            mask = self._convert(inst.get('mask'), h, w, results.get('img_path'))
            ignore.append(mask is None)
            if mask is None:
                mask = np.zeros((h, w), np.uint8) if self.poly2mask else []
            masks.append(mask)
        results['gt_masks'] = BitmapMasks(masks, h, w) if self.poly2mask else \
            PolygonMasks(masks, h, w)
        if self.with_bbox and any(ignore):
            results['gt_ignore_flags'] |= np.array(ignore, dtype=bool)

    def _convert(self, mask, h: int, w: int, img_path: Optional[str]):
        """A bitmap (poly2mask) or a list of polygon parts; None when unusable."""
        if isinstance(mask, list):
            # datasets drop such parts while parsing; data_infos built elsewhere may not
            parts = [np.asarray(p, dtype=np.float64) for p in mask
                     if len(p) >= 6 and len(p) % 2 == 0 and polygon_is_finite(p)]
            if not parts:
                return None
            return polygons_to_bitmap(parts, h, w) if self.poly2mask else parts
        if isinstance(mask, dict) and 'counts' in mask and 'size' in mask:
            if not self.poly2mask:
                raise ValueError(f'{img_path} has an RLE mask, which PolygonMasks cannot hold; '
                                 'use LoadAnnotations(poly2mask=True)')
            problem = rle_problem(mask, h, w)
            if problem is not None:  # pycocotools would fill the rest with whatever memory holds
                print_log(f'LoadAnnotations: an RLE mask of {img_path} is unusable ({problem}); '
                          'its instance is ignored', logger='current', level=logging.WARNING)
                return None
            rle = mask_utils.frPyObjects(mask, h, w) if isinstance(mask['counts'], list) \
                else mask
            return mask_utils.decode(rle).astype(np.uint8)
        if not self._warned_no_mask:
            self._warned_no_mask = True
            print_log(f'LoadAnnotations(with_mask=True): an instance of {img_path} has no '
                      'mask; such instances are ignored in training. Use a dataset with '
                      'segmentations or with_mask=False.', logger='current', level=logging.WARNING)
        return None
