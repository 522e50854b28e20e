"""Build COCO-format instance json files: the part every dataset converter shares.

Conventions (binding for the converters and the synthetic generator):

- ``bbox`` is COCO ``[x, y, w, h]`` in pixels, ``x``/``y`` the top-left pixel *edge*, so a
  mask covering columns ``x0..x1`` (inclusive) has ``x = x0`` and ``w = x1 - x0 + 1``.
- ``segmentation`` is a list of flat polygons ``[x0, y0, x1, y1, ...]`` when the region has no
  holes, else a compressed RLE dict (``counts`` as str). Polygons from masks are traced on
  pixel edges so that pycocotools rasterises them back to exactly the same pixels.
- Image and annotation ids start at 1: COCOeval stores the matched gt id in a matrix where 0
  means "unmatched", so an annotation with id 0 can never count as a true positive.
- Category ids default to 1..K in class order; converters that must keep a dataset's own ids
  (Cityscapes label ids) pass them explicitly.
- Files are written with sorted keys, so the same content gives the same bytes.
"""
import json
import os
import os.path as osp
from collections import Counter, OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Union

import cv2
import numpy as np
from pycocotools import mask as mask_utils

Segmentation = Union[List[List[float]], Dict[str, Any]]


def bbox_from_mask(mask: np.ndarray) -> List[float]:
    """Tight COCO box ``[x, y, w, h]`` of the non-zero pixels of an (H, W) mask.

    Raises:
        ValueError: if the mask is empty (an empty region has no box).
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError('bbox_from_mask got an empty mask; drop the instance instead')
    x0, x1, y0, y1 = cols[0], cols[-1], rows[0], rows[-1]
    return [float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1)]


def mask_to_rle(mask: np.ndarray) -> Dict[str, Any]:
    """Compressed COCO RLE of an (H, W) mask, with ``counts`` decoded to str for json."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle


def mask_to_polygons(mask: np.ndarray) -> Optional[List[List[float]]]:
    """Polygons (one per connected part) whose rasterisation is exactly ``mask``.

    The mask is upsampled 2x (nearest) and traced there: contour points then sit a quarter
    pixel inside the pixel edges, which pycocotools' rasteriser maps back to the same pixels.
    Coordinates are multiples of 0.25, so they are exact in json.

    Returns:
        The polygons, or None when the region has a hole (COCO polygons are unioned, so a
        hole cannot be expressed; use :func:`mask_to_rle` then).
    """
    up = cv2.resize(mask.astype(np.uint8), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    contours, hierarchy = cv2.findContours(up, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    if (hierarchy[0][:, 3] >= 0).any():  # a contour with a parent is a hole
        return None
    # after the 2x upsampling every part is at least 2x2 pixels, so >= 4 contour points
    return [((c.reshape(-1, 2).astype(np.float64) + 0.5) / 2.0).ravel().tolist()
            for c in contours]


def mask_to_segmentation(mask: np.ndarray) -> Segmentation:
    """Polygons when the region has no hole, compressed RLE otherwise."""
    polygons = mask_to_polygons(mask)
    return mask_to_rle(mask) if polygons is None else polygons


def polygon_area(polygons: List[List[float]], height: int, width: int) -> float:
    """Pixel area of the union of polygons, as pycocotools rasterises them."""
    rles = mask_utils.frPyObjects(polygons, height, width)
    return float(mask_utils.area(mask_utils.merge(rles)))


class CocoWriter:
    """Collects images, annotations and skipped items, then writes a COCO json and a summary.

    Args:
        classes: Category names in class order.
        category_ids: Category id of each class; defaults to 1..K.
        supercategory: The ``supercategory`` field written for every category.
    """

    def __init__(self,
                 classes: Sequence[str],
                 category_ids: Optional[Sequence[int]] = None,
                 supercategory: str = 'none') -> None:
        classes = list(classes)
        if len(set(classes)) != len(classes):
            dup = sorted(c for c, n in Counter(classes).items() if n > 1)
            raise ValueError(f'CocoWriter got duplicate class names {dup}; names must be unique')
        if category_ids is None:
            category_ids = list(range(1, len(classes) + 1))
        if len(category_ids) != len(classes):
            raise ValueError(f'CocoWriter got {len(category_ids)} category_ids for '
                             f'{len(classes)} classes; give one id per class')
        self.classes = classes
        self.categories = [
            dict(id=int(cid), name=name, supercategory=supercategory)
            for cid, name in zip(category_ids, classes)
        ]
        self.cat_id_of = {name: int(cid) for cid, name in zip(category_ids, classes)}
        self.images: List[Dict[str, Any]] = []
        self.annotations: List[Dict[str, Any]] = []
        self.skipped: List[Dict[str, str]] = []
        self.info: Dict[str, Any] = {}

    def add_image(self, file_name: str, height: int, width: int, **extra: Any) -> int:
        """Add an image entry and return its id."""
        image_id = len(self.images) + 1
        self.images.append(
            dict(id=image_id, file_name=file_name, height=int(height), width=int(width), **extra))
        return image_id

    def add_annotation(self,
                       image_id: int,
                       class_name: str,
                       bbox: Sequence[float],
                       area: float,
                       segmentation: Optional[Segmentation] = None,
                       iscrowd: int = 0,
                       **extra: Any) -> int:
        """Add one instance and return its id.

        Args:
            image_id: Id returned by :meth:`add_image`.
            class_name: One of ``classes``.
            bbox: COCO ``[x, y, w, h]``.
            area: Region area in pixels.
            segmentation: Polygons or RLE; an empty list when there is no mask.
            iscrowd: 1 for crowd / ignored instances (e.g. VOC difficult).
        """
        if class_name not in self.cat_id_of:
            raise KeyError(f'class {class_name!r} is not in the writer\'s classes '
                           f'{self.classes}; skip the instance or add the class')
        ann_id = len(self.annotations) + 1
        self.annotations.append(
            dict(id=ann_id, image_id=int(image_id), category_id=self.cat_id_of[class_name],
                 bbox=[float(v) for v in bbox], area=float(area),
                 segmentation=[] if segmentation is None else segmentation,
                 iscrowd=int(iscrowd), **extra))
        return ann_id

    def skip(self, item: str, reason: str) -> None:
        """Record an input item (file, object) that was left out, and why."""
        self.skipped.append(dict(item=str(item), reason=reason))

    def instances_per_class(self, iscrowd: Optional[int] = None) -> 'OrderedDict[str, int]':
        """Number of annotations per class (in class order), optionally only crowd or not."""
        name_of = {c['id']: c['name'] for c in self.categories}
        counts = Counter(name_of[a['category_id']] for a in self.annotations
                         if iscrowd is None or a['iscrowd'] == iscrowd)
        return OrderedDict((name, counts.get(name, 0)) for name in self.classes)

    def to_dict(self) -> Dict[str, Any]:
        """The COCO json content."""
        out = dict(images=self.images, annotations=self.annotations, categories=self.categories)
        if self.info:
            out['info'] = self.info
        return out

    def dump(self, out_file: str) -> str:
        """Write the json (sorted keys, so equal content gives equal bytes); return its path."""
        out_dir = osp.dirname(osp.abspath(out_file))
        os.makedirs(out_dir, exist_ok=True)
        with open(out_file, 'w', encoding='utf-8') as f:
            json.dump(self.to_dict(), f, sort_keys=True, separators=(',', ':'))
        return out_file

    def summary(self, title: str = 'COCO conversion') -> str:
        """Human-readable summary: images, instances per class, skipped items and why."""
        per_class = self.instances_per_class()
        crowd = self.instances_per_class(iscrowd=1)
        width = max([len(c) for c in self.classes] + [5])
        lines = [f'{title}: {len(self.images)} images, {len(self.annotations)} instances, '
                 f'{len(self.skipped)} skipped items']
        lines.append(f'  {"class":<{width}}  instances  crowd/ignored')
        for name, count in per_class.items():
            lines.append(f'  {name:<{width}}  {count:>9}  {crowd[name]:>13}')
        if self.skipped:
            reasons = Counter(s['reason'] for s in self.skipped)
            lines.append('skipped items by reason:')
            for reason, count in reasons.most_common():
                lines.append(f'  {count:>5}  {reason}')
            lines.append('skipped items:')
            for s in self.skipped:
                lines.append(f'  {s["item"]}: {s["reason"]}')
        return '\n'.join(lines)
