"""Metrics registered in mmft's METRICS registry under MMDetection 3.x type names."""
from .cityscapes_metric import CityScapesMetric
from .coco_metric import CocoMetric
from .dump_det_results import DumpDetResults
from .incremental_coco_metric import IncrementalCocoMetric
from .lvis_metric import LVISFixedAPMetric, LVISMetric
from .openimages_metric import OpenImagesMetric
from .voc_metric import VOCMetric

__all__ = ['CocoMetric', 'VOCMetric', 'CityScapesMetric', 'DumpDetResults', 'LVISMetric',
           'LVISFixedAPMetric', 'OpenImagesMetric', 'IncrementalCocoMetric']
