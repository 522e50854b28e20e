"""``DistancePointBBoxCoder``: a box as the distances from a point to its four sides.

``encode(points (N, 2), boxes (N, 4)) -> (N, 4)`` ``(left, top, right, bottom)``
with ``left = px - x1``, ``top = py - y1``, ``right = x2 - px``, ``bottom = y2 - py``;
``decode`` inverts it (and clips to ``max_shape`` ``(h, w)`` when ``clip_border``).
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from mmft.registry import TASK_UTILS


@TASK_UTILS.register_module()
class DistancePointBBoxCoder:
    """Point-to-side distance coder of FCOS-type heads.

    Args:
        clip_border: clip decoded boxes to the image.
    """

    encode_size = 4

    def __init__(self, clip_border: bool = True, use_box_type: bool = False) -> None:
        self.clip_border = clip_border
        self.use_box_type = use_box_type

    def encode(self, points: Tensor, gt_bboxes: Tensor, max_dis: Optional[float] = None,
               eps: float = 0.1) -> Tensor:
        """Distances ``(N, 4)``, clamped to ``[0, max_dis - eps]`` when ``max_dis`` is set."""
        if points.size(0) != gt_bboxes.size(0) or points.size(-1) != 2:
            raise ValueError(f'DistancePointBBoxCoder.encode needs (N, 2) points and (N, 4) '
                             f'boxes, got {tuple(points.shape)} and {tuple(gt_bboxes.shape)}')
        dist = torch.stack([points[:, 0] - gt_bboxes[:, 0], points[:, 1] - gt_bboxes[:, 1],
                            gt_bboxes[:, 2] - points[:, 0], gt_bboxes[:, 3] - points[:, 1]], -1)
        if max_dis is not None:
            dist = dist.clamp(min=0, max=max_dis - eps)
        return dist

    def decode(self, points: Tensor, pred_bboxes: Tensor,
               max_shape: Optional[Tuple[int, ...]] = None) -> Tensor:
        """Boxes ``(N, 4)`` (or ``(B, N, 4)``) from points and distances."""
        if points.size(0) != pred_bboxes.size(0) or pred_bboxes.size(-1) != 4:
            raise ValueError(f'DistancePointBBoxCoder.decode: {points.size(0)} points but '
                             f'distances of shape {tuple(pred_bboxes.shape)}')
        x1 = points[..., 0] - pred_bboxes[..., 0]
        y1 = points[..., 1] - pred_bboxes[..., 1]
        x2 = points[..., 0] + pred_bboxes[..., 2]
        y2 = points[..., 1] + pred_bboxes[..., 3]
        bboxes = torch.stack([x1, y1, x2, y2], -1)
        if self.clip_border and max_shape is not None:
            h, w = max_shape[:2]
            bboxes = torch.stack([bboxes[..., 0].clamp(0, w), bboxes[..., 1].clamp(0, h),
                                  bboxes[..., 2].clamp(0, w), bboxes[..., 3].clamp(0, h)], -1)
        return bboxes
