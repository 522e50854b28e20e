"""Non-maximum suppression as configs name it: ``nms=dict(type='nms' | 'soft_nms', ...)``.

The one place where a head turns an ``nms`` config into kept boxes, with MMCV's argument
names and return values, so MMDetection configs and code ported from it work as they are:

- ``batched_nms(boxes, scores, idxs, nms_cfg) -> (dets, keep)``: NMS within each group of
  ``idxs`` (class or level), MMCV's ``batched_nms``;
- ``check_nms_cfgs(cfg, where)``: every ``nms`` entry of a ``train_cfg``/``test_cfg``
  checked when the model is built (detector constructors call it), so a type that mmft
  cannot run fails there, not at the first test image.

Conventions: ``boxes (N, 4)`` are ``(x1, y1, x2, y2)`` in pixels, ``scores (N,)``; the IoU is
torchvision's (area ``(x2 - x1) * (y2 - y1)``, MMCV's ``offset=0``). ``dets (K, 5)`` holds
the kept boxes and their scores, ``keep (K,)`` their indices into the input, both in
descending score order. Soft-NMS returns the decayed scores in ``dets``.

``nms_cfg`` keys:

- ``type``: ``'nms'`` (default) or ``'soft_nms'``;
- ``iou_threshold``: ``'nms'`` drops boxes overlapping a kept one by more than this;
  ``'soft_nms'`` (linear, naive) decays their scores instead. Default 0.3 for
  ``'soft_nms'`` (MMCV's); required for ``'nms'``;
- ``'soft_nms'`` only: ``method`` ``'linear'`` (default: score times ``1 - IoU`` above
  ``iou_threshold``), ``'gaussian'`` (score times ``exp(-IoU ** 2 / sigma)``, every
  overlap) or ``'naive'`` (hard NMS in Soft-NMS's loop); ``sigma`` (0.5); ``min_score``
  (1e-3: boxes decayed below it are dropped). Bodla et al., "Soft-NMS -- Improving
  Object Detection With One Line of Code", ICCV 2017;
- ``class_agnostic``: ignore ``idxs`` (one group); ``split_thr``: accepted for MMCV
  configs; it only picks how MMCV computes the same result, so it changes nothing here.
"""
from typing import Any, Dict, Iterator, Optional, Tuple

import torch
from torch import Tensor
from torchvision.ops import batched_nms as tv_batched_nms
from torchvision.ops import box_iou

NMS_TYPES = ('nms', 'soft_nms')
SOFT_NMS_METHODS = ('linear', 'gaussian', 'naive')
_KEYS = {
    'nms': {'type', 'iou_threshold', 'class_agnostic', 'split_thr'},
    'soft_nms': {'type', 'iou_threshold', 'method', 'sigma', 'min_score', 'class_agnostic',
                 'split_thr'},
}


def check_nms_cfg(nms_cfg: Optional[Dict], where: str = 'nms') -> None:
    """Raise ValueError unless ``batched_nms`` can run ``nms_cfg`` (None: no NMS).

    Args:
        nms_cfg: The ``nms`` dict of a config.
        where: Its key in the config, for the message (``'test_cfg.rcnn.nms'``).
    """
    if nms_cfg is None:
        return
    if not isinstance(nms_cfg, dict):
        raise ValueError(f"{where} must be a dict such as dict(type='nms', iou_threshold=0.5), "
                         f'got {nms_cfg!r}')
    nms_type = nms_cfg.get('type', 'nms')
    if nms_type not in NMS_TYPES:
        raise ValueError(f'{where}.type={nms_type!r} is not an NMS mmft runs; use one of '
                         f"{list(NMS_TYPES)}, e.g. {where}=dict(type='nms', iou_threshold=0.5) "
                         f"or dict(type='soft_nms', iou_threshold=0.3, method='gaussian')")
    unknown = sorted(set(nms_cfg) - _KEYS[nms_type])
    if unknown:
        raise ValueError(f'{where} ({nms_type}) has unknown keys {unknown}; its keys are '
                         f'{sorted(_KEYS[nms_type])}')
    if nms_type == 'nms' and 'iou_threshold' not in nms_cfg:
        raise ValueError(f"{where} needs iou_threshold, e.g. dict(type='nms', "
                         f'iou_threshold=0.5); got {dict(nms_cfg)!r}')
    iou = nms_cfg.get('iou_threshold', 0.3)
    if not isinstance(iou, (int, float)) or not 0 <= iou <= 1:
        raise ValueError(f'{where}.iou_threshold must be a number in [0, 1], got {iou!r}')
    if nms_type == 'soft_nms':
        method = nms_cfg.get('method', 'linear')
        if method not in SOFT_NMS_METHODS:
            raise ValueError(f'{where}.method={method!r}: Soft-NMS methods are '
                             f'{list(SOFT_NMS_METHODS)}')
        sigma = nms_cfg.get('sigma', 0.5)
        if not isinstance(sigma, (int, float)) or sigma <= 0:
            raise ValueError(f'{where}.sigma must be a number > 0, got {sigma!r}')
        min_score = nms_cfg.get('min_score', 1e-3)
        if not isinstance(min_score, (int, float)):
            raise ValueError(f'{where}.min_score must be a number, got {min_score!r}')


def _nms_entries(cfg: Any, where: str) -> Iterator[Tuple[Any, str]]:
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            if key == 'nms':
                yield value, f'{where}.nms'
            else:
                yield from _nms_entries(value, f'{where}.{key}')
    elif isinstance(cfg, (list, tuple)):  # e.g. one rcnn test_cfg per cascade stage
        for i, value in enumerate(cfg):
            yield from _nms_entries(value, f'{where}.{i}')


def check_nms_cfgs(cfg: Optional[Dict], where: str) -> None:
    """:func:`check_nms_cfg` for every ``nms`` key in ``cfg``, at any depth.

    Model constructors call it on their ``train_cfg`` and ``test_cfg``::

        check_nms_cfgs(test_cfg, 'test_cfg')   # test_cfg.rpn.nms, test_cfg.rcnn.nms, ...
    """
    for nms_cfg, key in _nms_entries(cfg, where):
        check_nms_cfg(nms_cfg, key)


def soft_nms(boxes: Tensor, scores: Tensor, iou_threshold: float = 0.3, sigma: float = 0.5,
             min_score: float = 1e-3, method: str = 'linear') -> Tuple[Tensor, Tensor]:
    """Soft-NMS of one group of boxes (MMCV's ``soft_nms``): ``(dets (K, 5), keep (K,))``.

    Repeatedly keeps the highest-scoring remaining box and decays the scores of the others
    by their IoU with it; a box whose score falls below ``min_score`` is dropped.
    """
    if method not in SOFT_NMS_METHODS:
        raise ValueError(f'soft_nms method={method!r}: use one of {list(SOFT_NMS_METHODS)}')
    scores = scores.detach().clone()
    remaining = torch.arange(len(scores), device=scores.device)
    keep = []
    while remaining.numel() > 0:
        top = int(scores[remaining].argmax())
        best = remaining[top]
        keep.append(best)
        remaining = torch.cat([remaining[:top], remaining[top + 1:]])
        if remaining.numel() == 0:
            break
        iou = box_iou(boxes[best][None], boxes[remaining])[0]
        if method == 'linear':
            weight = torch.where(iou > iou_threshold, 1 - iou, torch.ones_like(iou))
        elif method == 'gaussian':
            weight = torch.exp(-iou * iou / sigma)
        else:
            weight = (iou <= iou_threshold).to(iou.dtype)
        scores[remaining] *= weight
        remaining = remaining[scores[remaining] >= min_score]
    keep_t = torch.stack(keep) if keep else remaining.new_zeros((0,))
    return torch.cat([boxes[keep_t], scores[keep_t, None]], dim=1), keep_t


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor,
                nms_cfg: Optional[Dict]) -> Tuple[Tensor, Tensor]:
    """NMS within each group of ``idxs`` (MMCV's ``batched_nms``); see the module docstring.

    Args:
        boxes: ``(N, 4)`` boxes.
        scores: ``(N,)`` scores.
        idxs: ``(N,)`` group of each box (class or level); boxes of different groups never
            suppress each other.
        nms_cfg: ``dict(type='nms' | 'soft_nms', ...)``; None keeps every box (sorted).

    Returns:
        ``dets (K, 5)`` (boxes and their scores, decayed by Soft-NMS) and ``keep (K,)``
        (indices into the input), in descending score order.
    """
    if nms_cfg is None:
        scores, keep = scores.sort(descending=True)
        return torch.cat([boxes[keep], scores[:, None]], dim=1), keep
    check_nms_cfg(nms_cfg)
    nms_cfg = dict(nms_cfg)
    nms_type = nms_cfg.pop('type', 'nms')
    if nms_cfg.pop('class_agnostic', False):
        idxs = torch.zeros_like(idxs)
    nms_cfg.pop('split_thr', None)
    if boxes.numel() == 0:
        return boxes.new_zeros((0, 5)), idxs.new_zeros((0,), dtype=torch.long)
    if nms_type == 'nms':
        keep = tv_batched_nms(boxes, scores, idxs, float(nms_cfg['iou_threshold']))
        return torch.cat([boxes[keep], scores[keep, None]], dim=1), keep
    # groups never overlap after moving each by its own offset (MMCV's coordinate trick):
    # IoU 0 decays nothing under any method, so one run equals one run per group
    offsets = idxs.to(boxes) * (boxes.max() - boxes.min() + 1)
    dets, keep = soft_nms(boxes + offsets[:, None], scores, **nms_cfg)
    return torch.cat([boxes[keep], dets[:, 4:]], dim=1), keep
