"""LVIS AP (federated evaluation) through the ``lvis`` package, with MMDetection 3.x names.

Predictions are collected and written as :class:`CocoMetric` does (labels become category
ids by class name); the numbers are the ``lvis`` package's own ``LVISEval`` on the
annotation file, which alone knows each image's verified-negative and not-exhaustive
categories and each category's frequency (rare / common / frequent for APr / APc / APf).
``segm`` results are scored on mask areas (boxes dropped), as the LVIS challenge does.
LVIS keeps the 300 best detections per image.

Returned keys (prefix ``lvis``): ``bbox_AP``, ``bbox_AP50``, ``bbox_AP75``, ``bbox_APs``,
``bbox_APm``, ``bbox_APl``, ``bbox_APr``, ``bbox_APc``, ``bbox_APf`` (same for ``segm``),
unrounded; ``proposal``: ``AR@300``, ``ARs@300``, ``ARm@300``, ``ARl@300``.
"""
import contextlib
import io
import json
import logging
import os
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.fileio import get_local_path
from mmengine.logging import MMLogger
from terminaltables import AsciiTable

from mmft.registry import METRICS
from .coco_metric import CocoMetric
from .sample_fields import dataset_classes

AP_KEYS = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf']
AR_KEYS = ['AR@300', 'ARs@300', 'ARm@300', 'ARl@300']
INSTALL_HINT = ("LVIS evaluation needs the 'lvis' package: pip install -r requirements/lvis.txt "
                "(or pip install 'mmft[lvis]')")


def import_lvis():
    """The ``lvis`` package's ``LVIS``, ``LVISResults`` and ``LVISEval``."""
    try:
        from lvis import LVIS, LVISEval, LVISResults
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return LVIS, LVISResults, LVISEval


@contextlib.contextmanager
def lvis_numpy_compat():
    """lvis 0.5.3 (the newest on PyPI) accumulates with ``np.float``, which NumPy 2 removed;
    lend it the alias for the duration of an evaluation only."""
    added = 'float' not in vars(np)
    if added:
        np.float = float
    try:
        yield
    finally:
        if added:
            del np.float


@contextlib.contextmanager
def _quiet():
    """lvis logs every step at INFO and prints its summary: keep both out of the run's log."""
    logger = logging.getLogger('lvis')
    level = logger.level
    logger.setLevel(logging.WARNING)
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            yield buf
    finally:
        logger.setLevel(level)


@METRICS.register_module()
class LVISMetric(CocoMetric):
    """LVIS box / mask AP and class-agnostic proposal AR.

    Args:
        ann_file: The LVIS annotation json of the evaluated images (required: federated
            evaluation reads each image's negative / not-exhaustive category lists and each
            category's frequency from it).
        metric: ``'bbox'``, ``'segm'`` and/or ``'proposal'``.
        classwise: Also log a per-class AP table and return ``{metric}_{class}_precision``.
        proposal_nums: Accepted for MMDetection configs; LVIS's AR is at 300.
        iou_thrs: Accepted for MMDetection configs; LVIS uses 0.50:0.05:0.95.
        metric_items: Which of :data:`AP_KEYS` (or :data:`AR_KEYS` for ``proposal``)
            to return; all when None.
        format_only, outfile_prefix, backend_args, collect_device, prefix: as
            :class:`CocoMetric`.
    """
    default_prefix: Optional[str] = 'lvis'
    allowed_metrics = ('bbox', 'segm', 'proposal')

    def __init__(self,
                 ann_file: Optional[str] = None,
                 metric: Union[str, Sequence[str]] = 'bbox',
                 classwise: bool = False,
                 proposal_nums: Sequence[int] = (100, 300, 1000),
                 iou_thrs: Optional[Union[float, Sequence[float]]] = None,
                 metric_items: Optional[Sequence[str]] = None,
                 format_only: bool = False,
                 outfile_prefix: Optional[str] = None,
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 file_client_args: Optional[dict] = None) -> None:
        LVIS, _, _ = import_lvis()
        if ann_file is None:
            raise ValueError('LVISMetric needs ann_file (the LVIS json of the evaluated '
                             "images): federated evaluation reads each image's negative and "
                             'not-exhaustive categories from it')
        if file_client_args is not None:
            raise ValueError('LVISMetric file_client_args is deprecated (MMDetection 3.x): use '
                             'backend_args')
        super().__init__(ann_file=None, metric=metric, classwise=classwise,
                         proposal_nums=proposal_nums, iou_thrs=None, metric_items=None,
                         format_only=format_only, outfile_prefix=outfile_prefix,
                         backend_args=backend_args, collect_device=collect_device,
                         prefix=prefix)
        known = AR_KEYS if self.metrics == ['proposal'] else AP_KEYS + AR_KEYS
        bad = [m for m in (metric_items or []) if m not in known]
        if bad:
            raise KeyError(f'LVISMetric metric_items {bad} are not LVIS results; use some of '
                           f'{known}')
        self.metric_items = list(metric_items) if metric_items is not None else None
        self.ann_file = ann_file
        with get_local_path(ann_file, backend_args=backend_args) as local_path, _quiet():
            self._lvis_api = LVIS(local_path)
        # CocoMetric.process keeps the gt only when it has no api: LVIS reads the file's
        self._coco_api = self._lvis_api

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Write the results json, then run ``LVISEval`` for each metric."""
        logger: MMLogger = MMLogger.get_current_instance()
        _, preds = zip(*results)
        tmp_dir = tempfile.TemporaryDirectory() if self.outfile_prefix is None else None
        outfile_prefix = osp.join(tmp_dir.name, 'results') if tmp_dir else self.outfile_prefix
        os.makedirs(osp.dirname(osp.abspath(outfile_prefix)), exist_ok=True)
        try:
            cat_ids = self.lvis_cat_ids()
            files = self.results2json(preds, outfile_prefix, cat_ids)
            if self.format_only:
                logger.info(f'results are saved in {osp.dirname(osp.abspath(outfile_prefix))}')
                return OrderedDict()
            out: Dict[str, float] = OrderedDict()
            for metric in self.metrics:
                logger.info(f'Evaluating {metric}...')
                out.update(self._lvis_eval(metric, files, logger))
            return out
        finally:
            if tmp_dir is not None:
                tmp_dir.cleanup()

    def lvis_cat_ids(self) -> List[int]:
        """Category id of each class, found by name in the LVIS json."""
        name_to_id = {c['name']: c['id'] for c in self._lvis_api.dataset['categories']}
        classes = dataset_classes(self)
        missing = [c for c in classes if c not in name_to_id]
        if missing:
            raise ValueError(f"classes in ann_file don't match dataset_meta classes: missing "
                             f'{missing[:20]} (the json has {len(name_to_id)} categories); '
                             "evaluate with the dataset's own LVIS ann_file")
        return [name_to_id[c] for c in classes]

    def _lvis_eval(self, metric: str, files: Dict[str, str],
                   logger: MMLogger) -> Dict[str, float]:
        _, LVISResults, LVISEval = import_lvis()
        if metric not in files:
            raise KeyError(f"LVISMetric has no {metric} results: the predictions carry no "
                           f"masks; drop '{metric}' from metric or predict masks")
        with open(files[metric]) as f:
            dets = json.load(f)
        keys = AR_KEYS if metric == 'proposal' else AP_KEYS
        items = self.metric_items or keys
        name = (lambda k: k) if metric == 'proposal' else (lambda k: f'{metric}_{k}')
        if not dets:  # LVISResults cannot read an empty list: nothing found scores 0
            logger.warning(f'LVISMetric: no {metric} predictions at all; every AP is 0')
            return OrderedDict((name(k), 0.0) for k in items if k in keys)
        if metric == 'segm':
            for det in dets:  # scored on the mask: LVISResults measures its area
                det.pop('bbox')
        with _quiet() as printed, lvis_numpy_compat():
            lvis_dt = LVISResults(self._lvis_api, dets)
            lvis_eval = LVISEval(self._lvis_api, lvis_dt, 'bbox' if metric == 'proposal'
                                 else metric)
            if metric == 'proposal':
                lvis_eval.params.use_cats = 0
            lvis_eval.run()
            lvis_eval.print_results()
        logger.info('\n' + printed.getvalue().rstrip())
        stats = lvis_eval.get_results()
        out = OrderedDict((name(k), float(stats[k])) for k in items if k in keys)
        if self.classwise and metric != 'proposal':
            out.update(self._lvis_classwise(metric, lvis_eval, logger))
        return out

    def _lvis_classwise(self, metric: str, lvis_eval: Any,
                        logger: MMLogger) -> Dict[str, float]:
        precision = lvis_eval.eval['precision']  # (iou, recall, class, area)
        rows, out = [['category', 'AP']], OrderedDict()
        for k, cat_id in enumerate(lvis_eval.params.cat_ids):
            name = self._lvis_api.cats[cat_id]['name']
            values = precision[:, :, k, 0]
            ap = float(values[values > -1].mean()) if (values > -1).any() else float('nan')
            out[f'{metric}_{name}_precision'] = ap
            rows.append([name, f'{ap:.3f}'])
        logger.info('\n' + AsciiTable(rows).table)
        return out




@METRICS.register_module()
class LVISFixedAPMetric(BaseMetric):
    """LVIS box AP with a fixed budget of detections per *class* (Dave et al., 2021,
    "Evaluating Large-Vocabulary Object Detectors: The Devil is in the Details").

    The ``topk`` best detections of each class over the whole dataset are kept, with no
    per-image limit, and scored by the ``lvis`` package's ``LVISEval`` (``max_dets=-1``).
    Keys (prefix ``lvis_fixed_ap``): ``AP``, ``AP50``, ``AP75``, ``APs``, ``APm``, ``APl``,
    ``APr``, ``APc``, ``APf``, unrounded.

    Args:
        ann_file: The LVIS annotation json of the evaluated images.
        topk: Detections kept per class.
        format_only, outfile_prefix: Only write the kept detections to
            ``{outfile_prefix}.bbox.json``.
        collect_device, prefix, backend_args: As :class:`LVISMetric`.
    """
    default_prefix: Optional[str] = 'lvis_fixed_ap'

    def __init__(self,
                 ann_file: str,
                 topk: int = 10000,
                 format_only: bool = False,
                 outfile_prefix: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 backend_args: Optional[dict] = None) -> None:
        LVIS, _, _ = import_lvis()
        super().__init__(collect_device=collect_device, prefix=prefix)
        if format_only and outfile_prefix is None:
            raise ValueError('LVISFixedAPMetric format_only=True needs outfile_prefix')
        self.topk = topk
        self.format_only = format_only
        self.outfile_prefix = outfile_prefix
        with get_local_path(ann_file, backend_args=backend_args) as local_path, _quiet():
            self._lvis_api = LVIS(local_path)
        self.results: Dict[int, List[dict]] = {}

    def _cat_ids(self) -> List[int]:
        name_to_id = {c['name']: c['id'] for c in self._lvis_api.dataset['categories']}
        classes = dataset_classes(self)
        missing = [c for c in classes if c not in name_to_id]
        if missing:
            raise ValueError(f"classes in ann_file don't match dataset_meta classes: missing "
                             f'{missing[:20]}; evaluate with the dataset\'s own LVIS ann_file')
        return [name_to_id[c] for c in classes]

    def process(self, data_batch: Any, data_samples: Sequence[Dict[str, Any]]) -> None:
        """Merge the batch's detections into each class's running top-k."""
        cat_ids = self._cat_ids()
        by_cat: Dict[int, List[dict]] = {}
        for sample in data_samples:
            pred = sample['pred_instances']
            boxes = pred['bboxes'].detach().cpu().float().numpy().reshape(-1, 4)
            scores = pred['scores'].detach().cpu().float().numpy().reshape(-1)
            labels = pred['labels'].detach().cpu().numpy().reshape(-1)
            for (x1, y1, x2, y2), score, label in zip(boxes, scores, labels):
                by_cat.setdefault(cat_ids[int(label)], []).append(dict(
                    image_id=sample['img_id'], category_id=cat_ids[int(label)],
                    bbox=[float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                    score=float(score)))
        for cat, dets in by_cat.items():
            merged = self.results.get(cat, []) + dets
            self.results[cat] = sorted(merged, key=lambda d: -d['score'])[:self.topk]

    def evaluate(self, size: int) -> dict:
        """Gather every rank's per-class lists, keep the top-k of each, evaluate."""
        from mmengine.dist import all_gather_object, broadcast_object_list, is_main_process
        merged: Dict[int, List[dict]] = {}
        for part in all_gather_object(self.results):
            for cat, dets in part.items():
                merged.setdefault(cat, []).extend(dets)
        metrics = [None]
        if is_main_process():
            out = self.compute_metrics(merged)
            metrics = [{f'{self.prefix}/{k}' if self.prefix else k: v for k, v in out.items()}]
        broadcast_object_list(metrics)
        self.results = {}
        return metrics[0]

    def compute_metrics(self, results: Dict[int, List[dict]]) -> Dict[str, float]:
        logger: MMLogger = MMLogger.get_current_instance()
        dets, short = [], 0
        for cat_dets in results.values():
            short += len(cat_dets) < self.topk
            dets.extend(sorted(cat_dets, key=lambda d: -d['score'])[:self.topk])
        if short:
            logger.info(f'{short} classes have fewer than {self.topk} detections; giving '
                        f'{self.topk} per class raises Fixed AP')
        if self.format_only:
            os.makedirs(osp.dirname(osp.abspath(self.outfile_prefix)), exist_ok=True)
            with open(f'{self.outfile_prefix}.bbox.json', 'w') as f:
                json.dump(dets, f)
            return OrderedDict()
        if not dets:
            logger.warning('LVISFixedAPMetric: no detections at all; every AP is 0')
            return OrderedDict((k, 0.0) for k in AP_KEYS)
        _, LVISResults, LVISEval = import_lvis()
        with _quiet() as printed, lvis_numpy_compat():
            lvis_eval = LVISEval(self._lvis_api, LVISResults(self._lvis_api, dets, max_dets=-1),
                                 iou_type='bbox')
            lvis_eval.params.max_dets = -1  # no per-image limit
            lvis_eval.run()
            lvis_eval.print_results()
        logger.info('\n' + printed.getvalue().rstrip())
        stats = lvis_eval.get_results()
        return OrderedDict((k, float(stats[k])) for k in AP_KEYS)
