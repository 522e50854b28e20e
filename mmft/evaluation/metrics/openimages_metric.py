"""Open Images mAP, hierarchy-aware (MMDetection 3.x's ``OpenImagesMetric``).

Per image, before matching:
- every gt box also counts for each ancestor class of its class (``get_supercategory``);
- each prediction is also a prediction of each of its class's ancestors that the image is
  annotated for (``get_supercategory``), and predictions of classes the image is not
  annotated for at all (neither a box, an ancestor of a box, nor a verified image-level
  label) are dropped (``filter_labels``): Open Images' annotation is not exhaustive;
- "group of" boxes follow Open Images' rule (``use_group_of``, see
  :func:`mmft.evaluation.functional.tpfp_openimages`).

Then AP per class is the area under the precision envelope (:func:`eval_map`), averaged over
classes with gt. Ground truth comes from the samples' ``instances`` and
``image_level_labels``: list both in ``PackDetInputs(meta_keys=...)``, as the base config
does. Keys: ``AP50`` (one per ``iou_thrs``) and ``mAP`` (their mean), unrounded.
"""
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmft.registry import METRICS
from ..functional import eval_map
from .sample_fields import dataset_classes, pred_boxes


@METRICS.register_module()
class OpenImagesMetric(BaseMetric):
    """Hierarchy-aware Open Images mAP.

    Args:
        iou_thrs: IoU threshold(s) for non-group-of boxes.
        ioa_thrs: Matching threshold(s) for group-of boxes, one per IoU threshold.
        scale_ranges: ``[(min_side, max_side), ...]`` (only without ``use_group_of``).
        use_group_of: Open Images' group-of rule.
        get_supercategory: Count boxes and predictions for ancestor classes too.
        filter_labels: Drop predictions of classes the image is not annotated for.
        collect_device, prefix: MMEngine ``BaseMetric`` arguments (prefix ``openimages``).
    """
    default_prefix: Optional[str] = 'openimages'

    def __init__(self,
                 iou_thrs: Union[float, List[float]] = 0.5,
                 ioa_thrs: Union[float, List[float], None] = 0.5,
                 scale_ranges: Optional[List[Tuple[float, float]]] = None,
                 use_group_of: bool = True,
                 get_supercategory: bool = True,
                 filter_labels: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.iou_thrs = [iou_thrs] if isinstance(iou_thrs, (int, float)) else list(iou_thrs)
        self.ioa_thrs = [ioa_thrs] if ioa_thrs is None or isinstance(ioa_thrs, (int, float)) \
            else list(ioa_thrs)
        if len(self.iou_thrs) != len(self.ioa_thrs):
            raise ValueError(f'OpenImagesMetric needs one ioa_thr per iou_thr, got iou_thrs='
                             f'{self.iou_thrs} and ioa_thrs={self.ioa_thrs}')
        if use_group_of and None in self.ioa_thrs:
            raise ValueError('OpenImagesMetric use_group_of=True needs ioa_thrs (e.g. 0.5)')
        self.scale_ranges = scale_ranges
        self.use_group_of = use_group_of
        self.get_supercategory = get_supercategory
        self.filter_labels = filter_labels

    def _relation(self) -> np.ndarray:
        matrix = (self.dataset_meta or {}).get('RELATION_MATRIX')
        if matrix is None:
            raise ValueError("OpenImagesMetric needs dataset_meta['RELATION_MATRIX'] (the "
                             'class hierarchy); OpenImagesDataset sets it from hierarchy_file')
        return np.asarray(matrix)

    def process(self, data_batch: Any, data_samples: Sequence[Dict[str, Any]]) -> None:
        """Expand gt and predictions by the hierarchy and keep them per class."""
        relation = self._relation()
        num_classes = len(dataset_classes(self))
        for sample in data_samples:
            if 'instances' not in sample:
                raise KeyError("OpenImagesMetric reads the gt from the samples' 'instances': "
                               "add 'instances' and 'image_level_labels' to PackDetInputs' "
                               'meta_keys in the test pipeline')
            labels, boxes, group = [], [], []
            for inst in sample['instances']:
                classes = np.flatnonzero(relation[inst['bbox_label']]) \
                    if self.get_supercategory else [inst['bbox_label']]
                for cls in classes:
                    labels.append(int(cls))
                    boxes.append(inst['bbox'])
                    group.append(bool(inst.get('is_group_of', False)))
            ann = dict(labels=np.array(labels, np.int64),
                       bboxes=np.array(boxes, np.float32).reshape(-1, 4),
                       gt_is_group_ofs=np.array(group, bool))
            image_level = sample.get('image_level_labels')
            allowed = set(labels) | set(np.asarray(image_level if image_level is not None
                                                   else [], np.int64).tolist())
            pred = pred_boxes(sample['pred_instances'])
            dets = [[] for _ in range(num_classes)]
            for box, score, label in zip(pred['bboxes'], pred['scores'], pred['labels']):
                row = np.append(box, score)
                if label in allowed or not self.filter_labels:
                    dets[label].append(row)
                if self.get_supercategory:
                    for cls in np.flatnonzero(relation[label]):
                        if cls != label and cls in allowed:
                            dets[cls].append(row)
            self.results.append((ann, [np.array(d, np.float32).reshape(-1, 5) for d in dets]))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """``AP{iou}`` per threshold pair and their mean ``mAP``."""
        logger: MMLogger = MMLogger.get_current_instance()
        gts, preds = zip(*results)
        out: Dict[str, float] = OrderedDict()
        aps = []
        for iou_thr, ioa_thr in zip(self.iou_thrs, self.ioa_thrs):
            logger.info(f'{"-" * 15}iou_thr, ioa_thr: {iou_thr}, {ioa_thr}{"-" * 15}')
            mean_ap, _ = eval_map(list(preds), list(gts), scale_ranges=self.scale_ranges,
                                  iou_thr=iou_thr, ioa_thr=ioa_thr,
                                  dataset=dataset_classes(self), logger=logger,
                                  use_group_of=self.use_group_of)
            aps.append(mean_ap)
            out[f'AP{int(iou_thr * 100):02d}'] = mean_ap
        out['mAP'] = sum(aps) / len(aps)
        return out
