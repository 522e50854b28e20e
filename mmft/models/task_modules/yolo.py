"""YOLOv3's task utilities: anchors, box coder and grid assigner (MMDetection 3.x names).

Anchors (``YOLOAnchorGenerator``): per level a list of ``(w, h)`` sizes, centred at the
cell centre ``(stride / 2, stride / 2)``; ``grid_priors`` orders them location-major, then
anchor, like every other generator here.

Coder (``YOLOBBoxCoder``), for a prior of centre ``(px, py)`` and size ``(pw, ph)`` on a
level of stride ``s`` and a box of centre ``(gx, gy)`` and size ``(gw, gh)``::

    tx = (gx - px) / s + 0.5  (clamped to [eps, 1 - eps]),  tw = log(max(gw / pw, eps))

``decode`` is the inverse with ``tx`` already sigmoid-activated.

Assigner (``GridAssigner``): ``MaxIoUAssigner`` restricted to the priors of the grid cell
that holds a gt's centre (``pred_instances.responsible_flags``).
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.registry import TASK_UTILS
from .anchors import AnchorGenerator, _pair
from .assigners import AssignResult


@TASK_UTILS.register_module()
class YOLOAnchorGenerator(AnchorGenerator):
    """Fixed-size anchors of YOLOv3.

    Args:
        strides: per level, an int or ``(stride_w, stride_h)``.
        base_sizes: per level, the anchors' ``(w, h)`` (same count on every level).
    """

    def __init__(self, strides: Sequence[Union[int, Tuple[int, int]]],
                 base_sizes: Sequence[Sequence[Tuple[int, int]]],
                 use_box_type: bool = False) -> None:
        if len(strides) != len(base_sizes):
            raise ValueError(f'YOLOAnchorGenerator: {len(strides)} strides but '
                             f'{len(base_sizes)} levels of base_sizes')
        counts = {len(level) for level in base_sizes}
        if len(counts) != 1:
            raise ValueError('YOLOAnchorGenerator: every level needs the same number of anchors, '
                             f'got {[len(level) for level in base_sizes]}')
        self.strides = [_pair(stride) for stride in strides]
        self.centers = [(sw / 2., sh / 2.) for sw, sh in self.strides]
        self.base_sizes = [[_pair(size) for size in level] for level in base_sizes]
        self.use_box_type = use_box_type
        self.round_base_anchors = False
        self.base_anchors = self.gen_base_anchors()

    def gen_base_anchors(self) -> List[Tensor]:
        """Per level ``(A, 4)`` anchors around the first cell's centre."""
        out = []
        for (cx, cy), sizes in zip(self.centers, self.base_sizes):
            wh = torch.tensor(sizes, dtype=torch.float32)
            out.append(torch.stack([cx - 0.5 * wh[:, 0], cy - 0.5 * wh[:, 1],
                                    cx + 0.5 * wh[:, 0], cy + 0.5 * wh[:, 1]], dim=-1))
        return out

    def responsible_flags(self, featmap_sizes: Sequence[Tuple[int, int]], gt_bboxes: Tensor,
                          device: Union[str, torch.device] = 'cpu') -> List[Tensor]:
        """Per level ``(H * W * A,)`` uint8: 1 for the priors of a cell holding a gt centre."""
        flags = []
        centers = (gt_bboxes[:, :2] + gt_bboxes[:, 2:4]).to(device) * 0.5
        for i, (feat_h, feat_w) in enumerate(featmap_sizes):
            stride_w, stride_h = self.strides[i]
            gx = torch.floor(centers[:, 0] / stride_w).long().clamp(0, feat_w - 1)
            gy = torch.floor(centers[:, 1] / stride_h).long().clamp(0, feat_h - 1)
            grid = torch.zeros(feat_h * feat_w, dtype=torch.uint8, device=device)
            grid[gy * feat_w + gx] = 1
            flags.append(grid[:, None].expand(-1, self.num_base_priors[i]).reshape(-1))
        return flags

    def __repr__(self) -> str:
        return f'{type(self).__name__}(strides={self.strides}, base_sizes={self.base_sizes})'


@TASK_UTILS.register_module()
class YOLOBBoxCoder:
    """YOLOv3's (tx, ty, tw, th) coder (see the module docstring).

    Args:
        eps: lower bound of ``tx, ty`` (upper ``1 - eps``) and of the size ratio.
    """

    encode_size = 4

    def __init__(self, eps: float = 1e-6, use_box_type: bool = False) -> None:
        self.eps = eps
        self.use_box_type = use_box_type

    def encode(self, bboxes: Tensor, gt_bboxes: Tensor, stride: Union[Tensor, int]) -> Tensor:
        """Targets ``(N, 4)`` that turn priors ``bboxes`` into ``gt_bboxes`` on ``stride``."""
        if bboxes.size(0) != gt_bboxes.size(0) or bboxes.size(-1) != 4 or gt_bboxes.size(-1) != 4:
            raise ValueError(f'YOLOBBoxCoder.encode needs two (N, 4) tensors, got '
                             f'{tuple(bboxes.shape)} and {tuple(gt_bboxes.shape)}')
        gxy = (gt_bboxes[..., :2] + gt_bboxes[..., 2:]) * 0.5
        gwh = gt_bboxes[..., 2:] - gt_bboxes[..., :2]
        pxy = (bboxes[..., :2] + bboxes[..., 2:]) * 0.5
        pwh = bboxes[..., 2:] - bboxes[..., :2]
        if isinstance(stride, Tensor) and stride.dim() == 1:
            stride = stride[:, None]
        twh = torch.log((gwh / pwh).clamp(min=self.eps))
        txy = ((gxy - pxy) / stride + 0.5).clamp(self.eps, 1 - self.eps)
        return torch.cat([txy, twh], dim=-1)

    def decode(self, bboxes: Tensor, pred_bboxes: Tensor, stride: Union[Tensor, int]) -> Tensor:
        """Boxes from priors ``(..., 4)`` and sigmoid-ed ``(tx, ty)`` plus raw ``(tw, th)``."""
        if pred_bboxes.size(-1) != 4 or bboxes.size(-1) != 4:
            raise ValueError(f'YOLOBBoxCoder.decode needs (..., 4) tensors, got '
                             f'{tuple(bboxes.shape)} and {tuple(pred_bboxes.shape)}')
        xy = (bboxes[..., :2] + bboxes[..., 2:]) * 0.5 + (pred_bboxes[..., :2] - 0.5) * stride
        half_wh = (bboxes[..., 2:] - bboxes[..., :2]) * 0.5 * pred_bboxes[..., 2:].exp()
        return torch.cat([xy - half_wh, xy + half_wh], dim=-1)


@TASK_UTILS.register_module()
class GridAssigner:
    """Max-IoU assignment within the responsible grid cells (see the module docstring).

    Steps: every prior ignored (-1); IoU <= ``neg_iou_thr`` with all gts (or within the
    ``(lo, hi]`` range) -> negative; among responsible priors, IoU > ``pos_iou_thr`` ->
    positive; each gt also claims its best responsible prior(s) if IoU > ``min_pos_iou``.
    """

    def __init__(self, pos_iou_thr: float, neg_iou_thr: Union[float, Tuple[float, float]],
                 min_pos_iou: float = .0, gt_max_assign_all: bool = True,
                 iou_calculator: dict = dict(type='BboxOverlaps2D')) -> None:
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = neg_iou_thr
        self.min_pos_iou = min_pos_iou
        self.gt_max_assign_all = gt_max_assign_all
        self.iou_calculator = TASK_UTILS.build(iou_calculator)

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None, **kwargs) -> AssignResult:
        """Assign ``pred_instances.priors`` given ``pred_instances.responsible_flags``."""
        if 'responsible_flags' not in pred_instances:
            raise KeyError('GridAssigner needs pred_instances.responsible_flags (which priors '
                           "lie in a gt's centre cell); YOLOV3Head sets them")
        priors, responsible = pred_instances.priors, pred_instances.responsible_flags.bool()
        gt_bboxes, gt_labels = gt_instances.bboxes, gt_instances.labels
        num_gts, num_priors = gt_bboxes.size(0), priors.size(0)
        overlaps = self.iou_calculator(gt_bboxes, priors)
        assigned = overlaps.new_full((num_priors,), -1, dtype=torch.long)
        if num_gts == 0 or num_priors == 0:
            if num_gts == 0:
                assigned[:] = 0
            return AssignResult(num_gts, assigned, overlaps.new_zeros((num_priors,)),
                                labels=overlaps.new_full((num_priors,), -1, dtype=torch.long))

        max_overlaps, _ = overlaps.max(dim=0)
        if isinstance(self.neg_iou_thr, (tuple, list)):
            lo, hi = self.neg_iou_thr
            assigned[(max_overlaps > lo) & (max_overlaps <= hi)] = 0
        else:
            assigned[(max_overlaps >= 0) & (max_overlaps <= self.neg_iou_thr)] = 0

        overlaps[:, ~responsible] = -1.
        max_overlaps, argmax = overlaps.max(dim=0)
        gt_max, gt_argmax = overlaps.max(dim=1)
        pos = (max_overlaps > self.pos_iou_thr) & responsible
        assigned[pos] = argmax[pos] + 1
        for i in range(num_gts):  # later gts win ties, as in MMDetection
            if gt_max[i] > self.min_pos_iou:
                if self.gt_max_assign_all:
                    assigned[(overlaps[i] == gt_max[i]) & responsible] = i + 1
                elif responsible[gt_argmax[i]]:
                    assigned[gt_argmax[i]] = i + 1

        labels = assigned.new_full((num_priors,), -1)
        pos = assigned > 0
        labels[pos] = gt_labels[assigned[pos] - 1]
        return AssignResult(num_gts, assigned, max_overlaps, labels=labels)
