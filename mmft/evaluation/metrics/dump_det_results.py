"""DumpDetResults: predictions to a pickle in MMDetection's result-dump format.

What ``tools/test.py --out results.pkl`` writes, and what MMDetection's offline
tools read (``tools/analysis_tools/eval_metric.py``, ``confusion_matrix.py``):
a list with one dict per image (``DetDataSample.to_dict()``: ``img_id``,
``img_path``, ``ori_shape``, ``scale_factor``, ..., ``pred_instances`` with
``bboxes`` ``(N, 4)`` xyxy in original-image pixels, ``scores``, ``labels`` and,
for instance segmentation, ``masks`` as a list of COCO RLE dicts), without
ground truth (``gt_instances`` and ``ignored_instances`` are dropped).
"""
from typing import Any, Sequence

from mmengine.evaluator import DumpResults
from mmengine.evaluator.metric import _to_cpu

from mmft.registry import METRICS
from .coco_metric import encode_masks


@METRICS.register_module()
class DumpDetResults(DumpResults):
    """Dump predictions, masks RLE-encoded, ground truth removed (see the module docstring).

    Args:
        out_file_path: the ``.pkl`` / ``.pickle`` file to write.
        collect_device: 'cpu' or 'gpu', for gathering results across ranks.
    """

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        samples = _to_cpu(data_samples)
        for sample in samples:
            for gt in ('gt_instances', 'ignored_instances', 'gt_panoptic_seg'):
                sample.pop(gt, None)
            pred = sample.get('pred_instances')
            if pred is not None and 'masks' in pred:
                pred['masks'] = encode_masks(pred['masks'])
        self.results.extend(samples)
