"""Data structures shared by datasets, models and metrics. Imports nothing else of mmft."""
from .bbox import bbox2roi, bbox_overlaps, clip_boxes, get_box_wh, scale_boxes
from .det_data_sample import DetDataSample, OptSampleList, SampleList
from .masks import BaseInstanceMasks, BitmapMasks, PolygonMasks, polygons_to_bitmap

__all__ = [
    'DetDataSample', 'SampleList', 'OptSampleList', 'bbox_overlaps', 'bbox2roi',
    'scale_boxes', 'get_box_wh', 'clip_boxes', 'BaseInstanceMasks', 'BitmapMasks',
    'PolygonMasks', 'polygons_to_bitmap'
]
