"""Box operations on ``(x1, y1, x2, y2)`` float tensors in absolute pixels.

Widths are ``x2 - x1`` (no ``+ 1``), as in MMDetection 3.x and torchvision.
"""
from typing import List, Sequence, Tuple, Union

import torch
from torch import Tensor


def bbox_overlaps(boxes1: Tensor, boxes2: Tensor, mode: str = 'iou',
                  is_aligned: bool = False, eps: float = 1e-6) -> Tensor:
    """IoU or IoF ("intersection over foreground", the area of ``boxes1``).

    Args:
        boxes1: ``(N, 4)``.
        boxes2: ``(M, 4)``, or ``(N, 4)`` when ``is_aligned``.
        mode: ``'iou'`` or ``'iof'``.
        is_aligned: compare row i with row i only; returns ``(N,)``.

    Returns:
        ``(N, M)`` overlaps, or ``(N,)`` when aligned.
    """
    if mode not in ('iou', 'iof'):
        raise ValueError(f"bbox_overlaps mode must be 'iou' or 'iof', got {mode!r}")
    area1 = (boxes1[..., 2] - boxes1[..., 0]).clamp(min=0) * \
        (boxes1[..., 3] - boxes1[..., 1]).clamp(min=0)
    area2 = (boxes2[..., 2] - boxes2[..., 0]).clamp(min=0) * \
        (boxes2[..., 3] - boxes2[..., 1]).clamp(min=0)
    if is_aligned:
        lt = torch.max(boxes1[..., :2], boxes2[..., :2])
        rb = torch.min(boxes1[..., 2:], boxes2[..., 2:])
        wh = (rb - lt).clamp(min=0)
        inter = wh[..., 0] * wh[..., 1]
        union = area1 + area2 - inter if mode == 'iou' else area1
    else:
        lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
        rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
        wh = (rb - lt).clamp(min=0)
        inter = wh[..., 0] * wh[..., 1]
        union = (area1[:, None] + area2[None, :] - inter) if mode == 'iou' \
            else area1[:, None].expand_as(inter)
    return inter / union.clamp(min=eps)


def bbox2roi(bbox_list: Sequence[Tensor]) -> Tensor:
    """Stack per-image boxes into RoIs ``(K, 5)``: ``(batch_index, x1, y1, x2, y2)``."""
    rois = []
    for img_id, bboxes in enumerate(bbox_list):
        bboxes = bboxes[:, :4]
        index = bboxes.new_full((bboxes.size(0), 1), img_id)
        rois.append(torch.cat([index, bboxes], dim=-1))
    return torch.cat(rois, 0) if rois else torch.zeros((0, 5))


def scale_boxes(boxes: Tensor, scale_factor: Union[Tuple[float, float], List[float]]) -> Tensor:
    """Multiply x by ``scale_factor[0]`` and y by ``scale_factor[1]``."""
    w_scale, h_scale = scale_factor
    return boxes * boxes.new_tensor([w_scale, h_scale, w_scale, h_scale])


def get_box_wh(boxes: Tensor) -> Tuple[Tensor, Tensor]:
    """Widths and heights of ``(N, 4)`` boxes."""
    return boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]


def clip_boxes(boxes: Tensor, img_shape: Tuple[int, int]) -> Tensor:
    """Clip boxes to an ``(h, w)`` image, in place-free fashion."""
    h, w = img_shape[:2]
    x = boxes[..., 0::2].clamp(0, w)
    y = boxes[..., 1::2].clamp(0, h)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)
