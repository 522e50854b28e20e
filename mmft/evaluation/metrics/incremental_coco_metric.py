"""IncrementalCocoMetric: COCO AP over old + new classes, with each group's AP.

For incremental fine-tuning (``finetune.incremental``) the question is two-sided: did the
model keep the old classes, and did it learn the new ones? Besides CocoMetric's results
(over the union) it returns, for each of ``bbox`` / ``segm``:

- ``{metric}_old_mAP``: mean per-class AP (IoU 0.50:0.95) of the old classes,
- ``{metric}_new_mAP``: the same over the new classes,
- ``{metric}_hmean_mAP``: their harmonic mean ``2 * old * new / (old + new)`` (0 when
  either is 0), the usual single number of class-incremental detection.

A class with no ground truth in the evaluated images has no AP and is left out of its
group's mean (a group with none is NaN).
"""
import math
from collections import OrderedDict
from typing import Dict, Optional, Sequence

from mmengine.logging import MMLogger

from mmft.registry import METRICS
from .coco_metric import CocoMetric


def harmonic_mean(a: float, b: float) -> float:
    """``2ab / (a + b)``; 0 when either is 0; NaN when either is NaN."""
    if math.isnan(a) or math.isnan(b):
        return float('nan')
    return 0.0 if a <= 0 or b <= 0 else 2 * a * b / (a + b)


@METRICS.register_module()
class IncrementalCocoMetric(CocoMetric):
    """CocoMetric plus old / new / harmonic-mean AP (see the module docstring).

    Args:
        old_classes: names of the pretrained model's classes; every other evaluated class
            is new. None: the first ``num_old_classes`` of the dataset's classes.
        num_old_classes: how many of the dataset's classes (old first) are old, when
            ``old_classes`` is not given.
        **kwargs: CocoMetric's arguments (``classwise`` is always on: the groups are
            averaged from the per-class APs).
    """

    def __init__(self, old_classes: Optional[Sequence[str]] = None,
                 num_old_classes: Optional[int] = None, **kwargs) -> None:
        if (old_classes is None) == (num_old_classes is None):
            raise ValueError('IncrementalCocoMetric needs exactly one of old_classes=(...) '
                             'or num_old_classes=N to tell the old classes from the new, got '
                             f'old_classes={old_classes!r}, num_old_classes={num_old_classes!r}')
        if isinstance(old_classes, str):
            raise TypeError(f'IncrementalCocoMetric old_classes is the string {old_classes!r}; '
                            f'write ({old_classes!r},) with a trailing comma for one class')
        kwargs['classwise'] = True
        super().__init__(**kwargs)
        self.old_classes = tuple(old_classes) if old_classes is not None else None
        self.num_old_classes = num_old_classes

    def _groups(self):
        classes = tuple((self.dataset_meta or {}).get('classes') or ())
        if self.old_classes is not None:
            old = self.old_classes
            unknown = [c for c in old if classes and c not in classes]
            if unknown:
                raise ValueError(f'IncrementalCocoMetric old_classes {unknown} are not '
                                 f'evaluated classes {list(classes)}; give the names of the '
                                 "pretrained model's classes as the dataset spells them")
        else:
            if not classes:
                raise ValueError('IncrementalCocoMetric num_old_classes needs the dataset\'s '
                                 'classes (dataset_meta); give old_classes=(...) instead')
            old = classes[:self.num_old_classes]
        new = tuple(c for c in classes if c not in old)
        return old, new

    def compute_metrics(self, results: list) -> Dict[str, float]:
        out = super().compute_metrics(results)
        if self.format_only:
            return out
        old, new = self._groups()
        logger: MMLogger = MMLogger.get_current_instance()
        summary = OrderedDict()
        for metric in self.metrics:
            if metric not in ('bbox', 'segm'):
                continue
            groups = {}
            for group, names in (('old', old), ('new', new)):
                aps = [out.get(f'{metric}_{c}_precision', float('nan')) for c in names]
                aps = [a for a in aps if not math.isnan(a)]
                groups[group] = sum(aps) / len(aps) if aps else float('nan')
            summary[f'{metric}_old_mAP'] = groups['old']
            summary[f'{metric}_new_mAP'] = groups['new']
            summary[f'{metric}_hmean_mAP'] = harmonic_mean(groups['old'], groups['new'])
            logger.info(f'{metric}: old-class mAP {groups["old"]:.3f} ({len(old)} classes), '
                        f'new-class mAP {groups["new"]:.3f} ({len(new)} classes), harmonic '
                        f'mean {summary[f"{metric}_hmean_mAP"]:.3f}')
        out.update(summary)
        return out
