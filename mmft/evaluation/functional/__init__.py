"""Metric computations on plain numpy arrays, usable without a Runner."""
from .mean_ap import average_precision, box_overlaps, eval_map, print_map_summary, tpfp_default
from .recall import eval_recalls, print_recall_summary

__all__ = [
    'average_precision', 'box_overlaps', 'eval_map', 'print_map_summary', 'tpfp_default',
    'eval_recalls', 'print_recall_summary'
]
