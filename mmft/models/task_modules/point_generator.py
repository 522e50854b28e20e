"""Point priors of anchor-free heads (FCOS), MMDetection 3.x's ``MlvlPointGenerator``.

Per level, ``grid_priors`` returns ``(H * W, 2)`` points ``((x + offset) * stride_w,
(y + offset) * stride_h)`` ordered row-major (y, then x), the order of a head's
``(B, C, H, W)`` output after ``permute(0, 2, 3, 1)``; with ``with_stride`` each
row is ``(x, y, stride_w, stride_h)``.
"""
import math
from typing import List, Sequence, Tuple, Union

import torch
from torch import Tensor

from mmft.registry import TASK_UTILS
from .anchors import DeviceType, _pair


@TASK_UTILS.register_module()
class MlvlPointGenerator:
    """One point per feature-map location on every level.

    Args:
        strides: per level, an int or ``(stride_w, stride_h)``.
        offset: point position within its cell, in strides (0.5: the centre).
    """

    def __init__(self, strides: Sequence[Union[int, Tuple[int, int]]],
                 offset: float = 0.5) -> None:
        self.strides = [_pair(stride) for stride in strides]
        self.offset = offset

    @property
    def num_levels(self) -> int:
        return len(self.strides)

    @property
    def num_base_priors(self) -> List[int]:
        return [1 for _ in self.strides]

    def grid_priors(self, featmap_sizes: Sequence[Tuple[int, int]],
                    dtype: torch.dtype = torch.float32, device: DeviceType = 'cpu',
                    with_stride: bool = False) -> List[Tensor]:
        """Points of all levels: list of ``(H_i * W_i, 2)`` (``4`` with strides)."""
        if len(featmap_sizes) != self.num_levels:
            raise ValueError(f'MlvlPointGenerator has {self.num_levels} levels (strides '
                             f'{self.strides}) but got {len(featmap_sizes)} feature maps')
        return [self.single_level_grid_priors(featmap_sizes[i], i, dtype, device, with_stride)
                for i in range(self.num_levels)]

    def single_level_grid_priors(self, featmap_size: Tuple[int, int], level_idx: int,
                                 dtype: torch.dtype = torch.float32,
                                 device: DeviceType = 'cpu',
                                 with_stride: bool = False) -> Tensor:
        feat_h, feat_w = featmap_size
        stride_w, stride_h = self.strides[level_idx]
        shift_x = (torch.arange(0, feat_w, device=device) + self.offset) * stride_w
        shift_y = (torch.arange(0, feat_h, device=device) + self.offset) * stride_h
        shift_yy, shift_xx = torch.meshgrid(shift_y.to(dtype), shift_x.to(dtype), indexing='ij')
        points = [shift_xx.reshape(-1), shift_yy.reshape(-1)]
        if with_stride:
            points += [shift_xx.new_full((shift_xx.numel(),), stride_w),
                       shift_yy.new_full((shift_yy.numel(),), stride_h)]
        return torch.stack(points, dim=-1)

    def valid_flags(self, featmap_sizes: Sequence[Tuple[int, int]],
                    pad_shape: Tuple[int, ...], device: DeviceType = 'cpu') -> List[Tensor]:
        """Per level ``(H_i * W_i,)`` bool: False in the batch padding beyond ``pad_shape``."""
        h, w = pad_shape[:2]
        flags = []
        for i, (feat_h, feat_w) in enumerate(featmap_sizes):
            stride_w, stride_h = self.strides[i]
            valid_h = min(int(math.ceil(h / stride_h)), feat_h)
            valid_w = min(int(math.ceil(w / stride_w)), feat_w)
            valid_x = torch.zeros(feat_w, dtype=torch.bool, device=device)
            valid_y = torch.zeros(feat_h, dtype=torch.bool, device=device)
            valid_x[:valid_w] = True
            valid_y[:valid_h] = True
            flags.append((valid_y[:, None] & valid_x[None, :]).reshape(-1))
        return flags

    def __repr__(self) -> str:
        return f'{type(self).__name__}(strides={self.strides}, offset={self.offset})'
