"""Cityscapes instance-segmentation AP through the official ``cityscapesscripts``.

Layout written for ``evalInstanceLevelSemanticLabeling`` under ``{outfile_prefix}/results``:
one ``{frame}_leftImg8bit_pred.txt`` per image with lines ``{png} {label_id} {score}``, and
one binary mask PNG (0 / 255, uint8) per prediction, ``{frame}_leftImg8bit_{i}_{class}.png``.
The gt of ``.../leftImg8bit/{split}/{city}/{frame}_leftImg8bit.png`` is the shipped
``{seg_prefix}/{city}/{frame}_gtFine_instanceIds.png`` (label id * 1000 + instance).
Class names must be Cityscapes label names (``person``, ``car`` ...): their label ids come
from ``cityscapesscripts.helpers.labels``.

The masks are written with OpenCV: cityscapesscripts' own PNG writing fails with Pillow 13.
"""
import contextlib
import copy
import io
import os
import os.path as osp
import shutil
import types
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Sequence

import cv2
import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from terminaltables import AsciiTable

from mmft.registry import METRICS
from .sample_fields import dataset_classes, to_numpy


def _import_cityscapes():
    """The cityscapesscripts modules, adapted to numpy 2 (which removed ``np.in1d``)."""
    try:
        from cityscapesscripts.evaluation import evalInstanceLevelSemanticLabeling as cs_eval
        from cityscapesscripts.helpers import labels as cs_labels
    except ImportError as exc:
        raise ImportError(f'CityScapesMetric needs the optional cityscapesscripts package '
                          f'({exc}): install mmft\'s cityscapes extra, '
                          f'pip install -e .[cityscapes]') from exc
    if not hasattr(cs_eval.np, 'in1d'):
        # Give the evaluation module alone a numpy that still has in1d (isin, flattened),
        # rather than patching numpy for everyone.
        compat = types.ModuleType('numpy')
        compat.__getattr__ = lambda name: getattr(np, name)  # type: ignore[attr-defined]
        compat.in1d = lambda ar1, ar2, **kw: np.isin(ar1, ar2, **kw).ravel()  # type: ignore
        cs_eval.np = compat
    return cs_eval, cs_labels


@METRICS.register_module()
class CityScapesMetric(BaseMetric):
    """Cityscapes instance AP (mean over IoU 0.50:0.05:0.95) and AP at IoU 0.5.

    Args:
        outfile_prefix: Folder under which ``results/`` receives the txt and PNG files;
            it must be shared by all ranks.
        seg_prefix: The gtFine folder of the split, e.g. ``data/cityscapes/gtFine/val``;
            needed unless ``format_only``.
        format_only: Only write the files (e.g. for the test server).
        keep_results: Keep ``results/`` after evaluating (always kept with ``format_only``).
        collect_device: ``'cpu'`` or ``'gpu'``, for gathering results across ranks.
        prefix: Prefix of the returned keys; ``'cityscapes'`` when None.
        dump_matches: Also write cityscapesscripts' ``matches.json`` into ``results/``.
        backend_args: Only local files are supported (cityscapesscripts opens paths).
    """
    default_prefix: Optional[str] = 'cityscapes'

    def __init__(self,
                 outfile_prefix: str,
                 seg_prefix: Optional[str] = None,
                 format_only: bool = False,
                 keep_results: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 dump_matches: bool = False,
                 backend_args: Optional[dict] = None) -> None:
        self._cs_eval, self._cs_labels = _import_cityscapes()
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not outfile_prefix:
            raise ValueError('CityScapesMetric needs outfile_prefix, a folder every rank can '
                             "write to (e.g. 'work_dirs/cityscapes_eval')")
        if not format_only and seg_prefix is None:
            raise ValueError('CityScapesMetric needs seg_prefix, the gtFine folder of the split '
                             "(e.g. 'data/cityscapes/gtFine/val'), to evaluate; or set "
                             'format_only=True to only write the results')
        if backend_args and backend_args.get('backend', 'local') != 'local':
            raise ValueError(f'CityScapesMetric reads local files only, got backend_args='
                             f'{backend_args}; copy gtFine to a local folder')
        self.out_dir = osp.abspath(osp.join(outfile_prefix, 'results'))
        self.seg_prefix = seg_prefix
        self.format_only = format_only
        self.keep_results = keep_results or format_only
        self.dump_matches = dump_matches

    def process(self, data_batch: Any, data_samples: Sequence[Mapping[str, Any]]) -> None:
        """Write each sample's masks and prediction txt; keep the txt and gt paths."""
        classes = dataset_classes(self)
        os.makedirs(self.out_dir, exist_ok=True)
        for sample in data_samples:
            pred = sample['pred_instances']
            stem = osp.splitext(osp.basename(sample['img_path']))[0]
            labels = to_numpy(pred['labels']).reshape(-1)
            scores = to_numpy(pred.get('mask_scores', pred['scores'])).reshape(-1)
            masks = to_numpy(pred['masks']).astype(bool)
            lines = []
            if len(labels) and not 0 <= labels.min() <= labels.max() < len(classes):
                raise ValueError(f'{sample["img_path"]}: predicted labels {sorted(set(labels))} '
                                 f'outside the {len(classes)} dataset classes; the head\'s '
                                 'num_classes must equal the dataset\'s')
            for i, (label, score, mask) in enumerate(zip(labels, scores, masks)):
                name = classes[label]
                png = f'{stem}_{i}_{name.replace(" ", "-")}.png'  # the txt is space-separated
                cv2.imwrite(osp.join(self.out_dir, png), mask.astype(np.uint8) * 255)
                lines.append(f'{png} {self._label_id(name)} {float(score)!r}\n')
            pred_txt = osp.join(self.out_dir, f'{stem}_pred.txt')
            with open(pred_txt, 'w') as f:
                f.writelines(lines)
            self.results.append(dict(pred_txt=pred_txt, gt_file=self._gt_file(sample['img_path'])))


    def _label_id(self, name: str) -> int:
        label = self._cs_labels.name2label.get(name)
        if label is None or not label.hasInstances:
            known = [lb.name for lb in self._cs_labels.labels if lb.hasInstances]
            raise ValueError(f'class {name!r} is not a Cityscapes instance label (known: {known}); '
                             'CityScapesMetric needs the Cityscapes class names')
        return label.id

    def _gt_file(self, img_path: str) -> Optional[str]:
        if self.seg_prefix is None:
            return None
        city = osp.basename(osp.dirname(img_path))
        frame = osp.basename(img_path).replace('_leftImg8bit.png', '')
        return osp.join(self.seg_prefix, city, f'{frame}_gtFine_instanceIds.png')

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Run the official evaluation; return ``mAP`` and ``AP@50`` (0..1)."""
        logger: MMLogger = MMLogger.get_current_instance()
        if self.format_only:
            logger.info(f'results are saved in {self.out_dir}')
            return OrderedDict()
        missing = [r['gt_file'] for r in results if not osp.isfile(r['gt_file'])]
        if missing:
            raise FileNotFoundError(f'{len(missing)} Cityscapes gt files are missing, e.g. '
                                    f'{missing[0]}; seg_prefix={self.seg_prefix!r} must be the '
                                    'gtFine/<split> folder holding <city>/*_gtFine_instanceIds.png')
        averages = self._evaluate([r['pred_txt'] for r in results],
                                  [r['gt_file'] for r in results])
        rows = [['class', 'AP', 'AP50']]
        rows += [[name, f'{v["ap"]:.3f}', f'{v["ap50%"]:.3f}']
                 for name, v in averages['classes'].items()]
        rows.append(['average', f'{averages["allAp"]:.3f}', f'{averages["allAp50%"]:.3f}'])
        table = AsciiTable(rows)
        table.inner_footing_row_border = True
        logger.info('\n' + table.table)
        if not self.keep_results:
            shutil.rmtree(self.out_dir, ignore_errors=True)
        return OrderedDict([('mAP', float(averages['allAp'])),
                            ('AP@50', float(averages['allAp50%']))])

    def _evaluate(self, pred_txts: List[str], gt_files: List[str]) -> Dict[str, Any]:
        """The steps of cityscapesscripts' ``evaluateImgLists``, minus its writes to the
        current folder (``matches.json``) and its gt cache file, which goes stale."""
        cs = self._cs_eval
        args = copy.copy(cs.args)  # the module's global settings stay untouched
        args.predictionPath, args.predictionWalk = self.out_dir, None
        args.quiet, args.JSONOutput, args.colorized = True, False, False
        args.distanceAvailable = False
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                cs.setInstanceLabels(args)
                gt_instances = cs.instances2dict(gt_files, False)
                matches = cs.matchGtWithPreds(pred_txts, gt_files, gt_instances, args)
                if self.dump_matches:
                    cs.writeDict2JSON(matches, osp.join(self.out_dir, 'matches.json'))
                averages = cs.computeAverages(cs.evaluateMatches(matches, args), args)
        except SystemExit:  # cityscapesscripts reports errors by printing and exiting
            raise RuntimeError('cityscapesscripts evaluation failed: '
                               f'{out.getvalue().strip()[-500:]}') from None
        return averages
