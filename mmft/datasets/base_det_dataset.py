"""BaseDetDataset: what mmft's detection datasets share, on MMEngine's BaseDataset.

A data_info (one image), as in MMDetection 3.x:
- ``img_path``, ``img_id``, ``height``, ``width`` (as the annotation file says; the image
  loader checks them against the decoded image), ``seg_map_path`` (or None);
- ``instances``: dicts with ``bbox`` ``[x1, y1, x2, y2]`` (float pixels, pixel-edge
  coordinates), ``bbox_label`` (index into ``metainfo['classes']``), ``ignore_flag`` (1 for
  crowd / difficult / unusable instances: neither object nor background in training) and
  optionally ``mask`` (COCO polygons ``[[x0, y0, ...], ...]`` or an RLE dict).

Classes: ``metainfo['classes']`` is always a tuple of unique names, and labels follow its
order. ``classes='a'`` (a one-class tuple written without its comma) is an error, not 'a'.

Bad data never stops a run and never becomes a wrong label. Parsing clips boxes partly
outside the image and drops, per annotation, what cannot be used (zero-area or outside
boxes, polygons with < 3 points or NaN coordinates, RLE masks that do not decode to the
image's size, unknown category ids); each reason is counted in ``self.skipped`` (reason ->
count), the first annotation ids of each in ``self.skipped_ids``, and logged once with its
count, the ann_file and those ids after parsing. No mask that pycocotools would decode into
undefined memory gets past parsing. Images
are read lazily: a transform that cannot read one returns None and names the reason; the
dataset counts it and, in training, goes on with another image (MMEngine's refetch). In
test mode that raises instead: a stand-in image would silently change the metric.
Counts made inside DataLoader workers stay in the workers (their log lines do not).
"""
import logging
import math
import os.path as osp
import zlib
from collections import Counter
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from mmft.registry import DATASETS
from mmft.structures.masks import polygon_is_finite, rle_problem
from .transforms.base import SKIP_REASON_KEY

BOX_MALFORMED = 'annotations with a malformed box (dropped)'
BOX_EMPTY = 'annotations with a zero-area box (dropped)'
BOX_OUTSIDE = 'annotations with a box outside the image (dropped)'
BOX_CLIPPED = 'boxes partly outside the image (clipped to it)'
POLYGON_SHORT = 'polygons with < 3 points or an odd number of coordinates (dropped)'
POLYGON_NOT_FINITE = 'polygons with NaN, infinite or non-numeric coordinates (dropped)'
RLE_INVALID = ('RLE masks that are malformed or do not cover height x width pixels '
               '(dropped)')
MASK_INVALID = ('instances without a usable mask (mask dropped; the instance is ignored '
                'when masks are loaded)')
UNKNOWN_CATEGORY = 'annotations with an unknown category id (dropped)'
OTHER_CLASS = 'annotations of classes not in metainfo.classes (left out)'
IMAGE_NO_SIZE = 'images without a readable width/height (dropped)'
ORPHAN_ANNOTATION = 'annotations whose image_id is not in "images" (dropped)'

# counted like the others, but expected when a subset of classes is selected
_INFO_REASONS = (OTHER_CLASS, )
#: annotation ids kept per reason in ``skipped_ids`` (the count has them all)
MAX_IDS_PER_REASON = 20


def _is_local(path: str) -> bool:
    return '://' not in str(path)


def in_mmft_scope(cfg: Any) -> Any:
    """A config dict built in scope 'mmft' (unless it names a scope); other values as is.

    MMEngine builds nested configs (pipelines, wrapped datasets) through its root registry
    in the *current* default scope, which finds mmft's types only when that is 'mmft'.
    """
    if isinstance(cfg, dict) and '_scope_' not in cfg:
        return dict(cfg, _scope_='mmft')
    return cfg


def check_classes(classes: Any) -> Tuple[str, ...]:
    """``classes`` as a tuple of unique names, or a ValueError/TypeError saying what is wrong."""
    if isinstance(classes, str):
        raise ValueError(f'metainfo.classes is the string {classes!r}, not a tuple of class '
                         f"names; a one-class tuple needs a trailing comma: classes=({classes!r},)")
    if not isinstance(classes, (list, tuple)) or not all(isinstance(c, str) for c in classes):
        raise TypeError(f'metainfo.classes must be a tuple of class names (str), got {classes!r}')
    if not classes:
        raise ValueError('metainfo.classes is empty; list the class names, e.g. '
                         "metainfo=dict(classes=('cat', 'dog'))")
    duplicates = sorted(c for c, n in Counter(classes).items() if n > 1)
    if duplicates:
        raise ValueError(f'metainfo.classes has duplicate names {duplicates}; names must be '
                         'unique, labels follow their order')
    return tuple(classes)


def class_mismatch_error(missing: Sequence[str], available: Iterable[str],
                         ann_file: str) -> ValueError:
    """The error for configured classes that the annotation file does not have."""
    return ValueError(
        f"classes in ann_file don't match metainfo.classes: missing {list(missing)} "
        f'(available: {list(available)}). Fix metainfo=dict(classes=(...)) in the dataset '
        f'config, or use the ann_file that has these classes ({ann_file})')


def _colour_of(name: str) -> Tuple[int, int, int]:
    # seeded by the name: a class keeps its colour whatever the class list
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return tuple(int(v) for v in rng.integers(0, 256, 3))


@DATASETS.register_module()
class BaseDetDataset(BaseDataset):
    """Base of the detection datasets; subclasses implement ``load_data_list``.

    Args:
        seg_map_suffix: Suffix of semantic maps under ``data_prefix['seg']``.
        backend_args: MMEngine file backend arguments for the annotation file.
        **kwargs: MMEngine BaseDataset arguments (ann_file, metainfo, data_root,
            data_prefix, filter_cfg=dict(filter_empty_gt=..., min_size=...), pipeline,
            test_mode, ...).
    """

    METAINFO: dict = {}
    # appended to "does not exist" errors: how to get the data
    PREPARE_HINT = 'check data_root, ann_file and data_prefix in the dataset config'

    def __init__(self, *args, seg_map_suffix: str = '.png',
                 backend_args: Optional[dict] = None, **kwargs) -> None:
        self.seg_map_suffix = seg_map_suffix
        self.backend_args = backend_args
        self.skipped: Counter = Counter()
        #: reason -> the first MAX_IDS_PER_REASON annotation ids it dropped
        self.skipped_ids: Dict[str, List[Any]] = {}
        self._reported: set = set()  # images whose load-time problem was logged already
        if kwargs.get('pipeline'):
            kwargs['pipeline'] = [in_mmft_scope(t) for t in kwargs['pipeline']]
        super().__init__(*args, **kwargs)

    @classmethod
    def _load_metainfo(cls, metainfo=None) -> dict:
        given = metainfo.get('classes') if hasattr(metainfo, 'get') else None
        # MMEngine reads a str as a file of names; a str that is no file is the ('a') trap
        if isinstance(given, str) and not osp.isfile(given):
            check_classes(given)
        meta = super()._load_metainfo(metainfo)
        if meta.get('classes') is not None:
            meta['classes'] = check_classes(meta['classes'])
            if given is not None and 'palette' not in metainfo:
                known = dict(zip(cls.METAINFO.get('classes', ()), cls.METAINFO.get('palette', ())))
                meta['palette'] = [tuple(known.get(c, _colour_of(c))) for c in meta['classes']]
        return meta

    @property
    def img_prefix(self) -> str:
        """Folder that image ``file_name`` entries are relative to."""
        return self.data_prefix.get('img', self.data_prefix.get('img_path', ''))

    def _required_dirs(self) -> List[str]:
        return [self.img_prefix] if self.img_prefix else []

    def _check_paths(self) -> None:
        name = type(self).__name__
        if self.data_root and _is_local(self.data_root) and not osp.isdir(self.data_root):
            raise FileNotFoundError(f'{name}: data_root {self.data_root!r} does not exist; '
                                    f'{self.PREPARE_HINT}')
        if not self.ann_file:
            raise ValueError(f'{name} needs an ann_file; {self.PREPARE_HINT}')
        if _is_local(self.ann_file) and not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'{name}: ann_file {self.ann_file!r} does not exist; '
                                    f'{self.PREPARE_HINT}')
        for folder in self._required_dirs():
            if _is_local(folder) and not osp.isdir(folder):
                raise FileNotFoundError(f'{name}: image folder {folder!r} (from data_root and '
                                        f'data_prefix) does not exist; {self.PREPARE_HINT}')

    def full_init(self) -> None:
        """Check paths, parse, filter; then log one line per skip reason."""
        if self._fully_initialized:
            return
        self._check_paths()
        super().full_init()
        for reason, count in self.skipped.items():
            level = logging.INFO if reason in _INFO_REASONS else logging.WARNING
            ids = self.skipped_ids.get(reason)
            which = ''
            if ids:
                more = ', ...' if count > len(ids) else ''
                which = f' (annotation ids {", ".join(map(str, ids))}{more})'
            print_log(f'{type(self).__name__} {self.ann_file}: {count} {reason}{which}',
                      logger='current', level=level)

    def count_skipped(self, reason: str, ann_id: Any = None, number: int = 1) -> None:
        """Count ``number`` dropped items under ``reason``; remember ``ann_id`` (if given)
        for the report."""
        self.skipped[reason] += number
        if ann_id is not None:
            ids = self.skipped_ids.setdefault(reason, [])
            if len(ids) < MAX_IDS_PER_REASON and ann_id not in ids:
                ids.append(ann_id)

    def filter_data(self) -> List[dict]:
        """Apply ``filter_cfg``: ``filter_empty_gt`` drops images without instances,
        ``min_size`` images whose shorter side is smaller. Nothing is filtered in test mode."""
        self._check_not_empty(self.data_list)
        if self.test_mode or not self.filter_cfg:
            return self.data_list
        filter_empty = self.filter_cfg.get('filter_empty_gt', False)
        min_size = self.filter_cfg.get('min_size', 0)
        kept = [d for d in self.data_list
                if not (filter_empty and self._is_empty(d))
                and min(d['width'], d['height']) >= min_size]
        if len(kept) < len(self.data_list):
            print_log(f'{type(self).__name__}: filter_cfg={dict(self.filter_cfg)} left out '
                      f'{len(self.data_list) - len(kept)} of {len(self.data_list)} images',
                      logger='current', level=logging.INFO)
        if not kept:
            without = sum(self._is_empty(d) for d in self.data_list)
            raise ValueError(
                f'{type(self).__name__}: no image left to train on from {self.ann_file}: '
                f'{len(self.data_list)} usable images, {without} of them without usable '
                f'annotations, and filter_cfg={dict(self.filter_cfg)} drops '
                f'{"those" if filter_empty else "images smaller than min_size"}. '
                f'{self.empty_hint()}')
        return kept

    def empty_hint(self) -> str:
        """Why a parsed ann_file may have given no usable image (subclasses add more)."""
        reasons = {r: n for r, n in self.skipped.items() if r not in _INFO_REASONS}
        return (f'Dropped while parsing: {reasons}. ' if reasons else '') + \
            'Check that ann_file is the right file and metainfo.classes names its classes.'

    def _check_not_empty(self, data_list: List[dict]) -> List[dict]:
        """An evaluation or training set without images is a set-up mistake: say so here,
        not later as "need at least one array to concatenate"."""
        if not data_list:
            raise ValueError(f'{type(self).__name__}: {self.ann_file} lists no usable image. '
                             f'{self.empty_hint()}')
        return data_list

    def _is_empty(self, data_info: dict) -> bool:
        return not data_info['instances']

    def get_cat_ids(self, idx: int) -> List[int]:
        """Labels of the instances of image ``idx`` (for ClassBalancedDataset)."""
        return [inst['bbox_label'] for inst in self.get_data_info(idx)['instances']]

    def prepare_data(self, idx: int) -> Any:
        data_info = self.get_data_info(idx)
        data = self.pipeline(data_info)
        reason = data_info.get(SKIP_REASON_KEY)
        if data is None and reason is not None:
            self.skipped[reason] += 1
            path = data_info.get('img_path')
            if self.test_mode:
                raise RuntimeError(
                    f'{type(self).__name__}: cannot use {path} ({reason}); in test mode no '
                    'other image may stand in for it, as the metric would be wrong. Restore '
                    f'the file or remove it from {self.ann_file}')
            if path not in self._reported:  # once per image, not once per epoch
                self._reported.add(path)
                print_log(f'{type(self).__name__}: skipped {path} ({reason}); training goes '
                          'on with another image', logger='current', level=logging.WARNING)
        return data

    def _skip_image(self, reason: str, what: str) -> None:
        """Count an image dropped at parse time; in test mode, refuse instead: the
        metric would silently count its objects as missed."""
        if self.test_mode:
            raise RuntimeError(f"{type(self).__name__}: {what} ({reason.replace(' (dropped)', '')}) "
                               f'in {self.ann_file}; an evaluation set must be complete: fix '
                               'or remove the entry') from None
        self.skipped[reason] += 1

    def _clean_box(self, bbox: Any, height: int, width: int,
                   ann_id: Any = None) -> Optional[List[float]]:
        """``bbox`` ``[x1, y1, x2, y2]`` clipped to the image; None (counted, with
        ``ann_id``) if unusable."""
        try:
            x1, y1, x2, y2 = (float(v) for v in bbox)
            usable = all(math.isfinite(v) for v in (x1, y1, x2, y2))
        except (TypeError, ValueError):
            usable = False
        if not usable:
            self.count_skipped(BOX_MALFORMED, ann_id)
            return None
        if x2 - x1 < 1 or y2 - y1 < 1:  # MMDetection's rule: w < 1 or h < 1
            self.count_skipped(BOX_EMPTY, ann_id)
            return None
        clipped = [max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))]
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            self.count_skipped(BOX_OUTSIDE, ann_id)
            return None
        if clipped != [x1, y1, x2, y2]:
            self.count_skipped(BOX_CLIPPED, ann_id)
        return clipped

    def _clean_mask(self, mask: Any, height: int, width: int,
                    ann_id: Any = None) -> Tuple[Any, bool]:
        """``(mask to keep or None, usable)``: polygons with >= 3 points and finite
        coordinates, or an RLE that decodes to exactly the image's pixels. No mask at all
        (None, ``[]``) is usable: boxes-only data. Drops are counted with ``ann_id``."""
        if mask is None or (isinstance(mask, list) and not mask):
            return None, True
        if isinstance(mask, list):
            shaped = [p for p in mask if isinstance(p, list) and len(p) >= 6
                      and len(p) % 2 == 0]
            if len(shaped) < len(mask):
                self.count_skipped(POLYGON_SHORT, ann_id, len(mask) - len(shaped))
            polygons = [p for p in shaped if polygon_is_finite(p) and
                        not any(isinstance(v, bool) for v in p)]
            if len(polygons) < len(shaped):
                self.count_skipped(POLYGON_NOT_FINITE, ann_id, len(shaped) - len(polygons))
            if polygons:
                return polygons, True
        elif isinstance(mask, dict) and 'counts' in mask:
            if rle_problem(mask, height, width) is None:
                return mask, True
            self.count_skipped(RLE_INVALID, ann_id)
        self.count_skipped(MASK_INVALID, ann_id)
        return None, False
