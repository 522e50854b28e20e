"""RoI feature extractors: pool a fixed-size feature map for each RoI from an FPN.

RoIs are ``(K, 5)`` tensors ``(batch_index, x1, y1, x2, y2)`` in input-image
pixels (see :func:`mmft.structures.bbox2roi`). The output is
``(K, out_channels, *output_size)``, in RoI order.

``SingleRoIExtractor`` pools each RoI from one level, chosen by its scale
``s = sqrt(w * h)`` as MMDetection does (not the FPN paper's ``k0 = 4`` rule):
level ``floor(log2(s / finest_scale + 1e-6))`` clamped to the available levels,
so with ``finest_scale=56`` RoIs below 112 px go to the finest level (stride 4),
112-224 px to the next, 224-448 px to the third and larger ones to the fourth.

The extractors have no parameters (an empty state_dict, as in MMDetection).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.utils import _pair

from mmft.registry import MODELS
from ..layers.roi_align import roi_align


class RoIAlign(nn.Module):
    """mmcv's ``RoIAlign`` arguments on top of ``torchvision.ops.roi_align`` (with a faster
    CPU backward, see :mod:`mmft.models.layers.roi_align`).

    ``aligned=True`` (the default, as in mmcv) shifts box corners by half a
    pixel so that sampling points sit on pixel centres; ``sampling_ratio=0``
    samples ``ceil(roi_size / output_size)`` points per bin.
    """

    def __init__(self, output_size: Union[int, Tuple[int, int]], spatial_scale: float = 1.0,
                 sampling_ratio: int = 0, pool_mode: str = 'avg', aligned: bool = True,
                 use_torchvision: bool = False) -> None:
        super().__init__()
        if pool_mode != 'avg':
            raise ValueError(f"RoIAlign pool_mode {pool_mode!r} is not supported (torchvision's "
                             "roi_align averages); use pool_mode='avg'")
        self.output_size = _pair(output_size)
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.aligned = aligned

    def forward(self, feats: Tensor, rois: Tensor) -> Tensor:
        return roi_align(feats, rois.to(feats.dtype), self.output_size, self.spatial_scale,
                         self.sampling_ratio, self.aligned)

    def extra_repr(self) -> str:
        return (f'output_size={self.output_size}, spatial_scale={self.spatial_scale}, '
                f'sampling_ratio={self.sampling_ratio}, aligned={self.aligned}')


_ROI_LAYERS = {'RoIAlign': RoIAlign}


@MODELS.register_module()
class SingleRoIExtractor(BaseModule):
    """Pool each RoI from the one FPN level that matches its scale.

    Args:
        roi_layer: e.g. ``dict(type='RoIAlign', output_size=7, sampling_ratio=0)``;
            one layer per level is built with ``spatial_scale = 1 / stride``.
        out_channels: channels of the input levels (and of the output).
        featmap_strides: strides of the levels used; only the first
            ``len(featmap_strides)`` feature maps are read.
        finest_scale: RoI scale mapped to the bottom of level 0's range.
    """

    def __init__(self, roi_layer: Dict, out_channels: int, featmap_strides: Sequence[int],
                 finest_scale: int = 56, init_cfg: Optional[Union[Dict, List[Dict]]] = None
                 ) -> None:
        super().__init__(init_cfg)
        cfg = dict(roi_layer)
        layer_type = cfg.pop('type', None)
        if layer_type not in _ROI_LAYERS:
            raise KeyError(f'SingleRoIExtractor roi_layer type {layer_type!r} is not supported; '
                           f'use one of {sorted(_ROI_LAYERS)}')
        if not featmap_strides:
            raise ValueError('SingleRoIExtractor needs at least one featmap stride')
        self.roi_layers = nn.ModuleList(
            _ROI_LAYERS[layer_type](spatial_scale=1 / s, **cfg) for s in featmap_strides)
        self.out_channels = out_channels
        self.featmap_strides = list(featmap_strides)
        self.finest_scale = finest_scale

    @property
    def num_inputs(self) -> int:
        """Feature levels read (the first ``len(featmap_strides)`` of the input)."""
        return len(self.featmap_strides)

    def map_roi_levels(self, rois: Tensor, num_levels: int) -> Tensor:
        """Level index ``(K,)`` of each RoI (see module docstring)."""
        scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
        levels = torch.floor(torch.log2(scale / self.finest_scale + 1e-6))
        return levels.clamp(min=0, max=num_levels - 1).long()

    @staticmethod
    def roi_rescale(rois: Tensor, scale_factor: float) -> Tensor:
        """Scale RoIs about their centres by ``scale_factor``."""
        cxy = (rois[:, 1:3] + rois[:, 3:5]) * 0.5
        half = (rois[:, 3:5] - rois[:, 1:3]) * (0.5 * scale_factor)
        return torch.cat([rois[:, :1], cxy - half, cxy + half], dim=1)

    def forward(self, feats: Sequence[Tensor], rois: Tensor,
                roi_scale_factor: Optional[float] = None) -> Tensor:
        """``(K, out_channels, *output_size)`` features of ``rois`` ``(K, 5)``."""
        feats = feats[:self.num_inputs]
        if len(feats) < self.num_inputs:
            raise ValueError(f'SingleRoIExtractor has {self.num_inputs} featmap_strides but got '
                             f'{len(feats)} feature maps')
        levels = self.map_roi_levels(rois, len(feats))  # from the RoIs before rescaling
        if roi_scale_factor is not None:
            rois = self.roi_rescale(rois, roi_scale_factor)
        if len(feats) == 1:
            return self.roi_layers[0](feats[0], rois)
        out_size = self.roi_layers[0].output_size
        roi_feats = feats[0].new_zeros(rois.size(0), self.out_channels, *out_size)
        for i, feat in enumerate(feats):
            inds = torch.nonzero(levels == i, as_tuple=False).squeeze(1)
            if inds.numel() > 0:
                roi_feats[inds] = self.roi_layers[i](feat, rois[inds])
            else:
                # keep every level in the graph: DDP waits for a gradient of each parameter
                roi_feats = roi_feats + feat.sum() * 0.
        return roi_feats
