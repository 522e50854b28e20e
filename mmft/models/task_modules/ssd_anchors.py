"""SSD's anchors (MMDetection 3.x ``SSDAnchorGenerator``: same sizes, order and centres).

Per level ``k`` with sizes ``min_k``, ``max_k`` and extra ratios ``r`` (``ratios[k]``), the
base anchors, centred at ``(stride / 2, stride / 2)``, are in this order::

    [min_k x min_k, sqrt(min_k * max_k) square, min_k at 1/r_1, min_k at r_1, 1/r_2, r_2 ...]

(``ratio = h / w``), so a level has ``2 + 2 * len(ratios[k])`` anchors: 4 or 6. Without
``min_sizes``/``max_sizes`` the sizes come from ``basesize_ratio_range`` and ``input_size``
(300 or 512) as in the SSD paper's Caffe code, including its integer rounding.
"""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from mmft.registry import TASK_UTILS
from .anchors import AnchorGenerator, _pair

# first level's (min, max) size in percent of the input, by (input_size, range start)
_FIRST_LEVEL = {(300, 0.15): (7, 15), (300, 0.2): (10, 20),
                (512, 0.1): (4, 10), (512, 0.15): (7, 15)}


def ssd_anchor_sizes(input_size: int, basesize_ratio_range: Tuple[float, float],
                     num_levels: int) -> Tuple[List[int], List[int]]:
    """Per-level ``(min_sizes, max_sizes)`` in pixels of SSD300/512's recipe."""
    lo, hi = (int(r * 100) for r in basesize_ratio_range)
    step = int(np.floor(hi - lo) / (num_levels - 2))
    min_sizes, max_sizes = [], []
    for ratio in range(lo, hi + 1, step):
        min_sizes.append(int(input_size * ratio / 100))
        max_sizes.append(int(input_size * (ratio + step) / 100))
    key = (input_size, basesize_ratio_range[0])
    if key not in _FIRST_LEVEL:
        known = sorted(_FIRST_LEVEL)
        raise ValueError(f'SSDAnchorGenerator: input_size={input_size} with '
                         f'basesize_ratio_range[0]={basesize_ratio_range[0]} has no preset sizes '
                         f'(known (input_size, start): {known}); give min_sizes and max_sizes')
    first_min, first_max = _FIRST_LEVEL[key]
    min_sizes.insert(0, int(input_size * first_min / 100))
    max_sizes.insert(0, int(input_size * first_max / 100))
    return min_sizes, max_sizes


@TASK_UTILS.register_module()
class SSDAnchorGenerator(AnchorGenerator):
    """Anchors of SSD (see the module docstring).

    Args:
        strides: per level, an int or ``(stride_w, stride_h)``.
        ratios: per level, the extra aspect ratios (each adds ``1/r`` and ``r``).
        min_sizes, max_sizes: per level anchor sizes in pixels (give both or neither).
        basesize_ratio_range: size range as fractions of ``input_size`` (when no sizes).
        input_size: 300 or 512 (when no sizes).
        scale_major: order of the raw (scale, ratio) grid before SSD's selection;
            MMDetection's configs all use False (the order in the module docstring).
        clip_to_input: clamp anchor widths and heights to ``input_size`` (mmft's option
            for torchvision's SSD weights: its ``DefaultBoxGenerator(clip=True)`` does so;
            MMDetection does not).
    """

    def __init__(self,
                 strides: Sequence[Union[int, Tuple[int, int]]],
                 ratios: Sequence[Sequence[float]],
                 min_sizes: Optional[Sequence[float]] = None,
                 max_sizes: Optional[Sequence[float]] = None,
                 basesize_ratio_range: Tuple[float, float] = (0.15, 0.9),
                 input_size: int = 300,
                 scale_major: bool = True,
                 use_box_type: bool = False,
                 clip_to_input: bool = False) -> None:
        if len(strides) != len(ratios):
            raise ValueError(f'SSDAnchorGenerator: {len(strides)} strides but {len(ratios)} '
                             'ratio lists; give one list of ratios per level')
        if (min_sizes is None) != (max_sizes is None):
            raise ValueError('SSDAnchorGenerator: give both min_sizes and max_sizes, or neither')
        self.strides = [_pair(stride) for stride in strides]
        self.centers = [(sw / 2., sh / 2.) for sw, sh in self.strides]
        self.input_size = input_size
        self.basesize_ratio_range = tuple(basesize_ratio_range)
        if min_sizes is None:
            min_sizes, max_sizes = ssd_anchor_sizes(input_size, self.basesize_ratio_range,
                                                    len(self.strides))
        if not len(min_sizes) == len(max_sizes) == len(self.strides):
            raise ValueError(f'SSDAnchorGenerator: {len(min_sizes)} min_sizes and '
                             f'{len(max_sizes)} max_sizes for {len(self.strides)} levels')
        self.min_sizes, self.max_sizes = list(min_sizes), list(max_sizes)
        self.base_sizes = list(min_sizes)
        self.scales = [torch.tensor([1., float(np.sqrt(mx / mn))])
                       for mn, mx in zip(min_sizes, max_sizes)]
        self.ratios = []
        for level_ratios in ratios:
            values = [1.]
            for r in level_ratios:
                values += [1 / r, r]
            self.ratios.append(torch.tensor(values, dtype=torch.float32))
        self.scale_major = scale_major
        self.center_offset = 0
        self.octave_base_scale = self.scales_per_octave = None
        self.round_base_anchors = False
        self.use_box_type = use_box_type
        self.clip_to_input = clip_to_input
        self.base_anchors = self.gen_base_anchors()

    def gen_base_anchors(self) -> List[Tensor]:
        """Per level ``(2 + 2 * len(ratios), 4)`` anchors in SSD's order."""
        multi_level = []
        for i, base_size in enumerate(self.base_sizes):
            anchors = self.gen_single_level_base_anchors(
                base_size, scales=self.scales[i], ratios=self.ratios[i], center=self.centers[i])
            num_ratios = len(self.ratios[i])
            # keep (scale 1, every ratio) and (scale 2, ratio 1), the latter second; the
            # indices assume scale_major=False and are used as is otherwise, as in MMDetection
            order = list(range(num_ratios))
            order.insert(1, num_ratios)
            anchors = anchors[torch.tensor(order)]
            if self.clip_to_input:
                centre = (anchors[:, :2] + anchors[:, 2:]) / 2
                half = ((anchors[:, 2:] - anchors[:, :2]).clamp(max=self.input_size)) / 2
                anchors = torch.cat([centre - half, centre + half], dim=-1)
            multi_level.append(anchors)
        return multi_level

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(strides={self.strides}, min_sizes={self.min_sizes}, '
                f'max_sizes={self.max_sizes}, ratios={[r.tolist() for r in self.ratios]}, '
                f'scale_major={self.scale_major})')
