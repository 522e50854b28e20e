"""Incremental fine-tuning: add the dataset's classes to a detector, keep the old ones.

``finetune.incremental=True`` (see :class:`~mmft.finetune.config.IncrementalOptions`):

- the model's classes are the **union**: the checkpoint's classes (``old``), in their
  order, then the dataset's classes that are not among them (``new``); a dataset class
  with an old class's name *is* that class. Class transfer with the union copies every
  old row and initialises the new ones as each head declares (nothing new here);
- ``num_classes='auto'`` counts the union; the training dataset keeps the new classes
  (its labels index them and are mapped into the union each iteration); val / test
  datasets evaluate the union; checkpoints carry the union as ``dataset_meta.classes``;
- the frozen pretrained model is the **teacher**: its confident old-class detections on
  each training image become pseudo-labels (:func:`add_pseudo_labels`), so old objects
  the new data leaves unlabelled are not trained as background.

Conventions: labels are indices into the union (old classes first), boxes are
``(x1, y1, x2, y2)`` in ``img_shape`` pixels of the training batch (the teacher
predicts with ``rescale=False`` on the same images), masks ``(N, H, W)`` at the gt
masks' own size.
"""
import copy
from typing import Any, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmft.structures.bbox import bbox_overlaps
from mmft.structures.masks import BitmapMasks
from .class_transfer import _normalise
from .config import FinetuneConfig, check_class_tuple, class_dependent_heads, dataset_classes


def union_classes(old: Sequence[str], new: Sequence[str]) -> Tuple[str, ...]:
    """``old`` then the classes of ``new`` not in ``old`` (names compared ignoring case,
    spaces and underscores; a synonym is a different class here)."""
    seen = {_normalise(c) for c in old}
    added = []
    for name in new:
        if _normalise(name) not in seen:
            seen.add(_normalise(name))
            added.append(name)
    return tuple(old) + tuple(added)


def label_map(new: Sequence[str], union: Sequence[str]) -> Tensor:
    """``lookup[i]`` = index in ``union`` of the dataset's class ``i``."""
    index = {_normalise(c): i for i, c in enumerate(union)}
    return torch.tensor([index[_normalise(c)] for c in new], dtype=torch.long)


def checkpoint_old_classes(cfg: Any) -> Tuple[str, ...]:
    """The pretrained model's classes: ``finetune.source_classes``, else those the
    ``load_from`` checkpoint carries.

    Raises:
        ValueError: neither gives them.
    """
    ft = FinetuneConfig.from_cfg(cfg.get('finetune'))
    if ft.source_classes is not None:
        return ft.source_classes
    load_from = cfg.get('load_from')
    if load_from is None:
        raise ValueError('finetune.incremental needs the pretrained model: set load_from to '
                         "its checkpoint (its classes are the old ones) or give "
                         'finetune.source_classes=(...)')
    from mmft.checkpoint import read_checkpoint
    from mmft.checkpoint.exact import checkpoint_classes
    classes = checkpoint_classes(read_checkpoint(load_from, source_format=ft.source_format))
    if classes is None:
        raise ValueError(f'finetune.incremental: the checkpoint {load_from} carries no class '
                         'names (meta.dataset_meta.classes); give the classes it was trained '
                         'on as finetune.source_classes=(...), in its head order')
    return classes


def _innermost(dataset_cfg: Mapping[str, Any]) -> list:
    """The leaf dataset configs under wrappers (RepeatDataset, ConcatDataset, ...)."""
    if 'dataset' in dataset_cfg:
        return _innermost(dataset_cfg['dataset'])
    if 'datasets' in dataset_cfg:
        return [leaf for d in dataset_cfg['datasets'] for leaf in _innermost(d)]
    return [dataset_cfg]


def incremental_classes(cfg: Any) -> Tuple[Tuple[str, ...], Tuple[str, ...], Tuple[str, ...]]:
    """``(old, new, union)`` of an incremental config (new: the training dataset's)."""
    old = checkpoint_old_classes(cfg)
    new = dataset_classes((cfg.get('train_dataloader') or {}).get('dataset'))
    if new is None:
        raise ValueError('finetune.incremental: the training dataset\'s classes are unknown; '
                         'give it metainfo=dict(classes=(...)) with the new classes')
    return old, new, union_classes(old, new)


def apply_incremental(cfg: Any) -> Tuple[str, ...]:
    """Set up an incremental config in place (before the Runner builds anything).

    Records the old classes as ``finetune.source_classes`` (read once), sets
    ``num_classes='auto'`` heads to the union's size, val / test datasets whose
    classes are unset or the new ones to the union, and an ``IncrementalCocoMetric``
    without its old classes to the checkpoint's.

    Returns:
        The union of classes.

    Raises:
        ValueError: a head's explicit ``num_classes`` is not the union's size, or a val /
            test dataset names other classes.
    """
    old, new, union = incremental_classes(cfg)
    if cfg.get('finetune') is None:
        cfg['finetune'] = {}
    cfg['finetune']['source_classes'] = old
    for loader in ('val_dataloader', 'test_dataloader'):
        dataset_cfg = (cfg.get(loader) or {}).get('dataset')
        if dataset_cfg is None:
            continue
        for leaf in _innermost(dataset_cfg):
            if leaf.get('metainfo') is None:
                leaf['metainfo'] = {}
            metainfo = leaf['metainfo']  # (a ConfigDict's setdefault stores a copy)
            current = metainfo.get('classes')
            current = None if current is None else check_class_tuple(
                current, f'{loader}.dataset.metainfo.classes')
            if current not in (None, new, union):
                raise ValueError(
                    f'finetune.incremental evaluates the old and new classes together, but '
                    f'{loader}.dataset.metainfo.classes={list(current)}; leave it unset or '
                    f'give the union {list(union)}')
            metainfo['classes'] = union
    for name in ('val_evaluator', 'test_evaluator'):
        evaluators = cfg.get(name) or []
        for metric in evaluators if isinstance(evaluators, (list, tuple)) else [evaluators]:
            if isinstance(metric, Mapping) and metric.get('type') == 'IncrementalCocoMetric' \
                    and metric.get('old_classes') is None and \
                    metric.get('num_old_classes') is None:
                metric['old_classes'] = old
    for path, head in class_dependent_heads(cfg.get('model') or {}):
        if head['num_classes'] == 'auto':
            head['num_classes'] = len(union)
        elif head['num_classes'] != len(union):
            raise ValueError(
                f'{path}.num_classes={head["num_classes"]} but finetune.incremental gives '
                f'{len(union)} classes ({len(old)} old + {len(union) - len(old)} new: '
                f'{list(union)}); set {path}.num_classes={len(union)} (or \'auto\')')
    return union


def _raise_score_thr(test_cfg: Any, score_thr: float) -> None:
    """Every ``score_thr`` in ``test_cfg`` (nested too: ``rcnn.score_thr``) at least
    ``score_thr``, in place."""
    if isinstance(test_cfg, Mapping):
        for key, value in test_cfg.items():
            if key == 'score_thr' and isinstance(value, (int, float)):
                test_cfg[key] = max(value, score_thr)
            else:
                _raise_score_thr(value, score_thr)
    elif isinstance(test_cfg, (list, tuple)):
        for value in test_cfg:
            _raise_score_thr(value, score_thr)


def teacher_model_cfg(model_cfg: Mapping[str, Any], num_old: int,
                      score_thr: Optional[float] = None) -> dict:
    """The student's model config with every class-dependent head at ``num_old``.

    Args:
        score_thr: the pseudo-labels' score threshold: the teacher's test-time
            ``score_thr`` is raised to it. Its detections at or above it are the same
            (NMS and the per-image cap only drop lower-scoring ones), and Mask R-CNN's
            mask head then runs on those alone, not on every detection above 0.05.
    """
    teacher = copy.deepcopy(dict(model_cfg))
    for _, head in class_dependent_heads(teacher):
        head['num_classes'] = num_old
    if score_thr is not None:
        _raise_score_thr(teacher.get('test_cfg'), score_thr)
    return teacher


def build_teacher(model_cfg: Mapping[str, Any], checkpoint: str,
                  old_classes: Sequence[str], ft: Optional[FinetuneConfig] = None,
                  score_thr: Optional[float] = None) -> nn.Module:
    """The pretrained model, loaded exactly from ``checkpoint``, frozen, in eval mode
    (``score_thr``: :func:`teacher_model_cfg`)."""
    from mmft.registry import MODELS
    from .load import load_checkpoint
    teacher = MODELS.build(teacher_model_cfg(model_cfg, len(old_classes), score_thr))
    cfg = FinetuneConfig(source_format=ft.source_format if ft else 'auto',
                         source_classes=tuple(old_classes))
    load_checkpoint(teacher, checkpoint, 'exact', cfg, classes=tuple(old_classes))
    teacher.requires_grad_(False)
    return teacher.eval()


def _fit_masks(masks: Tensor, height: int, width: int) -> np.ndarray:
    """``(N, h, w)`` masks cropped / zero-padded (bottom-right) to ``(N, height, width)``."""
    out = np.zeros((masks.shape[0], height, width), dtype=np.uint8)
    h, w = min(height, masks.shape[1]), min(width, masks.shape[2])
    out[:, :h, :w] = masks[:, :h, :w].cpu().numpy().astype(np.uint8)
    return out


def _box_masks(boxes: Tensor, height: int, width: int) -> np.ndarray:
    out = np.zeros((len(boxes), height, width), dtype=np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(boxes.round().long().tolist()):
        out[i, max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)] = 1
    return out


def select_pseudo_labels(pred: InstanceData, gt_bboxes: Tensor, num_old: int,
                         score_thr: float, iou_thr: float) -> Tensor:
    """Indices of ``pred`` that become pseudo-labels: an old class, score >= ``score_thr``,
    and IoU <= ``iou_thr`` with every labelled box."""
    keep = (pred.labels < num_old) & (pred.scores >= score_thr)
    if len(gt_bboxes) and keep.any():
        ious = bbox_overlaps(pred.bboxes, gt_bboxes.to(pred.bboxes))
        keep &= ious.max(dim=1).values <= iou_thr
    return keep.nonzero(as_tuple=True)[0]


def add_pseudo_labels(gt: InstanceData, pred: InstanceData, num_old: int,
                      score_thr: float = 0.5, iou_thr: float = 0.5) -> InstanceData:
    """``gt`` with the teacher's selected old-class detections appended.

    ``gt.labels`` must already index the union. Masks: when ``gt`` has ``masks``, the
    pseudo-labels add the teacher's masks (its boxes filled when it predicts none).
    Other per-instance fields of ``gt`` get zeros for the added instances.
    """
    inds = select_pseudo_labels(pred, gt.bboxes, num_old, score_thr, iou_thr)
    if len(inds) == 0:
        return gt
    out = InstanceData(metainfo=gt.metainfo)
    for key, value in gt.items():
        if key == 'bboxes':
            out.bboxes = torch.cat([value, pred.bboxes[inds].to(value)])
        elif key == 'labels':
            out.labels = torch.cat([value, pred.labels[inds].to(value)])
        elif key == 'masks':
            if isinstance(value, Tensor):
                height, width = value.shape[-2:]
                old = value.detach().cpu().numpy().astype(np.uint8)
            else:
                height, width = value.height, value.width
                old = value.to_ndarray().astype(np.uint8)
            added = _fit_masks(pred.masks[inds], height, width) if 'masks' in pred else \
                _box_masks(pred.bboxes[inds], height, width)
            out.masks = BitmapMasks(np.concatenate([old, added]), height, width)
        elif isinstance(value, Tensor):
            setattr(out, key, torch.cat([value, value.new_zeros((len(inds), *value.shape[1:]))]))
        else:
            raise TypeError(f'add_pseudo_labels: gt_instances.{key} is a '
                            f'{type(value).__name__}; only tensors and masks can be extended')
    return out
