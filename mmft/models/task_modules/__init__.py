"""Task utilities (registered in TASK_UTILS): anchors, box coders, assigners, samplers."""
from .anchors import AnchorGenerator, anchor_inside_flags
from .assigners import AssignResult, BboxOverlaps2D, MaxIoUAssigner
from .atss_assigner import ATSSAssigner
from .coders import DeltaXYWHBBoxCoder
from .distance_point_coder import DistancePointBBoxCoder
from .dynamic_soft_label_assigner import DynamicSoftLabelAssigner
from .point_generator import MlvlPointGenerator
from .samplers import PseudoSampler, RandomSampler, SamplingResult
from .sim_ota_assigner import SimOTAAssigner
from .ssd_anchors import SSDAnchorGenerator
from .yolo import GridAssigner, YOLOAnchorGenerator, YOLOBBoxCoder

__all__ = [
    'AnchorGenerator', 'anchor_inside_flags', 'DeltaXYWHBBoxCoder', 'BboxOverlaps2D',
    'AssignResult', 'MaxIoUAssigner', 'RandomSampler', 'PseudoSampler', 'SamplingResult',
    'ATSSAssigner', 'DistancePointBBoxCoder', 'MlvlPointGenerator', 'SSDAnchorGenerator',
    'YOLOAnchorGenerator', 'YOLOBBoxCoder', 'GridAssigner', 'DynamicSoftLabelAssigner',
    'SimOTAAssigner'
]
