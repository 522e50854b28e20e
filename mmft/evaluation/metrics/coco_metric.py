"""COCO box / mask AP and proposal AR through pycocotools, with MMDetection 3.x names and keys.

Predictions come from each data sample's ``pred_instances``: ``bboxes`` (N, 4) xyxy in
original-image pixels, ``scores``, ``labels`` indexing ``dataset_meta['classes']``, and
optionally ``masks`` (bool (N, H, W), or RLEs already) and ``mask_scores``; plus the sample's
``img_id`` and ``ori_shape``. Labels become category ids by class *name* through the gt's
categories, so the order of the categories in an annotation file never matters.

The numbers are pycocotools' own: the written results json through ``COCOeval`` with the
parameters set here (``maxDets = proposal_nums``, ``iouThrs = iou_thrs``, the classes'
category ids, every image of the gt; for ``segm`` the boxes dropped so areas are mask
areas, as in MMDetection) gives the very same stats. Values are returned unrounded.
"""
import contextlib
import io
import json
import os
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.fileio import get_local_path
from mmengine.logging import MMLogger
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from terminaltables import AsciiTable

from mmft.registry import METRICS
from ..functional import eval_recalls
from .sample_fields import dataset_classes, gt_boxes, pred_boxes, to_numpy

AP_ITEMS = ['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l']


def stat_names(proposal_nums: Sequence[int]) -> List[str]:
    """Names of the 12 ``COCOeval.stats`` in order, for ``maxDets = proposal_nums``."""
    n0, n1, n2 = proposal_nums
    return AP_ITEMS + [f'AR@{n0}', f'AR@{n1}', f'AR@{n2}', f'AR_s@{n2}', f'AR_m@{n2}', f'AR_l@{n2}']


def encode_masks(masks: Any) -> List[Dict[str, Any]]:
    """(N, H, W) masks (tensor or array) as compressed RLEs with str ``counts`` (json-ready).

    A list is taken as RLEs already; only their byte ``counts`` are decoded.
    """
    if isinstance(masks, (list, tuple)):
        return [dict(m, counts=m['counts'].decode()) if isinstance(m['counts'], bytes) else m
                for m in masks]
    masks = to_numpy(masks).astype(np.uint8)
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0)))  # one call for all N
    for rle in rles:
        rle['counts'] = rle['counts'].decode()
    return rles


def _quietly(fn, *args) -> Tuple[Any, str]:
    """Call ``fn`` with stdout captured (pycocotools prints its progress and summary)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        out = fn(*args)
    return out, buf.getvalue()


def _mean_precision(precision: np.ndarray) -> float:
    valid = precision[precision > -1]  # -1: no gt of this class in that slice
    return float(valid.mean()) if valid.size else float('nan')


@METRICS.register_module()
class CocoMetric(BaseMetric):
    """COCO AP / AR of boxes, masks or proposals.

    Args:
        ann_file: COCO annotation json of the evaluated images. None: the gt is built from
            the data samples (their raw ``instances`` when the pipeline keeps them, else
            ``gt_instances`` + ``ignored_instances`` as crowd), so any dataset works.
        metric: One or more of ``'bbox'``, ``'segm'``, ``'proposal'`` (COCOeval AR,
            class-agnostic) and ``'proposal_fast'`` (:func:`eval_recalls`).
        classwise: Also log a per-class AP table and return ``{metric}_{class}_precision``.
        proposal_nums: COCOeval's ``maxDets`` (exactly 3 numbers), and the N's of AR@N.
        iou_thrs: IoU thresholds; COCO's 0.50:0.05:0.95 when None.
        metric_items: Which stats to return, e.g. ``['mAP', 'AR@100']`` (default: the six
            AP stats; the six AR stats for ``'proposal'``).
        format_only: Only write the results json files (e.g. for the test server).
        outfile_prefix: ``a/b/prefix`` -> ``a/b/prefix.bbox.json``, ``.segm.json`` (and
            ``.gt.json`` without ``ann_file``); a temporary folder when None.
        backend_args: MMEngine file backend arguments for reading ``ann_file``.
        collect_device: ``'cpu'`` or ``'gpu'``, for gathering results across ranks.
        prefix: Prefix of the returned keys; ``'coco'`` when None.
        sort_categories: Accepted for MMDetection configs; labels are mapped by name, so
            the order of categories does not matter here.
    """
    default_prefix: Optional[str] = 'coco'
    allowed_metrics = ('bbox', 'segm', 'proposal', 'proposal_fast')

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
                 sort_categories: bool = False) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.metrics = [metric] if isinstance(metric, str) else list(metric)
        unknown = [m for m in self.metrics if m not in self.allowed_metrics]
        if unknown:
            raise KeyError(f'CocoMetric metric {unknown} is not supported; use some of '
                           f'{list(self.allowed_metrics)}')
        self.proposal_nums = [int(n) for n in proposal_nums]
        if len(self.proposal_nums) != 3 and set(self.metrics) - {'proposal_fast'}:
            raise ValueError(f'CocoMetric proposal_nums={self.proposal_nums} must hold 3 numbers: '
                             "they are COCOeval's maxDets, whose summary reads three")
        if iou_thrs is None:  # pycocotools' own default, bit for bit
            iou_thrs = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
        self.iou_thrs = np.atleast_1d(np.asarray(iou_thrs, dtype=np.float64))
        self.metric_items = list(metric_items) if metric_items is not None else None
        if self.metric_items is not None and set(self.metrics) - {'proposal_fast'}:
            bad = [m for m in self.metric_items if m not in stat_names(self.proposal_nums)]
            if bad:
                raise KeyError(f'CocoMetric metric_items {bad} are not COCO stats; use some of '
                               f'{stat_names(self.proposal_nums)}')
        if format_only and outfile_prefix is None:
            raise ValueError('CocoMetric format_only=True needs outfile_prefix (e.g. '
                             "'work_dirs/results/coco'), else the json files land in a temporary "
                             'folder that is deleted')
        self.classwise = classwise
        self.format_only = format_only
        self.outfile_prefix = outfile_prefix
        self.backend_args = backend_args
        self._coco_api: Optional[COCO] = None
        if ann_file is not None:
            with get_local_path(ann_file, backend_args=backend_args) as local_path:
                self._coco_api, _ = _quietly(COCO, local_path)

    # ---------------------------------------------------------------- collecting
    def process(self, data_batch: Any, data_samples: Sequence[Mapping[str, Any]]) -> None:
        """Keep each sample's predictions (masks RLE-encoded) and, without ``ann_file``, its gt."""
        for sample in data_samples:
            pred = sample['pred_instances']
            result: Dict[str, Any] = dict(pred_boxes(pred), img_id=sample['img_id'])
            if 'masks' in pred:
                result['masks'] = encode_masks(pred['masks'])
            if 'mask_scores' in pred:  # some detectors score masks apart from boxes
                result['mask_scores'] = to_numpy(pred['mask_scores']).astype(np.float32)
            h, w = sample['ori_shape'][:2]
            gt: Dict[str, Any] = dict(img_id=sample['img_id'], width=int(w), height=int(h))
            if self._coco_api is None:
                gt['anns'] = self._anns_of(sample)
            self.results.append((gt, result))

    @staticmethod
    def _anns_of(sample: Mapping[str, Any]) -> List[Dict[str, Any]]:
        """The sample's gt as MMDetection's raw ``instances``: bbox xyxy, bbox_label,
        ignore_flag, mask (polygons or RLE) in original-image pixels."""
        if 'instances' in sample:  # the dataset's raw annotations, what mmdet reads
            return list(sample['instances'])
        gt = gt_boxes(sample)
        shape = tuple(sample['ori_shape'][:2])
        anns = []
        for key, suffix, flag in (('gt_instances', '', 0), ('ignored_instances', '_ignore', 1)):
            boxes, labels = gt['bboxes' + suffix], gt['labels' + suffix]
            masks = (sample.get(key) or {}).get('masks')
            rles = _gt_rles(masks, shape) if masks is not None else [None] * len(boxes)
            anns += [dict(bbox=b.tolist(), bbox_label=int(lb), ignore_flag=flag, mask=m)
                     for b, lb, m in zip(boxes, labels, rles)]
        return anns

    # ---------------------------------------------------------------- gt and results json

    def gt_to_coco(self, gts: Sequence[Dict[str, Any]], outfile_prefix: str) -> COCO:
        """A COCO api over the gt kept by :meth:`process`; also written to ``{prefix}.gt.json``.

        Category ids are 1..K in class order; a gt with ``ignore_flag`` becomes ``iscrowd``.
        """
        images, anns = [], []
        for idx, gt in enumerate(gts):
            img_id = gt.get('img_id', idx)
            images.append(dict(id=img_id, width=gt['width'], height=gt['height'], file_name=''))
            for a in gt['anns']:
                x1, y1, x2, y2 = (float(v) for v in a['bbox'])
                ann = dict(id=len(anns) + 1,  # COCOeval reads id 0 as "unmatched"
                           image_id=img_id, category_id=int(a['bbox_label']) + 1,
                           bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1),
                           iscrowd=int(a.get('ignore_flag', 0)))
                if a.get('mask'):
                    ann['segmentation'] = encode_masks([a['mask']])[0] if isinstance(
                        a['mask'], dict) else a['mask']
                anns.append(ann)
        categories = [dict(id=i + 1, name=n) for i, n in enumerate(dataset_classes(self))]
        coco = COCO()
        coco.dataset = dict(images=images, annotations=anns, categories=categories)
        _quietly(coco.createIndex)
        for ann in anns:  # a mask's area is its pixel count, as in COCO's own files
            if 'segmentation' in ann:
                ann['area'] = float(mask_utils.area(coco.annToRLE(ann)))
        with open(f'{outfile_prefix}.gt.json', 'w') as f:
            json.dump(coco.dataset, f)
        return coco

    def cat_ids_of(self, coco: COCO) -> List[int]:
        """Category id of each class, found by name."""
        name_to_id: Dict[str, int] = {}
        for cat in coco.dataset['categories']:
            name_to_id.setdefault(cat['name'], cat['id'])
        classes = dataset_classes(self)
        missing = [c for c in classes if c not in name_to_id]
        if missing:
            raise ValueError(f"classes in ann_file don't match dataset_meta classes: missing "
                             f'{missing} (available: {sorted(name_to_id)}); evaluate with the '
                             "dataset's own ann_file or fix metainfo.classes")
        return [name_to_id[c] for c in classes]

    def results2json(self, preds: Sequence[Dict[str, Any]], outfile_prefix: str,
                     cat_ids: Sequence[int]) -> Dict[str, str]:
        """Write ``{prefix}.bbox.json`` (also the ``proposal`` results) and, when predictions
        carry masks, ``{prefix}.segm.json``; return the files by metric."""
        bbox_json, segm_json = [], []
        for idx, r in enumerate(preds):
            img_id = r.get('img_id', idx)
            if len(r['labels']) and r['labels'].max() >= len(cat_ids):
                raise ValueError(f'predicted label {int(r["labels"].max())} of image {img_id} is '
                                 f'out of range for {len(cat_ids)} classes; the model and '
                                 "dataset_meta['classes'] disagree")
            mask_scores = r.get('mask_scores', r['scores'])
            for i, (box, score, label) in enumerate(zip(r['bboxes'], r['scores'], r['labels'])):
                x1, y1, x2, y2 = box.tolist()
                det = dict(image_id=img_id, bbox=[x1, y1, x2 - x1, y2 - y1], score=float(score),
                           category_id=cat_ids[label])
                bbox_json.append(det)
                if 'masks' in r:
                    segm_json.append(dict(det, score=float(mask_scores[i]),
                                          segmentation=r['masks'][i]))
        files = dict(bbox=f'{outfile_prefix}.bbox.json', proposal=f'{outfile_prefix}.bbox.json')
        dumps = [('bbox', bbox_json)]
        if any('masks' in r for r in preds):
            files['segm'] = f'{outfile_prefix}.segm.json'
            dumps.append(('segm', segm_json))
        for name, content in dumps:
            with open(files[name], 'w') as f:
                json.dump(content, f)
        return files

    # ---------------------------------------------------------------- evaluation
    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Write the results json, then run COCOeval for each metric."""
        logger: MMLogger = MMLogger.get_current_instance()
        gts, preds = zip(*results)
        tmp_dir = tempfile.TemporaryDirectory() if self.outfile_prefix is None else None
        outfile_prefix = osp.join(tmp_dir.name, 'results') if tmp_dir else self.outfile_prefix
        os.makedirs(osp.dirname(osp.abspath(outfile_prefix)), exist_ok=True)
        try:
            # rebuilt each time without ann_file: the same metric may see other data later
            coco_gt = self._coco_api if self._coco_api is not None else \
                self.gt_to_coco(gts, outfile_prefix)
            cat_ids = self.cat_ids_of(coco_gt)
            files = self.results2json(preds, outfile_prefix, cat_ids)
            if self.format_only:
                logger.info(f'results are saved in {osp.dirname(osp.abspath(outfile_prefix))}')
                return OrderedDict()
            eval_results: Dict[str, float] = OrderedDict()
            for metric in self.metrics:
                logger.info(f'Evaluating {metric}...')
                if metric == 'proposal_fast':
                    eval_results.update(self._fast_recall(coco_gt, preds, logger))
                else:
                    eval_results.update(self._coco_eval(metric, coco_gt, cat_ids, files, logger))
            return eval_results
        finally:
            if tmp_dir is not None:
                tmp_dir.cleanup()

    def _coco_eval(self, metric: str, coco_gt: COCO, cat_ids: List[int],
                   files: Dict[str, str], logger: MMLogger) -> Dict[str, float]:
        if metric not in files:
            raise KeyError(f"CocoMetric has no {metric} results: the predictions carry no "
                           f"masks; drop '{metric}' from metric or predict masks")
        with open(files[metric]) as f:
            dets = json.load(f)
        if metric == 'segm':
            for det in dets:  # without the box, loadRes measures areas on the mask
                det.pop('bbox')
        iou_type = 'segm' if metric == 'segm' else 'bbox'
        coco_eval = COCOeval(coco_gt, _load_results(coco_gt, dets), iou_type)
        params = coco_eval.params
        params.catIds, params.imgIds = cat_ids, coco_gt.getImgIds()
        params.maxDets, params.iouThrs = list(self.proposal_nums), self.iou_thrs
        params.useCats = int(metric != 'proposal')
        _quietly(coco_eval.evaluate)
        _quietly(coco_eval.accumulate)
        _, summary = _quietly(coco_eval.summarize)
        logger.info('\n' + summary.rstrip())

        names = stat_names(self.proposal_nums)
        items = self.metric_items or (names[6:] if metric == 'proposal' else AP_ITEMS)
        out = OrderedDict((item if metric == 'proposal' else f'{metric}_{item}',
                           float(coco_eval.stats[names.index(item)])) for item in items)
        if metric != 'proposal':
            ap = coco_eval.stats[:6]
            logger.info(f'{metric}_mAP_copypaste: ' + ' '.join(f'{v:.3f}' for v in ap))
            if self.classwise:
                out.update(self._classwise(metric, coco_eval, coco_gt, logger))
        return out

    @staticmethod
    def _classwise(metric: str, coco_eval: COCOeval, coco_gt: COCO,
                   logger: MMLogger) -> Dict[str, float]:
        """Per-class AP table (category, mAP, mAP_50, mAP_75, mAP_s, mAP_m, mAP_l)."""
        precision = coco_eval.eval['precision']  # (iou, recall, class, area, maxDets)
        thrs = coco_eval.params.iouThrs
        at = {t: np.flatnonzero(np.isclose(thrs, t)) for t in (0.5, 0.75)}
        rows, out = [['category'] + AP_ITEMS], OrderedDict()
        # evaluate() sorted params.catIds: that is the order of precision's class axis
        for k, cat_id in enumerate(coco_eval.params.catIds):
            name = coco_gt.cats[cat_id]['name']
            aps = [_mean_precision(precision[:, :, k, 0, -1]),
                   _mean_precision(precision[at[0.5], :, k, 0, -1]),
                   _mean_precision(precision[at[0.75], :, k, 0, -1])]
            aps += [_mean_precision(precision[:, :, k, area, -1]) for area in (1, 2, 3)]
            out[f'{metric}_{name}_precision'] = aps[0]
            rows.append([name] + [f'{a:.3f}' for a in aps])
        logger.info('\n' + AsciiTable(rows).table)
        return out

    def _fast_recall(self, coco_gt: COCO, preds: Sequence[Dict[str, Any]],
                     logger: MMLogger) -> Dict[str, float]:
        """Average recall over ``iou_thrs`` of the top-N boxes, without COCOeval."""
        gts = []
        for r in preds:
            anns = coco_gt.loadAnns(coco_gt.getAnnIds(imgIds=[r['img_id']]))
            boxes = [[x, y, x + w, y + h] for x, y, w, h in
                     (a['bbox'] for a in anns if not (a.get('ignore', False) or a['iscrowd']))]
            gts.append(np.array(boxes, dtype=np.float32).reshape(-1, 4))
        props = [np.hstack([r['bboxes'], r['scores'][:, None]]) for r in preds]
        recalls = eval_recalls(gts, props, self.proposal_nums, self.iou_thrs, logger=logger)
        return OrderedDict((f'AR@{n}', float(ar)) for n, ar in zip(self.proposal_nums,
                                                                   recalls.mean(axis=1)))


def _gt_rles(masks: Any, shape: Tuple[int, int]) -> List[Dict[str, Any]]:
    """RLEs of gt masks (BitmapMasks / PolygonMasks / array), which must be ``ori_shape``."""
    array = masks.to_ndarray() if hasattr(masks, 'to_ndarray') else to_numpy(masks)
    if tuple(array.shape[1:]) != shape:
        raise ValueError(f'gt masks are {tuple(array.shape[1:])} but ori_shape is {shape}: '
                         'load annotations after Resize in the val/test pipeline, or pass '
                         "CocoMetric the dataset's ann_file")
    return encode_masks(array)


def _load_results(coco_gt: COCO, dets: List[dict]) -> COCO:
    """``coco_gt.loadRes(dets)``; an empty result set (which loadRes rejects) scores 0."""
    if dets:
        return _quietly(coco_gt.loadRes, dets)[0]
    coco_dt = COCO()
    coco_dt.dataset = dict(images=list(coco_gt.dataset['images']), annotations=[],
                           categories=list(coco_gt.dataset['categories']))
    _quietly(coco_dt.createIndex)
    return coco_dt
