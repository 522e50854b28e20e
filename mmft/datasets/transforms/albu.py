"""Albu: MMDetection's wrapper of the `Albumentations <https://albumentations.ai>`_ library
(an optional extra: ``pip install -r requirements/albu.txt``).

Image, boxes and masks go through one ``albumentations.Compose`` together. Boxes are tracked
by an internal index field, so whatever Albumentations drops (boxes that leave the image or
fall under ``min_visibility``), the labels, ignore flags and masks of exactly those
instances are dropped too. Polygon masks are rasterised first and come back as
:class:`BitmapMasks` (Albumentations warps pixels).
"""
import copy
import os
from typing import List, Optional

import numpy as np

from mmft.registry import TRANSFORMS
from mmft.structures.masks import BitmapMasks, PolygonMasks
from .base import BaseTransform, select_instances

INSTALL_HINT = ("Albu needs the 'albumentations' package: pip install -r requirements/albu.txt "
                "(or pip install 'mmft[albu]')")
_KEYMAP = {'img': 'image', 'gt_masks': 'masks', 'gt_bboxes': 'bboxes'}
_INDEX = 'idx_mapper'


def _jpeg_compression(args: dict) -> tuple:
    # albumentations < 1.4's JpegCompression(quality_lower, quality_upper), which
    # MMDetection's albu_example config uses, is ImageCompression(quality_range) in 2.x
    lower, upper = args.pop('quality_lower', 99), args.pop('quality_upper', 100)
    return 'ImageCompression', dict(args, quality_range=(lower, upper),
                                    compression_type='jpeg')


#: old transform names that newer albumentations releases renamed
_RENAMED = {'JpegCompression': _jpeg_compression}


def import_albumentations():
    """The ``albumentations`` module, or an ImportError naming the extra."""
    # albumentations >= 1.4 asks PyPI for a newer version when imported: not during training
    os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')
    try:
        import albumentations
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return albumentations


@TRANSFORMS.register_module()
class Albu(BaseTransform):
    """Run Albumentations transforms on the image, boxes and masks.

    Args:
        transforms: Albumentations transform configs, e.g.
            ``[dict(type='RandomBrightnessContrast', p=0.2), dict(type='OneOf',
            transforms=[dict(type='Blur', blur_limit=3, p=1.0)], p=0.1)]``.
        bbox_params: ``dict(type='BboxParams', format='pascal_voc', ...)``; needed when a
            transform moves pixels and the sample has boxes. ``label_fields`` and
            ``filter_lost_elements`` are accepted (MMDetection's configs set them); all
            per-instance fields always follow the boxes.
        keymap: MMDetection's ``{'img': 'image', 'gt_masks': 'masks', 'gt_bboxes': 'bboxes'}``
            (the only mapping supported).
        skip_img_without_anno: Drop the sample (return None) when no box is left.
    """

    def __init__(self,
                 transforms: List[dict],
                 bbox_params: Optional[dict] = None,
                 keymap: Optional[dict] = None,
                 skip_img_without_anno: bool = False) -> None:
        albu = import_albumentations()
        if keymap is not None and dict(keymap) != _KEYMAP:
            raise ValueError(f'Albu keymap={keymap}: mmft supports only {_KEYMAP}')
        self.transforms = copy.deepcopy(transforms)
        self.bbox_params = copy.deepcopy(bbox_params)
        self.keymap = keymap
        self.skip_img_without_anno = skip_img_without_anno
        built = [self._build(albu, t) for t in self.transforms]
        self._moves_pixels = any(not isinstance(t, albu.ImageOnlyTransform) for t in built)
        params = None
        if bbox_params is not None:
            args = dict(bbox_params)
            args.pop('type', None)
            args.pop('filter_lost_elements', None)
            args['label_fields'] = [_INDEX]  # the index carries every per-instance field
            params = albu.BboxParams(**args)
        self._aug = albu.Compose(built, bbox_params=params)

    @classmethod
    def _build(cls, albu, cfg: dict):
        if not isinstance(cfg, dict) or 'type' not in cfg:
            raise TypeError(f'Albu transforms must be dicts with a type, got {cfg!r}')
        args = dict(cfg)
        name = args.pop('type')
        if isinstance(name, str) and not hasattr(albu, name) and name in _RENAMED:
            name, args = _RENAMED[name](args)
        if isinstance(name, str):
            if not hasattr(albu, name):
                raise ValueError(f"Albu: albumentations has no transform {name!r}")
            name = getattr(albu, name)
        if 'transforms' in args:
            args['transforms'] = [cls._build(albu, t) for t in args['transforms']]
        return name(**args)

    def transform(self, results: dict) -> Optional[dict]:
        boxes = results.get('gt_bboxes')
        if boxes is not None and self.bbox_params is None and self._moves_pixels:
            raise ValueError('Albu moves pixels but has no bbox_params, so the boxes would '
                             "stay behind; add bbox_params=dict(type='BboxParams', "
                             "format='pascal_voc', min_visibility=0.0)")
        inputs = dict(image=results['img'])
        masks = results.get('gt_masks')
        if masks is not None:
            if isinstance(masks, PolygonMasks):
                masks = masks.to_bitmap()
            inputs['masks'] = list(masks.masks)
        track = boxes is not None and self.bbox_params is not None
        if track:
            inputs['bboxes'] = np.asarray(boxes, np.float32).reshape(-1, 4)
            inputs[_INDEX] = np.arange(len(inputs['bboxes']))
        out = self._aug(**inputs)
        img = out['image']
        h, w = img.shape[:2]
        results['img'] = img
        results['img_shape'] = (h, w)
        if masks is not None:
            results['gt_masks'] = BitmapMasks(
                np.stack(out['masks']).astype(np.uint8) if len(out['masks'])
                else np.zeros((0, h, w), np.uint8), h, w)
        if track:
            kept = np.asarray(out[_INDEX], dtype=np.int64).reshape(-1)
            select_instances(results, kept)  # labels, flags and masks of the boxes left
            results['gt_bboxes'] = np.asarray(out['bboxes'], np.float32).reshape(-1, 4)
            if not len(kept) and self.skip_img_without_anno:
                return None
        return results
