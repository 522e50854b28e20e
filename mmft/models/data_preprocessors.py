"""Batch images for a detector: normalise, BGR->RGB, pad, record shapes.

Input (from ``PackDetInputs`` through a pseudo-collating dataloader):
``{'inputs': list of uint8 (3, H_i, W_i) BGR tensors, 'data_samples': list of
DetDataSample}``. Output: ``{'inputs': float (B, 3, H, W), 'data_samples': ...}``
where ``H, W`` is the largest image padded up to ``pad_size_divisor``
(bottom/right padding, so box coordinates are unchanged). Each sample's metainfo
gains ``batch_input_shape`` (``(H, W)``, shared by the batch) and ``pad_shape``
(its own image padded to the divisor), both ``(h, w)``.
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import ImgDataPreprocessor
from mmengine.structures import PixelData

from mmft.registry import MODELS
from mmft.structures import SampleList


@MODELS.register_module()
class DetDataPreprocessor(ImgDataPreprocessor):
    """MMDetection 3.x's detection data preprocessor.

    Args:
        mean, std: per-channel normalisation, in the channel order after
            ``bgr_to_rgb``.
        pad_size_divisor: pad height and width up to a multiple of this.
        pad_value: value of padded pixels (after normalisation).
        pad_mask: pad ``gt_instances.masks`` to ``batch_input_shape`` in training.
        mask_pad_value: value of padded mask pixels.
        pad_seg, seg_pad_value: pad ``gt_sem_seg`` when present.
        bgr_to_rgb, rgb_to_bgr: flip channel order.
        boxtype2tensor: turn box objects with a ``.tensor`` into plain tensors
            (mmft already uses tensors; kept for config compatibility).
        batch_augments: configs of batch-level augmentations run in training.
        channels_last: hand the batch on in channels-last memory layout (mmft's own
            option, not MMDetection's). The convolutions then run in NHWC, which oneDNN
            (CPU) and cuDNN with AMP compute faster than NCHW; the network keeps the
            layout from layer to layer. Values equal the default layout's up to float
            rounding (docs/benchmark.md has the measured gain).
    """

    def __init__(self,
                 mean: Optional[Sequence[Union[float, int]]] = None,
                 std: Optional[Sequence[Union[float, int]]] = None,
                 pad_size_divisor: int = 1,
                 pad_value: Union[float, int] = 0,
                 pad_mask: bool = False,
                 mask_pad_value: int = 0,
                 pad_seg: bool = False,
                 seg_pad_value: int = 255,
                 bgr_to_rgb: bool = False,
                 rgb_to_bgr: bool = False,
                 boxtype2tensor: bool = True,
                 non_blocking: Optional[bool] = False,
                 batch_augments: Optional[List[dict]] = None,
                 channels_last: bool = False) -> None:
        if not isinstance(pad_size_divisor, int) or pad_size_divisor < 1:
            raise ValueError(f'DetDataPreprocessor pad_size_divisor must be a positive int, '
                             f'got {pad_size_divisor!r}')
        super().__init__(mean=mean, std=std, pad_size_divisor=pad_size_divisor,
                         pad_value=pad_value, bgr_to_rgb=bgr_to_rgb,
                         rgb_to_bgr=rgb_to_bgr, non_blocking=non_blocking)
        self.pad_mask = pad_mask
        self.mask_pad_value = mask_pad_value
        self.pad_seg = pad_seg
        self.seg_pad_value = seg_pad_value
        self.boxtype2tensor = boxtype2tensor
        self.channels_last = bool(channels_last)
        self.batch_augments = nn.ModuleList(
            [MODELS.build(aug) for aug in batch_augments]) if batch_augments else None

    def forward(self, data: dict, training: bool = False) -> dict:
        """Normalise, pad and stack ``data['inputs']``; annotate the samples."""
        if not isinstance(data, dict) or 'inputs' not in data:
            raise TypeError("DetDataPreprocessor expects a dict with 'inputs' (and "
                            f"'data_samples'), got {type(data).__name__}")
        batch_pad_shape = self._get_pad_shape(data)
        data = super().forward(data=data, training=training)
        inputs, data_samples = data['inputs'], data['data_samples']

        if data_samples is not None:
            batch_input_shape = tuple(inputs.size()[-2:])
            for data_sample, pad_shape in zip(data_samples, batch_pad_shape):
                data_sample.set_metainfo({'batch_input_shape': batch_input_shape,
                                          'pad_shape': pad_shape})
            if self.boxtype2tensor:
                _boxtype2tensor(data_samples)
            if self.pad_mask and training:
                self.pad_gt_masks(data_samples)
            if self.pad_seg and training:
                self.pad_gt_sem_seg(data_samples)

        if training and self.batch_augments is not None:
            for batch_aug in self.batch_augments:
                inputs, data_samples = batch_aug(inputs, data_samples)
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return {'inputs': inputs, 'data_samples': data_samples}

    def _get_pad_shape(self, data: dict) -> List[Tuple[int, int]]:
        """Each image's ``(h, w)`` padded up to the divisor, before batching."""
        inputs = data['inputs']
        if isinstance(inputs, torch.Tensor):
            if inputs.dim() != 4:
                raise ValueError('DetDataPreprocessor inputs as one tensor must be (B, C, H, W), '
                                 f'got shape {tuple(inputs.shape)}')
            shapes = [tuple(inputs.shape[-2:])] * inputs.size(0)
        else:
            shapes = [tuple(img.shape[-2:]) for img in inputs]
        d = self.pad_size_divisor
        return [(int(math.ceil(h / d)) * d, int(math.ceil(w / d)) * d) for h, w in shapes]

    def pad_gt_masks(self, batch_data_samples: SampleList) -> None:
        """Pad ``gt_instances.masks`` (BitmapMasks) to ``batch_input_shape``."""
        for data_sample in batch_data_samples:
            gt = data_sample.get('gt_instances', None)
            if gt is not None and 'masks' in gt:
                gt.masks = gt.masks.pad(data_sample.batch_input_shape,
                                        pad_val=self.mask_pad_value)

    def pad_gt_sem_seg(self, batch_data_samples: SampleList) -> None:
        """Pad ``gt_sem_seg.sem_seg`` ((1, H, W) tensors) to ``batch_input_shape``."""
        for data_sample in batch_data_samples:
            if 'gt_sem_seg' not in data_sample:
                continue
            sem_seg = data_sample.gt_sem_seg.sem_seg
            h, w = sem_seg.shape[-2:]
            pad_h, pad_w = data_sample.batch_input_shape
            padded = nn.functional.pad(sem_seg, (0, max(pad_w - w, 0), 0, max(pad_h - h, 0)),
                                       mode='constant', value=self.seg_pad_value)
            # a new PixelData: one keeps the height and width of its first map
            data_sample.gt_sem_seg = PixelData(sem_seg=padded,
                                               metainfo=data_sample.gt_sem_seg.metainfo)


def _boxtype2tensor(batch_data_samples: SampleList) -> None:
    """Replace box objects exposing ``.tensor`` (mmdet's box types) with tensors."""
    for data_sample in batch_data_samples:
        for key in ('gt_instances', 'ignored_instances', 'proposals', 'pred_instances'):
            instances = data_sample.get(key, None)
            if instances is None or 'bboxes' not in instances:
                continue
            boxes = instances.bboxes
            if not isinstance(boxes, torch.Tensor) and hasattr(boxes, 'tensor'):
                instances.bboxes = boxes.tensor
