"""Box coders: boxes <-> regression targets.

``DeltaXYWHBBoxCoder`` encodes a ground-truth box ``g`` relative to a prior
``p`` (both ``(x1, y1, x2, y2)``, widths ``x2 - x1``) as
``((gx - px) / pw, (gy - py) / ph, log(gw / pw), log(gh / ph))``, then
normalises by ``(delta - target_means) / target_stds``. Sides below 1e-6 px
count as 1e-6 px in ``encode``, so degenerate boxes give finite targets.
"""
import math
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from mmft.registry import TASK_UTILS

_MIN_WH = 1e-6  # smallest box side used as a divisor / in a log


@TASK_UTILS.register_module()
class DeltaXYWHBBoxCoder:
    """Delta (dx, dy, dw, dh) coder of Faster R-CNN.

    Args:
        target_means, target_stds: normalisation of the deltas.
        clip_border: clip decoded boxes to ``max_shape``.
        add_ctr_clamp: clamp the centre shift to ``ctr_clamp`` pixels (and only
            the upper bound of dw/dh), as in YOLOF.
        ctr_clamp: the centre clamp in pixels.
    """

    encode_size = 4

    def __init__(self,
                 target_means: Sequence[float] = (0., 0., 0., 0.),
                 target_stds: Sequence[float] = (1., 1., 1., 1.),
                 clip_border: bool = True,
                 add_ctr_clamp: bool = False,
                 ctr_clamp: int = 32,
                 use_box_type: bool = False) -> None:
        if len(target_means) != 4 or len(target_stds) != 4:
            raise ValueError(f'DeltaXYWHBBoxCoder target_means {target_means} and target_stds '
                             f'{target_stds} need 4 values each')
        self.means = tuple(float(m) for m in target_means)
        self.stds = tuple(float(s) for s in target_stds)
        self.clip_border = clip_border
        self.add_ctr_clamp = add_ctr_clamp
        self.ctr_clamp = ctr_clamp
        self.use_box_type = use_box_type

    def encode(self, bboxes: Tensor, gt_bboxes: Tensor) -> Tensor:
        """Deltas ``(N, 4)`` that turn ``bboxes`` (N, 4) into ``gt_bboxes`` (N, 4)."""
        if bboxes.size(0) != gt_bboxes.size(0) or bboxes.size(-1) != 4 or gt_bboxes.size(-1) != 4:
            raise ValueError(f'DeltaXYWHBBoxCoder.encode needs two (N, 4) tensors, got '
                             f'{tuple(bboxes.shape)} and {tuple(gt_bboxes.shape)}')
        proposals, gt = bboxes.float(), gt_bboxes.float()
        pxy = (proposals[..., :2] + proposals[..., 2:]) * 0.5
        gxy = (gt[..., :2] + gt[..., 2:]) * 0.5
        # degenerate (zero-width) boxes would give 0/0 and log(0); the clamp leaves
        # every box wider than _MIN_WH untouched
        pwh = (proposals[..., 2:] - proposals[..., :2]).clamp(min=_MIN_WH)
        gwh = (gt[..., 2:] - gt[..., :2]).clamp(min=_MIN_WH)
        dxy = (gxy - pxy) / pwh
        dwh = torch.log(gwh / pwh)
        deltas = torch.cat([dxy, dwh], dim=-1)
        means = deltas.new_tensor(self.means)
        stds = deltas.new_tensor(self.stds)
        return (deltas - means) / stds

    def decode(self, bboxes: Tensor, pred_bboxes: Tensor,
               max_shape: Optional[Tuple[int, ...]] = None,
               wh_ratio_clip: float = 16 / 1000) -> Tensor:
        """Apply deltas to boxes.

        Args:
            bboxes: ``(N, 4)`` priors (or ``(B, N, 4)``).
            pred_bboxes: ``(N, 4 * k)`` deltas (or ``(B, N, 4 * k)``), k boxes per prior.
            max_shape: ``(h, w)`` to clip to when ``clip_border``.
            wh_ratio_clip: bound on ``|dw|, |dh|`` as ``|log(wh_ratio_clip)|``.

        Returns:
            Boxes shaped like ``pred_bboxes``.
        """
        if pred_bboxes.size(0) != bboxes.size(0):
            raise ValueError(f'DeltaXYWHBBoxCoder.decode: {bboxes.size(0)} boxes but '
                             f'{pred_bboxes.size(0)} deltas')
        if pred_bboxes.numel() == 0:
            return pred_bboxes.clone()
        out_shape = pred_bboxes.shape
        num_per_prior = pred_bboxes.size(-1) // 4
        deltas = pred_bboxes.reshape(-1, 4)
        priors = bboxes[..., None, :4].expand(*bboxes.shape[:-1], num_per_prior, 4).reshape(-1, 4)
        means = deltas.new_tensor(self.means)
        stds = deltas.new_tensor(self.stds)
        deltas = deltas * stds + means
        dxy, dwh = deltas[:, :2], deltas[:, 2:]
        pxy = (priors[:, :2] + priors[:, 2:]) * 0.5
        pwh = priors[:, 2:] - priors[:, :2]
        dxy_wh = pwh * dxy
        max_ratio = abs(math.log(wh_ratio_clip))
        if self.add_ctr_clamp:
            dxy_wh = torch.clamp(dxy_wh, max=self.ctr_clamp, min=-self.ctr_clamp)
            dwh = torch.clamp(dwh, max=max_ratio)
        else:
            dwh = dwh.clamp(min=-max_ratio, max=max_ratio)
        gxy = pxy + dxy_wh
        gwh = pwh * dwh.exp()
        boxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
        if self.clip_border and max_shape is not None:
            h, w = max_shape[:2]
            boxes = torch.stack([boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h),
                                 boxes[:, 2].clamp(0, w), boxes[:, 3].clamp(0, h)], dim=-1)
        return boxes.reshape(out_shape)
