"""Batch augmentations that ``DetDataPreprocessor(batch_augments=[...])`` runs in training,
after the batch is stacked: ``(inputs (B, C, H, W), data_samples) -> same``.
"""
import random
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import broadcast, get_dist_info
from mmengine.logging import MessageHub
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


@MODELS.register_module()
class BatchSyncRandomResize(nn.Module):
    """Resize the whole batch (bilinear) and its boxes to a size drawn every ``interval``
    iterations, the same on every process (YOLOX's multi-scale training).

    The first batches keep their own size; at the end of every ``interval``-th iteration
    (the Runner's ``iter`` counter, as MMDetection) rank 0 draws ``s`` uniformly from
    ``random_size_range / size_divisor`` and the next batches become ``size_divisor * s``
    high and ``size_divisor * int(s * w / h)`` wide, ``(w, h)`` the current batch's size.
    ``img_shape``, ``pad_shape``, ``batch_input_shape`` and the gt (and ignored) boxes are
    scaled along.

    Args:
        random_size_range: ``(min, max)`` height in pixels.
        interval: iterations between draws.
        size_divisor: sizes are multiples of it.
    """

    def __init__(self, random_size_range: Tuple[int, int], interval: int = 10,
                 size_divisor: int = 32) -> None:
        super().__init__()
        if len(random_size_range) != 2 or not 0 < random_size_range[0] <= random_size_range[1]:
            raise ValueError(f'BatchSyncRandomResize random_size_range={random_size_range!r} '
                             'must be (min, max) heights with 0 < min <= max, e.g. (480, 800)')
        if interval < 1 or size_divisor < 1:
            raise ValueError(f'BatchSyncRandomResize interval ({interval}) and size_divisor '
                             f'({size_divisor}) must be >= 1')
        self._input_size: Optional[Tuple[int, int]] = None
        self._random_size_range = (round(random_size_range[0] / size_divisor),
                                   round(random_size_range[1] / size_divisor))
        self._interval = interval
        self._size_divisor = size_divisor
        self._calls = 0

    def forward(self, inputs: Tensor, data_samples: List) -> Tuple[Tensor, List]:
        """Resize ``inputs`` and the samples to the current size, then maybe draw anew."""
        h, w = inputs.shape[-2:]
        if self._input_size is None:
            self._input_size = (h, w)
        scale_y, scale_x = self._input_size[0] / h, self._input_size[1] / w
        if scale_x != 1 or scale_y != 1:
            inputs = F.interpolate(inputs, size=self._input_size, mode='bilinear',
                                   align_corners=False)
            for sample in data_samples:
                img_h, img_w = sample.img_shape[:2]
                pad_h, pad_w = sample.metainfo.get('pad_shape', sample.img_shape)[:2]
                sample.set_metainfo({
                    'img_shape': (int(img_h * scale_y), int(img_w * scale_x)),
                    'pad_shape': (int(pad_h * scale_y), int(pad_w * scale_x)),
                    'batch_input_shape': self._input_size})
                for field in ('gt_instances', 'ignored_instances'):
                    if field in sample and 'bboxes' in sample.get(field):
                        boxes = sample.get(field).bboxes
                        boxes[..., 0::2] = boxes[..., 0::2] * scale_x
                        boxes[..., 1::2] = boxes[..., 1::2] * scale_y
        self._calls += 1
        iteration = MessageHub.get_current_instance().get_info('iter')
        # outside a Runner there is no iteration counter: count the calls instead
        iteration = self._calls - 1 if iteration is None else iteration
        if (iteration + 1) % self._interval == 0:
            self._input_size = self._get_random_size(w / h, inputs.device)
        return inputs, data_samples

    def _get_random_size(self, aspect_ratio: float, device) -> Tuple[int, int]:
        """A new ``(h, w)`` drawn on rank 0 and broadcast to every process."""
        size = torch.zeros(2, dtype=torch.long, device=device)
        if get_dist_info()[0] == 0:
            s = random.randint(*self._random_size_range)
            size[0] = self._size_divisor * s
            size[1] = self._size_divisor * int(aspect_ratio * s)
        broadcast(size, 0)
        return int(size[0]), int(size[1])
