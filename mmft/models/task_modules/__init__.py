"""Task utilities (registered in TASK_UTILS): anchors, box coders, assigners, samplers."""
from .anchors import AnchorGenerator, anchor_inside_flags
from .assigners import AssignResult, BboxOverlaps2D, MaxIoUAssigner
from .coders import DeltaXYWHBBoxCoder
from .samplers import PseudoSampler, RandomSampler, SamplingResult
from .ssd_anchors import SSDAnchorGenerator
from .yolo import GridAssigner, YOLOAnchorGenerator, YOLOBBoxCoder

__all__ = [
    'AnchorGenerator', 'anchor_inside_flags', 'DeltaXYWHBBoxCoder', 'BboxOverlaps2D',
    'AssignResult', 'MaxIoUAssigner', 'RandomSampler', 'PseudoSampler', 'SamplingResult',
    'SSDAnchorGenerator', 'YOLOAnchorGenerator', 'YOLOBBoxCoder', 'GridAssigner'
]
