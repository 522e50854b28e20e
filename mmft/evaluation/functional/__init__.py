"""Metric computations on plain numpy arrays, usable without a Runner."""
from .mean_ap import (average_precision, box_overlaps, eval_map, print_map_summary, tpfp_default,
                      tpfp_openimages)
from .recall import eval_recalls, print_recall_summary

__all__ = [
    'average_precision', 'box_overlaps', 'eval_map', 'print_map_summary', 'tpfp_default',
    'tpfp_openimages', 'eval_recalls', 'print_recall_summary'
]
