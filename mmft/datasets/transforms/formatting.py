"""PackDetInputs: the last pipeline step, ``results`` -> what the model's data
preprocessor takes.

Output: ``dict(inputs=(C, H, W) tensor, data_samples=DetDataSample)``. ``inputs`` keeps the
image's dtype (uint8 BGR from LoadImageFromFile; float32 after PhotoMetricDistortion) and
channel order; DetDataPreprocessor normalises and converts. Instances whose
``gt_ignore_flags`` is set go to ``ignored_instances``, the others to ``gt_instances``:
``bboxes`` float32 ``(N, 4)``, ``labels`` int64 ``(N,)``, ``masks`` as loaded.
"""
from typing import Sequence

import numpy as np
import torch
from mmengine.structures import InstanceData

from mmft.registry import TRANSFORMS
from mmft.structures import DetDataSample
from .base import BaseTransform

_FIELDS = {'gt_bboxes': 'bboxes', 'gt_bboxes_labels': 'labels', 'gt_masks': 'masks'}
# what a meta key means when the step that sets it is not in the pipeline: no Resize is a
# scale of 1, no RandomFlip is no flip
_DEFAULT_META = {'scale_factor': (1.0, 1.0), 'flip': False, 'flip_direction': None}
_DTYPES = {'gt_bboxes': torch.float32, 'gt_bboxes_labels': torch.int64}


@TRANSFORMS.register_module()
class PackDetInputs(BaseTransform):
    """Pack the image, the instances and the image meta.

    Args:
        meta_keys: Keys of ``results`` copied into the sample's metainfo. Without a
            Resize, ``scale_factor`` is ``(1.0, 1.0)``; without a RandomFlip, ``flip``
            is False and ``flip_direction`` None; any other missing key is an error.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                                             'scale_factor', 'flip', 'flip_direction')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        missing = [k for k in self.meta_keys if k not in results and k not in _DEFAULT_META]
        if missing:
            raise KeyError(f'PackDetInputs meta_keys {missing} are not in the results (keys: '
                           f'{sorted(results)}); add the transform that sets them or remove '
                           'them from meta_keys')
        packed = {}
        if 'img' in results:
            img = results['img']
            img = img[..., None] if img.ndim == 2 else img
            packed['inputs'] = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))

        flags = results.get('gt_ignore_flags')
        keep = np.flatnonzero(~flags) if flags is not None else None
        ignored = np.flatnonzero(flags) if flags is not None else None
        gt, ignored_gt = InstanceData(), InstanceData()
        for key, field in _FIELDS.items():
            if key not in results:
                continue
            value = results[key]
            if keep is None:
                gt[field] = self._convert(key, value)
            else:
                gt[field] = self._convert(key, value[keep])
                ignored_gt[field] = self._convert(key, value[ignored])

        sample = DetDataSample()
        sample.gt_instances = gt
        sample.ignored_instances = ignored_gt
        sample.set_metainfo({k: results[k] if k in results else _DEFAULT_META[k]
                             for k in self.meta_keys})
        if results.get('gt_rescaled'):  # read by metrics that score against sample gt
            sample.set_metainfo({'gt_rescaled': True})
        packed['data_samples'] = sample
        return packed

    @staticmethod
    def _convert(key: str, value):
        if key in _DTYPES:
            return torch.as_tensor(np.asarray(value), dtype=_DTYPES[key])
        return value
