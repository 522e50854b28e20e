"""Pascal VOC mAP (and proposal recall) with MMDetection 3.x names, arguments and numbers.

Each data sample brings ``gt_instances`` and ``ignored_instances`` (VOC "difficult" boxes:
neither true nor false positives, and not counted as gt) and ``pred_instances``; all boxes
in original-image pixels (see :mod:`.sample_fields`). Widths are measured as
``x2 - x1 + 1``, as the VOC devkit does.
"""
import warnings
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmft.registry import METRICS
from ..functional import eval_map, eval_recalls
from .sample_fields import dataset_classes, gt_boxes, pred_boxes

# the VOC devkit's convention, so that numbers match the official toolkit
USE_LEGACY_COORDINATE = True


@METRICS.register_module()
class VOCMetric(BaseMetric):
    """Pascal VOC evaluation: mAP at IoU thresholds, or recall of proposals.

    Args:
        iou_thrs: IoU threshold(s); ``mAP`` is the mean over them, each also returned as
            ``AP50``, ``AP75``, ...
        scale_ranges: ``[(min_side, max_side), ...]``: evaluate boxes in each area range
            ``[min**2, max**2)`` separately (keys ``AP50_{min}-{max}``); all boxes when None.
        metric: ``'mAP'`` or ``'recall'`` (a one-element list is accepted too).
        proposal_nums: The N's of ``recall@N@iou`` and ``AR@N``.
        eval_mode: ``'11points'`` (VOC2007) or ``'area'`` (VOC2012).
        collect_device: ``'cpu'`` or ``'gpu'``, for gathering results across ranks.
        prefix: Prefix of the returned keys; ``'pascal_voc'`` when None.
    """
    default_prefix: Optional[str] = 'pascal_voc'

    def __init__(self,
                 iou_thrs: Union[float, Sequence[float]] = 0.5,
                 scale_ranges: Optional[List[Tuple[float, float]]] = None,
                 metric: Union[str, Sequence[str]] = 'mAP',
                 proposal_nums: Sequence[int] = (100, 300, 1000),
                 eval_mode: str = '11points',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.iou_thrs = [float(iou_thrs)] if np.isscalar(iou_thrs) else [float(t) for t in iou_thrs]
        self.scale_ranges = scale_ranges
        if not isinstance(metric, str):
            if len(metric) != 1:
                raise ValueError(f'VOCMetric evaluates one metric, got {list(metric)}; '
                                 "use metric='mAP' or metric='recall'")
            metric = metric[0]
        if metric not in ('mAP', 'recall'):
            raise KeyError(f"VOCMetric metric must be 'mAP' or 'recall', got {metric!r}")
        if eval_mode not in ('11points', 'area'):
            raise ValueError(f"VOCMetric eval_mode must be '11points' (VOC2007) or 'area' "
                             f'(VOC2012), got {eval_mode!r}')
        self.metric = metric
        self.proposal_nums = list(proposal_nums)
        self.eval_mode = eval_mode

    def process(self, data_batch: Any, data_samples: Sequence[Mapping[str, Any]]) -> None:
        """Keep each sample's gt and its detections split by class, ``(k, 5)`` with scores."""
        num_classes = len(dataset_classes(self))
        for sample in data_samples:
            pred = pred_boxes(sample['pred_instances'])
            dets = np.hstack([pred['bboxes'], pred['scores'][:, None]])
            self.results.append(
                (gt_boxes(sample), [dets[pred['labels'] == c] for c in range(num_classes)]))


    def compute_metrics(self, results: list) -> Dict[str, float]:
        """mAP: ``{'mAP', 'AP50', ...}``; recall: ``{'recall@N@iou', ..., 'AR@N'}``."""
        logger: MMLogger = MMLogger.get_current_instance()
        gts, preds = zip(*results)
        if self.metric == 'recall':
            return self._recall(gts, preds, logger)
        self._check_eval_mode()
        eval_results: Dict[str, float] = OrderedDict(mAP=0.)
        mean_aps = []
        for iou_thr in self.iou_thrs:
            logger.info(f'\n{"-" * 15}iou_thr: {iou_thr}{"-" * 15}')
            mean_ap, _ = eval_map(preds, gts, scale_ranges=self.scale_ranges, iou_thr=iou_thr,
                                  dataset=dataset_classes(self), logger=logger,
                                  use_legacy_coordinate=USE_LEGACY_COORDINATE,
                                  eval_mode=self.eval_mode)
            key = f'AP{int(iou_thr * 100):02d}'
            if self.scale_ranges is None:
                mean_aps.append(mean_ap)
                eval_results[key] = mean_ap
            else:
                mean_aps += mean_ap
                for (lo, hi), ap in zip(self.scale_ranges, mean_ap):
                    eval_results[f'{key}_{lo}-{hi}'] = ap
        eval_results['mAP'] = float(np.mean(mean_aps))
        return eval_results

    def _check_eval_mode(self) -> None:
        expected = {'VOC2007': '11points', 'VOC2012': 'area'}.get(
            (self.dataset_meta or {}).get('dataset_type'))
        if expected is not None and expected != self.eval_mode:
            warnings.warn(f"{self.dataset_meta['dataset_type']} is scored with eval_mode="
                          f"'{expected}' by its devkit, but VOCMetric uses '{self.eval_mode}'")

    def _recall(self, gts: Sequence[dict], preds: Sequence[List[np.ndarray]],
                logger: MMLogger) -> Dict[str, float]:
        # proposals carry one label (or any): every class's boxes are proposals
        props = [np.vstack(dets) for dets in preds]
        recalls = eval_recalls([gt['bboxes'] for gt in gts], props, self.proposal_nums,
                               self.iou_thrs, logger=logger,
                               use_legacy_coordinate=USE_LEGACY_COORDINATE)
        out: Dict[str, float] = OrderedDict()
        for i, num in enumerate(self.proposal_nums):
            for j, iou_thr in enumerate(self.iou_thrs):
                out[f'recall@{num}@{iou_thr}'] = float(recalls[i, j])
        if len(self.iou_thrs) > 1:
            for num, ar in zip(self.proposal_nums, recalls.mean(axis=1)):
                out[f'AR@{num}'] = float(ar)
        return out
