"""Evaluation: metrics for the Evaluator (``metrics/``) and the numpy computations under them."""
from .functional import average_precision, eval_map, eval_recalls
from .metrics import CityScapesMetric, CocoMetric, VOCMetric

__all__ = [
    'CocoMetric', 'VOCMetric', 'CityScapesMetric', 'average_precision', 'eval_map',
    'eval_recalls'
]
