"""Anchor generation with MMDetection 3.x's exact anchor coordinates and order.

Per level, the base anchors are centred at ``center_offset * stride`` with
``h_ratio = sqrt(ratio)``, ``w_ratio = 1 / h_ratio``, ``w = base_size *
w_ratio * scale`` (``ratio = h / w``). With ``scale_major=True`` the base
anchors are ordered ratio-major, scale-minor (index ``r * num_scales + s``).

``grid_priors`` returns, per level, ``(H * W * A, 4)`` anchors ordered by
location row-major (y, then x) and then by base anchor: the same order as a
head's ``(B, A * C, H, W)`` output after ``permute(0, 2, 3, 1)``.
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from mmft.registry import TASK_UTILS

DeviceType = Union[str, torch.device]


def _pair(value: Union[int, float, Sequence]) -> Tuple:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f'AnchorGenerator stride must be a number or (w, h), got {value!r}')
        return tuple(value)
    return (value, value)


@TASK_UTILS.register_module()
class AnchorGenerator:
    """Standard anchor generator for 2D anchor-based detectors.

    Args:
        strides: per level, an int or ``(stride_w, stride_h)``.
        ratios: height / width ratios of anchors.
        scales: anchor scales (multiples of ``base_size``); or give
            ``octave_base_scale`` and ``scales_per_octave`` instead.
        base_sizes: per level; default the level's (smaller) stride.
        scale_major: order base anchors ratio-major (True) or scale-major.
        centers: per level ``(x, y)`` centre of the base anchors.
        center_offset: centre at ``offset * base_size`` when ``centers`` is None.
        round_base_anchors: round base anchor corners to whole pixels, as torchvision's
            AnchorGenerator does (for torchvision weights; MMDetection does not round).
        sizes: per level, anchor sizes in pixels, instead of ``base_sizes`` x ``scales``
            (mmft only: torchvision's RetinaNet truncates its octave sizes to integers,
            ``(32, 40, 50), (64, 80, 101), ...``, which no shared ``scales`` give).
    """

    def __init__(self,
                 strides: Sequence[Union[int, Tuple[int, int]]],
                 ratios: Sequence[float],
                 scales: Optional[Sequence[float]] = None,
                 base_sizes: Optional[Sequence[int]] = None,
                 scale_major: bool = True,
                 octave_base_scale: Optional[int] = None,
                 scales_per_octave: Optional[int] = None,
                 centers: Optional[Sequence[Tuple[float, float]]] = None,
                 center_offset: float = 0.,
                 use_box_type: bool = False,
                 round_base_anchors: bool = False,
                 sizes: Optional[Sequence[Sequence[float]]] = None) -> None:
        if centers is not None:
            if center_offset != 0:
                raise ValueError('AnchorGenerator: give either centers or center_offset, '
                                 f'not both (center_offset={center_offset})')
            if len(centers) != len(strides):
                raise ValueError(f'AnchorGenerator: {len(centers)} centers for '
                                 f'{len(strides)} strides; give one per level')
        if not 0 <= center_offset <= 1:
            raise ValueError('AnchorGenerator center_offset must be in [0, 1], '
                             f'got {center_offset}')
        self.strides = [_pair(stride) for stride in strides]
        self.base_sizes = [min(stride) for stride in self.strides] \
            if base_sizes is None else list(base_sizes)
        if len(self.base_sizes) != len(self.strides):
            raise ValueError(f'AnchorGenerator: {len(self.base_sizes)} base_sizes for '
                             f'{len(self.strides)} strides; give one per level')

        if sizes is not None:
            if scales is not None or octave_base_scale is not None:
                raise ValueError('AnchorGenerator: give sizes (per level) or scales / '
                                 'octave_base_scale, not both (use _delete_=True when '
                                 'overriding a config)')
            if len(sizes) != len(self.strides) or len({len(s) for s in sizes}) != 1:
                raise ValueError(f'AnchorGenerator sizes must give the same number of sizes for '
                                 f'each of the {len(self.strides)} levels, got {sizes!r}')
            if center_offset != 0:
                raise ValueError('AnchorGenerator sizes (torchvision anchors) are centred at '
                                 f'the cell origin; center_offset must be 0, got {center_offset}')
            scales = [1.0] * len(sizes[0])  # placeholder: sizes replace base_size x scales
        elif (scales is not None) == (octave_base_scale is not None and
                                      scales_per_octave is not None):
            raise ValueError('AnchorGenerator: give either scales or both octave_base_scale '
                             'and scales_per_octave')
        self.sizes = None if sizes is None else [list(map(float, s)) for s in sizes]
        if scales is not None:
            self.scales = torch.tensor(scales, dtype=torch.float32)
        else:
            octave_scales = np.array([2**(i / scales_per_octave)
                                      for i in range(scales_per_octave)])
            self.scales = torch.tensor(octave_scales * octave_base_scale, dtype=torch.float32)
        self.octave_base_scale = octave_base_scale
        self.scales_per_octave = scales_per_octave
        self.ratios = torch.tensor(ratios, dtype=torch.float32)
        self.scale_major = scale_major
        self.centers = centers
        self.center_offset = center_offset
        self.use_box_type = use_box_type
        self.round_base_anchors = round_base_anchors
        self.base_anchors = self.gen_base_anchors()

    @property
    def num_levels(self) -> int:
        return len(self.strides)

    @property
    def num_base_priors(self) -> List[int]:
        """Anchors per location, per level."""
        return [anchors.size(0) for anchors in self.base_anchors]

    num_base_anchors = num_base_priors

    def gen_base_anchors(self) -> List[Tensor]:
        """Base anchors ``(A, 4)`` of every level, centred at the level's origin cell."""
        if self.sizes is not None:
            return [self.gen_single_level_base_anchors(
                        1, scales=torch.tensor(self.sizes[i], dtype=torch.float32),
                        ratios=self.ratios,
                        center=None if self.centers is None else self.centers[i])
                    for i in range(self.num_levels)]
        return [self.gen_single_level_base_anchors(
                    base_size, scales=self.scales, ratios=self.ratios,
                    center=None if self.centers is None else self.centers[i])
                for i, base_size in enumerate(self.base_sizes)]

    def gen_single_level_base_anchors(self, base_size: Union[int, float], scales: Tensor,
                                      ratios: Tensor,
                                      center: Optional[Tuple[float, float]] = None) -> Tensor:
        w = h = base_size
        if center is None:
            x_center, y_center = self.center_offset * w, self.center_offset * h
        else:
            x_center, y_center = center
        h_ratios = torch.sqrt(ratios)
        w_ratios = 1 / h_ratios
        if self.scale_major:
            ws = (w * w_ratios[:, None] * scales[None, :]).view(-1)
            hs = (h * h_ratios[:, None] * scales[None, :]).view(-1)
        else:
            ws = (w * scales[:, None] * w_ratios[None, :]).view(-1)
            hs = (h * scales[:, None] * h_ratios[None, :]).view(-1)
        anchors = torch.stack([x_center - 0.5 * ws, y_center - 0.5 * hs,
                               x_center + 0.5 * ws, y_center + 0.5 * hs], dim=-1)
        return anchors.round() if self.round_base_anchors else anchors

    def grid_priors(self, featmap_sizes: Sequence[Tuple[int, int]],
                    dtype: torch.dtype = torch.float32,
                    device: DeviceType = 'cpu') -> List[Tensor]:
        """Anchors of all levels: list of ``(H_i * W_i * A_i, 4)``."""
        if len(featmap_sizes) != self.num_levels:
            raise ValueError(f'AnchorGenerator has {self.num_levels} levels (strides '
                             f'{self.strides}) but got {len(featmap_sizes)} feature maps')
        return [self.single_level_grid_priors(featmap_sizes[i], i, dtype=dtype, device=device)
                for i in range(self.num_levels)]

    def single_level_grid_priors(self, featmap_size: Tuple[int, int], level_idx: int,
                                 dtype: torch.dtype = torch.float32,
                                 device: DeviceType = 'cpu') -> Tensor:
        base_anchors = self.base_anchors[level_idx].to(device=device, dtype=dtype)
        feat_h, feat_w = featmap_size
        stride_w, stride_h = self.strides[level_idx]
        shift_x = torch.arange(0, feat_w, device=device).to(dtype) * stride_w
        shift_y = torch.arange(0, feat_h, device=device).to(dtype) * stride_h
        shift_yy, shift_xx = torch.meshgrid(shift_y, shift_x, indexing='ij')
        shift_xx, shift_yy = shift_xx.reshape(-1), shift_yy.reshape(-1)
        shifts = torch.stack([shift_xx, shift_yy, shift_xx, shift_yy], dim=-1)
        return (base_anchors[None, :, :] + shifts[:, None, :]).view(-1, 4)

    def valid_flags(self, featmap_sizes: Sequence[Tuple[int, int]],
                    pad_shape: Tuple[int, ...], device: DeviceType = 'cpu') -> List[Tensor]:
        """Per level, ``(H_i * W_i * A_i,)`` bool: False for locations in the batch
        padding beyond this image's own ``pad_shape`` ``(h, w)``."""
        flags = []
        h, w = pad_shape[:2]
        for i in range(self.num_levels):
            stride_w, stride_h = self.strides[i]
            feat_h, feat_w = featmap_sizes[i]
            valid_h = min(int(math.ceil(h / stride_h)), feat_h)
            valid_w = min(int(math.ceil(w / stride_w)), feat_w)
            flags.append(self.single_level_valid_flags((feat_h, feat_w), (valid_h, valid_w),
                                                       self.num_base_priors[i], device=device))
        return flags

    def single_level_valid_flags(self, featmap_size: Tuple[int, int],
                                 valid_size: Tuple[int, int], num_base_anchors: int,
                                 device: DeviceType = 'cpu') -> Tensor:
        feat_h, feat_w = featmap_size
        valid_h, valid_w = valid_size
        valid_x = torch.zeros(feat_w, dtype=torch.bool, device=device)
        valid_y = torch.zeros(feat_h, dtype=torch.bool, device=device)
        valid_x[:valid_w] = True
        valid_y[:valid_h] = True
        valid = (valid_y[:, None] & valid_x[None, :]).reshape(-1)
        return valid[:, None].expand(valid.size(0), num_base_anchors).reshape(-1)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(strides={self.strides}, ratios={self.ratios.tolist()}, '
                f'scales={self.scales.tolist()}, base_sizes={self.base_sizes}, '
                f'scale_major={self.scale_major}, center_offset={self.center_offset})')


def anchor_inside_flags(flat_anchors: Tensor, valid_flags: Tensor, img_shape: Tuple[int, ...],
                        allowed_border: int = 0) -> Tensor:
    """Valid anchors lying within ``img_shape`` ``(h, w)`` extended by ``allowed_border``
    (a negative border keeps every valid anchor)."""
    img_h, img_w = img_shape[:2]
    if allowed_border < 0:
        return valid_flags
    return valid_flags & \
        (flat_anchors[:, 0] >= -allowed_border) & \
        (flat_anchors[:, 1] >= -allowed_border) & \
        (flat_anchors[:, 2] < img_w + allowed_border) & \
        (flat_anchors[:, 3] < img_h + allowed_border)
