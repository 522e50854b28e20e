"""The transform protocol of mmft's pipelines: mmcv's ``BaseTransform`` without mmcv.

A transform is a callable on the ``results`` dict of one sample. It changes the dict in
place and returns it, or returns None to drop the sample; MMEngine's ``BaseDataset`` then
takes another one in training. A transform that drops a sample because the *data* is bad
(not because a random augmentation failed) first writes the reason under
:data:`SKIP_REASON_KEY`, so that the dataset can count and log it.

Keys of ``results`` (MMDetection 3.x's names):
- ``img``: ``(H, W, 3)`` BGR, uint8 (float32 after ``to_float32`` or photometric transforms);
- ``img_shape``, ``ori_shape``, ``pad_shape``: ``(h, w)``; ``scale_factor``: ``(w_scale, h_scale)``
  of the last resize; ``flip`` (bool) and ``flip_direction``;
- ``gt_bboxes``: float32 ``(N, 4)`` ``(x1, y1, x2, y2)`` in pixels of the current ``img``;
  ``gt_bboxes_labels``: int64 ``(N,)``; ``gt_ignore_flags``: bool ``(N,)``;
  ``gt_masks``: :class:`BitmapMasks` or :class:`PolygonMasks` of ``N`` instances, same size
  as ``img``. Every transform keeps these four aligned row for row.
"""
from abc import ABCMeta, abstractmethod
from typing import Optional

import numpy as np

SKIP_REASON_KEY = 'skip_reason'

# per-instance keys that a transform dropping instances must index together
INSTANCE_KEYS = ('gt_bboxes', 'gt_bboxes_labels', 'gt_ignore_flags', 'gt_masks')


class BaseTransform(metaclass=ABCMeta):
    """A pipeline step: subclasses implement :meth:`transform`."""

    def __call__(self, results: dict) -> Optional[dict]:
        return self.transform(results)

    @abstractmethod
    def transform(self, results: dict) -> Optional[dict]:
        """Change ``results`` in place and return it, or return None to drop the sample."""

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in vars(self).items() if not k.startswith('_'))
        return f'{type(self).__name__}({args})'


def skip_sample(results: dict, reason: str) -> None:
    """Record why a sample's data is unusable; returns None for ``return skip_sample(...)``."""
    results[SKIP_REASON_KEY] = reason
    return None


def select_instances(results: dict, keep: np.ndarray) -> None:
    """Keep the instances ``keep`` (bool mask or indices) in every per-instance key."""
    index = np.flatnonzero(keep) if keep.dtype == bool else keep
    for key in INSTANCE_KEYS:
        if results.get(key) is not None:
            results[key] = results[key][index]
