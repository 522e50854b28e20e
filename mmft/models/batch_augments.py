"""Batch augmentations that ``DetDataPreprocessor(batch_augments=[...])`` runs in training,
after the batch is stacked: ``(inputs (B, C, H, W), data_samples) -> same``.
"""
from typing import List, Optional, Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmengine.structures import PixelData
from torch import Tensor

from mmft.registry import MODELS


@MODELS.register_module()
class BatchFixedSizePad(nn.Module):
    """Pad the batch at the bottom and right up to a fixed ``size`` (boxes do not move).

    A batch already at least that large in both dimensions is left unchanged; otherwise
    each dimension is padded up to ``size`` (never cropped). ``batch_input_shape`` and
    ``pad_shape`` of every sample become ``size``.

    Args:
        size: ``(h, w)`` (height first, as MMDetection).
        img_pad_value: Value of padded image pixels (after normalisation).
        pad_mask: Pad ``gt_instances.masks`` too.
        mask_pad_value: Value of padded mask pixels.
        pad_seg: Pad ``gt_sem_seg.sem_seg`` too.
        seg_pad_value: Value of padded semantic-map pixels.
    """

    def __init__(self,
                 size: Tuple[int, int],
                 img_pad_value: int = 0,
                 pad_mask: bool = False,
                 mask_pad_value: int = 0,
                 pad_seg: bool = False,
                 seg_pad_value: int = 255) -> None:
        super().__init__()
        if not isinstance(size, (tuple, list)) or len(size) != 2 or \
                not all(isinstance(s, int) and s > 0 for s in size):
            raise ValueError(f'BatchFixedSizePad size={size!r} must be two positive ints '
                             '(h, w), e.g. (1024, 1024)')
        self.size = tuple(size)
        self.img_pad_value = img_pad_value
        self.pad_mask = pad_mask
        self.mask_pad_value = mask_pad_value
        self.pad_seg = pad_seg
        self.seg_pad_value = seg_pad_value

    def forward(self, inputs: Tensor,
                data_samples: Optional[List] = None) -> Tuple[Tensor, Optional[List]]:
        """Pad ``inputs`` and, as configured, the samples' masks and semantic maps."""
        src_h, src_w = inputs.shape[-2:]
        dst_h, dst_w = self.size
        if src_h >= dst_h and src_w >= dst_w:
            return inputs, data_samples
        # a dimension already larger stays as it is: padding never crops
        dst_h, dst_w = max(dst_h, src_h), max(dst_w, src_w)
        inputs = F.pad(inputs, (0, dst_w - src_w, 0, dst_h - src_h), mode='constant',
                       value=self.img_pad_value)
        for sample in data_samples or []:
            sample.set_metainfo({'batch_input_shape': (dst_h, dst_w), 'pad_shape': (dst_h, dst_w)})
            if self.pad_mask and 'gt_instances' in sample and 'masks' in sample.gt_instances:
                sample.gt_instances.masks = sample.gt_instances.masks.pad(
                    (dst_h, dst_w), pad_val=self.mask_pad_value)
            if self.pad_seg and 'gt_sem_seg' in sample:
                seg = sample.gt_sem_seg.sem_seg
                h, w = seg.shape[-2:]
                # a PixelData's shape is fixed once set: build a new one
                sample.gt_sem_seg = PixelData(
                    metainfo=sample.gt_sem_seg.metainfo,
                    sem_seg=F.pad(seg, (0, dst_w - w, 0, dst_h - h), mode='constant',
                                  value=self.seg_pad_value))
        return inputs, data_samples
