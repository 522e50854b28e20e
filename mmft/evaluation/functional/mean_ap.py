"""Pascal-VOC-style mean AP over per-class detections, with MMDetection 3.x semantics.

Conventions:
- ``det_results[i][c]`` is a ``(k, 5)`` array ``(x1, y1, x2, y2, score)`` of image i, class c;
- ``annotations[i]`` holds ``bboxes`` ``(n, 4)``, ``labels`` ``(n,)`` and optionally
  ``bboxes_ignore`` / ``labels_ignore`` (VOC "difficult" or crowd boxes);
- a detection matching an ignored box is neither a true nor a false positive, and ignored
  boxes do not count as ground truth;
- ``use_legacy_coordinate`` measures widths as ``x2 - x1 + 1`` (the VOC devkit's pixel
  convention), which :class:`VOCMetric` always uses;
- Open Images (``use_group_of``): ``annotations[i]['gt_is_group_ofs']`` (bool ``(n,)``) marks
  "group of" boxes, which are matched by intersection over the *detection's* area
  (``ioa_thr``) and count once however many detections fall inside (see
  :func:`tpfp_openimages`).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.logging import print_log
from terminaltables import AsciiTable

from mmft.structures import bbox_overlaps

ArrayOrFloat = Union[np.ndarray, float]


def box_overlaps(bboxes1: np.ndarray, bboxes2: np.ndarray, mode: str = 'iou',
                 use_legacy_coordinate: bool = False) -> np.ndarray:
    """IoU / IoF of numpy boxes, ``(n, 4+)`` x ``(k, 4+)`` -> ``(n, k)`` float32.

    The legacy ``+ 1`` widths equal ordinary widths of boxes whose ``x2, y2`` are moved
    by one pixel, so both go through :func:`mmft.structures.bbox_overlaps`.
    """
    boxes = []
    for b in (bboxes1, bboxes2):
        t = torch.from_numpy(np.array(b, dtype=np.float32)[:, :4])
        if use_legacy_coordinate:
            t[:, 2:] += 1
        boxes.append(t)
    return bbox_overlaps(boxes[0], boxes[1], mode=mode).numpy()


def _areas(boxes: np.ndarray, extra: float) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0] + extra) * (boxes[:, 3] - boxes[:, 1] + extra)


def average_precision(recalls: np.ndarray, precisions: np.ndarray,
                      mode: str = 'area') -> ArrayOrFloat:
    """AP of one precision-recall curve ``(num_dets,)``, or of several ``(num_scales, num_dets)``.

    Args:
        recalls: Recall after each detection, detections sorted by score.
        precisions: Precision after each detection.
        mode: ``'area'`` (area under the monotone envelope, VOC2010+) or ``'11points'``
            (mean of the best precision at recall >= 0, 0.1, ..., 1, VOC2007).

    Returns:
        A float for 1-d input, else one AP per row (float32).
    """
    if mode not in ('area', '11points'):
        raise ValueError(f"average_precision mode must be 'area' or '11points', got {mode!r}")
    single = recalls.ndim == 1
    recalls, precisions = np.atleast_2d(recalls), np.atleast_2d(precisions)
    ap = np.zeros(recalls.shape[0], dtype=np.float32)
    for i, (rec, prec) in enumerate(zip(recalls, precisions)):
        if mode == 'area':
            mrec = np.concatenate([[0.], rec, [1.]])
            # precision envelope: the best precision at any recall at least this high
            mpre = np.maximum.accumulate(np.concatenate([[0.], prec, [0.]])[::-1])[::-1]
            steps = np.flatnonzero(mrec[1:] != mrec[:-1])
            ap[i] = np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1])
        else:
            for thr in np.arange(0, 1 + 1e-3, 0.1):
                reached = prec[rec >= thr]
                ap[i] += reached.max() if reached.size else 0.
            ap[i] /= 11
    return float(ap[0]) if single else ap


def tpfp_default(det_bboxes: np.ndarray,
                 gt_bboxes: np.ndarray,
                 gt_bboxes_ignore: Optional[np.ndarray] = None,
                 iou_thr: float = 0.5,
                 area_ranges: Optional[List[Tuple[float, float]]] = None,
                 use_legacy_coordinate: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Mark each detection of one image and class as true or false positive.

    Detections are visited by descending score; each takes the gt (ignored ones included)
    it overlaps most. At ``iou >= iou_thr`` it is a TP if that gt is free, an FP if the
    gt was already taken, and neither if the gt is ignored or outside the area range.

    Returns:
        ``(tp, fp)``, each ``(num_scales, num_dets)`` of 0/1 float32.
    """
    extra = 1. if use_legacy_coordinate else 0.
    if gt_bboxes_ignore is None:
        gt_bboxes_ignore = np.zeros((0, 4), dtype=np.float32)
    ignored = np.r_[np.zeros(len(gt_bboxes), bool), np.ones(len(gt_bboxes_ignore), bool)]
    all_gts = np.vstack([gt_bboxes.reshape(-1, 4), gt_bboxes_ignore.reshape(-1, 4)])
    area_ranges = area_ranges or [(None, None)]
    tp = np.zeros((len(area_ranges), len(det_bboxes)), dtype=np.float32)
    fp = np.zeros_like(tp)
    det_areas, gt_areas = _areas(det_bboxes, extra), _areas(all_gts, extra)
    if len(all_gts):
        ious = box_overlaps(det_bboxes, all_gts, use_legacy_coordinate=use_legacy_coordinate)
        best_iou, best_gt = ious.max(axis=1), ious.argmax(axis=1)
    else:
        best_iou, best_gt = np.full(len(det_bboxes), -1.), np.zeros(len(det_bboxes), int)
    order = np.argsort(-det_bboxes[:, -1], kind='stable')
    for k, (lo, hi) in enumerate(area_ranges):
        taken = np.zeros(len(all_gts), dtype=bool)
        out_of_range = np.zeros(len(all_gts), bool) if lo is None else \
            (gt_areas < lo) | (gt_areas >= hi)
        for i in order:
            if best_iou[i] >= iou_thr:
                g = best_gt[i]
                if ignored[g] or out_of_range[g]:
                    continue
                tp[k, i], fp[k, i] = (0, 1) if taken[g] else (1, 0)
                taken[g] = True
            elif lo is None or lo <= det_areas[i] < hi:
                fp[k, i] = 1  # unmatched detections outside the range are not counted
    return tp, fp


def tpfp_openimages(det_bboxes: np.ndarray,
                    gt_bboxes: np.ndarray,
                    gt_is_group_of: np.ndarray,
                    iou_thr: float = 0.5,
                    ioa_thr: float = 0.5) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True / false positives of one image and class under Open Images' group-of rule.

    1. Detections are matched to the non-group-of boxes as in :func:`tpfp_default`.
    2. Each detection that is not a true positive then, if at least ``ioa_thr`` of its area
       lies inside a group-of box, joins that box (the one covering it most) instead of
       counting as a false positive. A group-of box joined by any detection is one true
       positive scored with the best of their scores; one that none joined is a false
       positive of score 0 (it sorts last, so it only stands for a missed box).

    Returns:
        ``(tp, fp, dets)``: ``(1, m)`` 0/1 float32 each and the ``(m, 5)`` detections they
        describe (joined detections replaced by one row per group-of box).
    """
    det_bboxes = np.asarray(det_bboxes, dtype=np.float32).reshape(-1, 5)
    group = np.asarray(gt_is_group_of, dtype=bool).reshape(-1)
    gt_bboxes = np.asarray(gt_bboxes, dtype=np.float32).reshape(-1, 4)
    if len(group) != len(gt_bboxes):
        raise ValueError(f'tpfp_openimages got {len(group)} group-of flags for '
                         f'{len(gt_bboxes)} gt boxes')
    tp, fp = tpfp_default(det_bboxes, gt_bboxes[~group], None, iou_thr)
    if not group.any() or not len(det_bboxes):
        return tp, fp, det_bboxes
    ioas = box_overlaps(det_bboxes, gt_bboxes[group], mode='iof')
    best, which = ioas.max(axis=1), ioas.argmax(axis=1)
    joins = (tp[0] == 0) & (best >= ioa_thr)
    hit = np.zeros(int(group.sum()), dtype=bool)
    group_dets = np.zeros((len(hit), 5), dtype=np.float32)
    for i in np.flatnonzero(joins):
        g = which[i]
        hit[g] = True
        if det_bboxes[i, 4] > group_dets[g, 4]:
            group_dets[g] = det_bboxes[i]
    keep = ~joins
    tp = np.concatenate([tp[0, keep], hit.astype(np.float32)])[None]
    fp = np.concatenate([fp[0, keep], (~hit).astype(np.float32)])[None]
    return tp, fp, np.concatenate([det_bboxes[keep], group_dets])


def eval_map(det_results: Sequence[Sequence[np.ndarray]],
             annotations: Sequence[Dict[str, np.ndarray]],
             scale_ranges: Optional[List[Tuple[float, float]]] = None,
             iou_thr: float = 0.5,
             dataset: Optional[Sequence[str]] = None,
             logger=None,
             use_legacy_coordinate: bool = False,
             eval_mode: str = 'area',
             use_group_of: bool = False,
             ioa_thr: Optional[float] = 0.5) -> Tuple[Union[float, List[float]], List[dict]]:
    """Mean AP over classes (those with at least one non-ignored gt).

    Args:
        det_results: Per image, per class ``(k, 5)`` detections (see the module doc).
        annotations: Per image gt dict (see the module doc).
        scale_ranges: ``[(min_side, max_side), ...]``; evaluates boxes whose area lies in
            ``[min_side**2, max_side**2)`` separately for each range.
        iou_thr: IoU at which a detection matches a gt.
        dataset: Class names for the printed table (indices when None).
        logger: Where the table goes (see :func:`mmengine.logging.print_log`);
            ``'silent'`` prints nothing.
        use_legacy_coordinate: Widths as ``x2 - x1 + 1``.
        eval_mode: ``'area'`` or ``'11points'`` (see :func:`average_precision`).
        use_group_of: Open Images' rule for ``gt_is_group_ofs`` boxes (see
            :func:`tpfp_openimages`); not with ``scale_ranges``.
        ioa_thr: Share of a detection's area inside a group-of box that joins it to it.

    Returns:
        ``(mean_ap, per_class)``: ``mean_ap`` is a float, or one float per scale range;
        ``per_class`` holds ``num_gts``, ``num_dets``, ``recall``, ``precision``, ``ap``.
    """
    if len(det_results) != len(annotations):
        raise ValueError(f'eval_map got {len(det_results)} detection results for '
                         f'{len(annotations)} annotations; give one of each per image')
    if isinstance(dataset, str):
        raise ValueError(f'eval_map dataset must be the class names, got the string {dataset!r}')
    if use_group_of and (scale_ranges or ioa_thr is None or use_legacy_coordinate):
        raise ValueError('eval_map with use_group_of=True needs ioa_thr and supports neither '
                         f'scale_ranges (got {scale_ranges}) nor use_legacy_coordinate')
    extra = 1. if use_legacy_coordinate else 0.
    area_ranges = [(lo**2, hi**2) for lo, hi in scale_ranges] if scale_ranges else None
    num_scales = len(area_ranges) if area_ranges else 1
    eps = np.finfo(np.float32).eps
    per_class = []
    for c in range(len(det_results[0]) if det_results else 0):
        dets = [np.asarray(img[c], dtype=np.float32).reshape(-1, 5) for img in det_results]
        gts = [ann['bboxes'][ann['labels'] == c].reshape(-1, 4) for ann in annotations]
        ignores = [ann['bboxes_ignore'][ann['labels_ignore'] == c].reshape(-1, 4)
                   if ann.get('labels_ignore') is not None else np.zeros((0, 4), np.float32)
                   for ann in annotations]
        if use_group_of:
            groups = [np.asarray(ann['gt_is_group_ofs'], bool)[ann['labels'] == c]
                      if ann.get('gt_is_group_ofs') is not None else np.zeros(len(g), bool)
                      for ann, g in zip(annotations, gts)]
            marked = [tpfp_openimages(d, g, grp, iou_thr, ioa_thr)
                      for d, g, grp in zip(dets, gts, groups)]
            # joined detections were replaced by one row per group-of box
            tpfp, dets = [(t, f) for t, f, _ in marked], [d for _, _, d in marked]
        else:
            tpfp = [tpfp_default(d, g, ig, iou_thr, area_ranges, use_legacy_coordinate)
                    for d, g, ig in zip(dets, gts, ignores)]
        num_gts = np.zeros(num_scales, dtype=int)
        for g in gts:
            if area_ranges is None:
                num_gts[0] += len(g)
            else:
                areas = _areas(g, extra)
                num_gts += [np.sum((areas >= lo) & (areas < hi)) for lo, hi in area_ranges]
        all_dets = np.vstack(dets)
        order = np.argsort(-all_dets[:, -1], kind='stable')
        tp = np.cumsum(np.hstack([t for t, _ in tpfp])[:, order], axis=1)
        fp = np.cumsum(np.hstack([f for _, f in tpfp])[:, order], axis=1)
        recalls = tp / np.maximum(num_gts[:, None], eps)
        precisions = tp / np.maximum(tp + fp, eps)
        if area_ranges is None:
            recalls, precisions, num_gts = recalls[0], precisions[0], int(num_gts[0])
        per_class.append(dict(num_gts=num_gts, num_dets=len(all_dets), recall=recalls,
                              precision=precisions,
                              ap=average_precision(recalls, precisions, eval_mode)))
    if area_ranges is None:
        aps = [r['ap'] for r in per_class if r['num_gts'] > 0]
        mean_ap: Union[float, List[float]] = float(np.mean(aps)) if aps else 0.
    else:
        all_ap = np.array([r['ap'] for r in per_class]).reshape(-1, num_scales)
        all_gts = np.array([r['num_gts'] for r in per_class]).reshape(-1, num_scales)
        mean_ap = [float(all_ap[all_gts[:, s] > 0, s].mean()) if (all_gts[:, s] > 0).any() else 0.
                   for s in range(num_scales)]
    print_map_summary(mean_ap, per_class, dataset, area_ranges, logger=logger)
    return mean_ap, per_class


def print_map_summary(mean_ap: Union[float, List[float]],
                      results: List[dict],
                      dataset: Optional[Sequence[str]] = None,
                      scale_ranges: Optional[List[Tuple[float, float]]] = None,
                      logger=None) -> None:
    """Log a ``class | gts | dets | recall | ap`` table (one per scale range) and the mAP."""
    if logger == 'silent' or not results:
        return
    names = list(dataset) if dataset is not None else [str(i) for i in range(len(results))]
    mean_aps = mean_ap if isinstance(mean_ap, list) else [mean_ap]
    for s, m in enumerate(mean_aps):
        if scale_ranges is not None:
            print_log(f'Scale range {scale_ranges[s]}', logger=logger)
        rows = [['class', 'gts', 'dets', 'recall', 'ap']]
        for name, r in zip(names, results):
            recall = np.atleast_2d(r['recall'])[s]
            rows.append([name, np.atleast_1d(r['num_gts'])[s], r['num_dets'],
                         f'{recall[-1] if recall.size else 0.:.3f}',
                         f'{np.atleast_1d(r["ap"])[s]:.3f}'])
        rows.append(['mAP', '', '', '', f'{m:.3f}'])
        table = AsciiTable(rows)
        table.inner_footing_row_border = True
        print_log('\n' + table.table, logger=logger)
